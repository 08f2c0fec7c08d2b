"""Take updates by long polling or by webhook, serve the health endpoint, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import TelegramObject, Update
from aiogram.webhook.aiohttp_server import setup_application
from aiohttp import web

from bot.journal import JournaledWebhook, UpdateJournal, attach_journal, journal_handling
from bot.metrics import mount_health
from bot.ordering import ChatOrder
from bot.unreadable import TolerantWebhook
from engine.settings import BotConfig

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def health_app(dp: Dispatcher, config: BotConfig) -> web.Application:
    """An aiohttp app answering the health endpoint with the number of replies in progress."""
    app = web.Application()
    order: ChatOrder = dp["chat_order"]

    async def health(request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "mode": config.mode, "in_flight": order.in_flight}
        )

    if config.health_path:
        app.router.add_get(config.health_path, health)
    if "engine" in dp.workflow_data:
        mount_health(app, dp["engine"])  # /livez, /readyz, /metrics
    return app


async def run_polling(
    bot: Bot, dp: Dispatcher, config: BotConfig, journal: UpdateJournal | None = None
) -> None:
    """Long-poll until SIGTERM/SIGINT; replies in progress finish, then the offset is confirmed.

    Confirming the last handled update on the way out means a restart does not answer it twice.
    With a `journal`, a killed process loses and repeats no update either (see bot.journal).
    """
    if journal is not None:
        attach_journal(bot, dp, journal)
    last: list[int] = []

    async def remember(handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Update):
            last[:] = [max([event.update_id, *last])]
        return await handler(event, data)

    dp.update.outer_middleware(remember)
    runner = None
    if config.health_when_polling:
        runner = await _serve(health_app(dp, config), config)
    try:
        await bot.delete_webhook()
        await dp.start_polling(bot, handle_signals=True, close_bot_session=False)
        if last:
            await bot.get_updates(offset=last[0] + 1, timeout=0, limit=1)
    finally:
        if runner is not None:
            await runner.cleanup()
        await bot.session.close()


async def run_webhook(
    bot: Bot,
    dp: Dispatcher,
    config: BotConfig,
    secret: str,
    stop: asyncio.Event | None = None,
    journal: UpdateJournal | None = None,
) -> None:
    """Serve the webhook (secret header checked) and health endpoint until `stop` is set.

    Telegram gets its answer once an update is handled, so it delivers again what a killed
    process was working on; with a `journal`, such an update is neither lost nor answered twice
    (see bot.journal). Without a `stop` event, SIGTERM and SIGINT stop it.
    """
    app = health_app(dp, config)
    # Shutdown runs in registration order: replies drain before the bot's session closes.
    setup_application(app, dp, bot=bot)
    handler: TolerantWebhook
    if journal is None:
        handler = TolerantWebhook(dp, bot, secret_token=secret)
    else:
        journal_handling(bot, dp, journal)
        handler = JournaledWebhook(dp, bot, journal, secret_token=secret)
    handler.register(app, path=config.webhook_path)
    loop = asyncio.get_running_loop()
    signals: tuple[signal.Signals, ...] = ()
    if stop is None:
        stop = asyncio.Event()
        signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    try:
        runner = await _serve(app, config)
        url = config.webhook_url.rstrip("/") + config.webhook_path
        await bot.set_webhook(
            url,
            secret_token=secret,
            allowed_updates=dp.resolve_used_update_types(),
            drop_pending_updates=False,
        )
        log.info("webhook set url=%s", url)
        await stop.wait()
        log.info("stopping: no new updates; finishing replies in progress")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if runner is not None:
            await runner.cleanup()


async def _serve(app: web.Application, config: BotConfig) -> web.AppRunner:
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.listen_host, config.listen_port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("listening on %s:%d", config.listen_host, config.listen_port)
    return runner
