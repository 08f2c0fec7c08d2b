"""The one ASGI app of the HTTP front end: routers per area, errors in one shape, limits.

FastAPI (on Starlette, served by uvicorn) was chosen over bare Starlette for what it derives
from the typed routes: the OpenAPI schema that clients and the fuzz test read, pydantic
validation of every body, and dependencies that carry the engine and check keys per route.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from prometheus_client import make_asgi_app
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.web import chat, console, conversations, knowledge, widget
from bot.web.access import Served, Services
from bot.web.errors import ApiError, ErrorBody, error_response, install_error_handlers

log = logging.getLogger(__name__)

IMPORT_PATH = "/api/kb/import"


class Health(BaseModel):
    """Liveness or readiness, with what was checked."""

    status: str
    checks: dict[str, str] = {}


def create_app(services: Services) -> FastAPI:
    """The app over running services; the caller owns the engine's lifetime."""
    app = FastAPI(
        title="supportbot HTTP API",
        version="1",
        description=(
            "OpenAI-compatible chat, REST for conversations and the knowledge base, and the "
            "embeddable web chat. Send `Authorization: Bearer KEY`."
        ),
    )
    app.state.services = services
    install_error_handlers(app)

    @app.get("/health", tags=["health"])
    async def health() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get(
        "/health/ready",
        tags=["health"],
        responses={503: {"model": ErrorBody, "description": "not ready"}},
    )
    async def ready(found: Served) -> Health:
        """Readiness: the conversation log answers and a knowledge base is loaded."""
        checks: dict[str, str] = {}
        try:
            await found.engine.conversation_log.latest_conversation_id("health", "probe")
            checks["log"] = "ok"
        except Exception as error:  # any failure means not ready; say which
            checks["log"] = f"failed: {error}"
        checks["knowledge_base"] = found.engine.knowledge_base.version or "missing"
        if checks["log"] != "ok":
            raise ApiError(503, f"not ready: {checks}", code="not_ready")
        return Health(status="ready", checks=checks)

    app.openapi = lambda: _schema(app)  # type: ignore[method-assign]
    app.include_router(chat.router)
    app.include_router(conversations.router)
    app.include_router(knowledge.router)
    app.include_router(widget.router)
    console.install(app, services)
    # Prometheus scrapes here as on every bot process; outside the schema and keys like probes.
    app.mount("/metrics", make_asgi_app())
    config = services.config
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", chat.USER_HEADER],
            max_age=600,
        )
    app.add_middleware(
        BodyLimit,
        max_bytes=config.max_body_bytes,
        paths={IMPORT_PATH: int(config.max_import_mb * 1024 * 1024)},
    )
    return app


def _schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema with validation errors as they are sent: 400 with an ErrorBody."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    error = {
        "description": "invalid_request_error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for item in schema["paths"].values():
        for operation in item.values():
            responses = operation["responses"]
            responses.pop("422", None)
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("400", error)
            if operation.get("requestBody"):
                responses.setdefault("413", error)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.setdefault(
        "ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    app.openapi_schema = schema
    return schema


class BodyLimit:
    """Refuses request bodies above a size (413) before a route reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: dict[str, int]) -> None:
        self._app = app
        self._max = max_bytes
        self._paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._paths.get(scope["path"], self._max)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(limit, scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise ApiError(413, _too_big(limit), code="request_too_large")
            return message

        await self._app(scope, counted, send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, _too_big(limit), code="request_too_large")
        await response(scope, receive, send)


def _too_big(limit: int) -> str:
    return f"request body over {limit} bytes; send less (the limits are in [web])"
