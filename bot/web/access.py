"""What every route depends on: the services, and the caller's key checked for scope and rate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.web.errors import ApiError
from bot.web.keys import ApiKey, KeyStore, Scope
from bot.web.knowledge_admin import KnowledgeAdmin
from bot.web.limits import RateLimiter
from engine import Engine
from engine.settings import WebConfig

if TYPE_CHECKING:  # the redis extra is needed only by several processes
    from bot.wakeups import Wakeups

CHANNEL = "web"


@dataclass(frozen=True, slots=True)
class Services:
    """The running parts one app serves with; `knowledge` is None where no KB can be edited."""

    engine: Engine
    config: WebConfig
    keys: KeyStore
    limiter: RateLimiter
    knowledge: KnowledgeAdmin | None = None
    # Wake-ups to and from other processes over Redis ([web] redis_wakeups), else None.
    wakeups: Wakeups | None = None


async def services(request: Request) -> Services:
    """The app's services (set by create_app).

    A coroutine although it awaits nothing: FastAPI runs a plain function dependency in a
    worker thread, a hand-off every request would pay for.
    """
    return _services(request)


def _services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


_bearer = HTTPBearer(auto_error=False, description="An API key from `python -m bot.web keys`")


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency admitting keys of `scope` (admin keys may do everything), within their rate."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        found = _services(request)
        if credentials is None:
            raise ApiError(
                401,
                "no API key; send `Authorization: Bearer KEY` (create one with "
                "`python -m bot.web keys create --name NAME --scope chat`)",
                code="missing_api_key",
            )
        key = found.keys.find(credentials.credentials)
        if key is None:
            raise ApiError(401, "unknown or revoked API key", code="invalid_api_key")
        if scope == "admin" and key.scope != "admin":
            raise ApiError(
                403,
                f"key {key.name!r} has scope {key.scope!r}; this needs an admin key",
                code="insufficient_scope",
            )
        wait = found.limiter.take(key.name, key.rate_per_minute)
        if wait > 0:
            raise ApiError(
                429,
                f"rate limit of key {key.name!r} reached; retry in {wait:.1f} s",
                code="rate_limit_exceeded",
                headers={"Retry-After": RateLimiter.retry_after(wait)},
            )
        return key

    return check


ChatKey = Annotated[ApiKey, Depends(require("chat"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
Served = Annotated[Services, Depends(services)]


def customer_id(key: ApiKey, user: str) -> str:
    """The log's id of a caller's customer: namespaced by key, so keys never see each other's."""
    return f"{key.name}:{user}"


def owns(key: ApiKey, channel: str, external_user_id: str) -> bool:
    """Whether a key may see a conversation: admin keys all, chat keys their own customers'."""
    return key.scope == "admin" or (
        channel == CHANNEL and external_user_id.startswith(f"{key.name}:")
    )
