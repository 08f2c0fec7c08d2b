"""The bot's metrics edges: Bot API errors and flood-control waits, and the health routes.

`TelegramMetrics` is a Bot API request middleware. Registered after `RetryAfterMiddleware` it
sits inside it, so it sees every failed call, each 429 with its retry_after included, before
the outer one waits and sends again. Labels are the method's name and the error's class only.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import AiogramError, TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import web

from engine import Engine
from engine.health import Check, add_health_routes, engine_checks, serve_health
from engine.metrics import TELEGRAM_ERRORS, TELEGRAM_RETRY_AFTER, observe_queue
from engine.settings import QueueConfig, Settings

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response


class TelegramMetrics(BaseRequestMiddleware):
    """Counts failed Bot API calls by method and error, and the retry_after waits asked for."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except AiogramError as error:
            name = type(method).__name__
            TELEGRAM_ERRORS.labels(method=name, error=type(error).__name__).inc()
            if isinstance(error, TelegramRetryAfter):
                TELEGRAM_RETRY_AFTER.labels(method=name).observe(error.retry_after)
            raise


async def start_health(
    stack: contextlib.AsyncExitStack, settings: Settings, engine: Engine | None = None
) -> None:
    """Serve /livez, /readyz and /metrics on `[metrics] port` (0: not) until `stack` closes.

    Readiness checks what the process needs: a receiver its queue; a worker its store, model
    servers and queue; a single process its store and model servers. The queue's depth and lag
    are read again at each readiness check and each scrape.
    """
    config = settings.metrics
    if not config.port:
        return
    checks = engine_checks(engine.conversation_log, engine.generator) if engine else {}
    if settings.bot.role != "single":
        checks["queue"] = await _queue_check(stack, settings.queue)
    refresh = [checks["queue"]] if "queue" in checks else []
    runner = await serve_health(config, checks, before_scrape=refresh)
    stack.push_async_callback(runner.cleanup)


async def _queue_check(stack: contextlib.AsyncExitStack, config: QueueConfig) -> Check:
    # The redis extra is needed only by several processes.
    from bot.queue import UpdateQueue

    queue = UpdateQueue.connect(config)
    stack.push_async_callback(queue.close)

    async def check() -> None:
        await queue.check()
        depth = await queue.depth()
        observe_queue(
            "updates", depth=depth.waiting, pending=depth.pending, oldest_age_s=depth.oldest_age_s
        )

    return check


def mount_health(
    app: web.Application,
    engine: Engine,
    *,
    extra: dict[str, Check] | None = None,
    timeout_s: float = 5.0,
) -> None:
    """Serve /livez, /readyz (store, model servers, and `extra`, e.g. the queue) and /metrics."""
    checks = {**engine_checks(engine.conversation_log, engine.generator), **(extra or {})}
    add_health_routes(app, checks, timeout_s=timeout_s)
