"""The receiver role: the webhook endpoint that answers Telegram once an update is queued.

Several receivers may run behind one HTTPS proxy; Telegram allows one webhook per token and
answers 429 to a setWebhook per process, so at start-up the one receiver holding a Redis lock
registers it, and only when Telegram's registration differs from the one wanted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import signal
from typing import Any

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.ordering import chat_key
from bot.queue import UpdateQueue
from engine.settings import BotConfig, QueueConfig

log = logging.getLogger(__name__)

# What the workers' dispatcher handles (tests/bot/test_receiver.py checks it stays so).
ALLOWED_UPDATES = ("callback_query", "edited_message", "message")
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def order_key(update: Update) -> str:
    """The chat (and forum topic) whose order the update keeps; "" for updates outside a chat."""
    event = update.message or update.edited_message or update.callback_query
    key = chat_key(event) if event is not None else None
    if key is None:
        return ""
    chat, thread = key
    return str(chat) if thread is None else f"{chat}/{thread}"


def receiver_app(queue: UpdateQueue, config: BotConfig, secret: str) -> web.Application:
    """The webhook (secret header checked) and the health endpoint of one receiver."""
    app = web.Application()

    async def webhook(request: web.Request) -> web.Response:
        given = request.headers.get(_SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=401, text="wrong secret token")
        try:
            body: dict[str, Any] = await request.json()
            update = Update.model_validate(body)
        except (ValueError, ValidationError):
            # Telegram sends nothing else; an answer other than 2xx makes it send again.
            log.warning("refused a webhook request that is not an update")
            return web.Response(status=400, text="not an update")
        try:
            queued = await queue.enqueue(update.update_id, body, order_key(update))
        except (RedisError, OSError) as error:
            # Telegram delivers the update again later: nothing is lost.
            log.error("could not queue update %s: %s", update.update_id, error)
            return web.Response(status=503, text="queue unavailable")
        if not queued:
            log.info("update %s delivered again; queued before", update.update_id)
        return web.json_response({})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": "receiver"})

    app.router.add_post(config.webhook_path, webhook)
    if config.health_path:
        app.router.add_get(config.health_path, health)
    return app


async def register_webhook(
    bot: Bot, redis: Redis, queue_config: QueueConfig, url: str, secret: str
) -> bool:
    """Register the webhook unless it is registered already or another receiver is doing it.

    True when this process called setWebhook. A fingerprint of the registration in Redis lets a
    changed secret be registered again; Telegram does not report the secret it holds.
    """
    key = f"{queue_config.prefix}webhook"
    wanted = hashlib.sha256("\n".join([url, secret, *sorted(ALLOWED_UPDATES)]).encode()).hexdigest()
    lock = redis.lock(f"{key}:lock", timeout=60)
    if not await lock.acquire(blocking=False):
        log.info("another receiver registers the webhook")
        return False
    try:
        info = await bot.get_webhook_info()
        registered = await redis.get(key)
        if info.url == url and registered in (wanted, wanted.encode()):
            log.info("webhook registered already url=%s", url)
            return False
        await bot.set_webhook(
            url,
            secret_token=secret,
            allowed_updates=list(ALLOWED_UPDATES),
            drop_pending_updates=False,
        )
        await redis.set(key, wanted)
        log.info("webhook set url=%s", url)
        return True
    finally:
        await lock.release()


async def run_receiver(
    bot: Bot,
    config: BotConfig,
    queue_config: QueueConfig,
    secret: str,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the webhook into the queue until `stop` is set (or SIGTERM/SIGINT without one)."""
    redis = Redis.from_url(queue_config.url)
    queue = UpdateQueue(redis, queue_config, consumer="")
    loop = asyncio.get_running_loop()
    signals: tuple[signal.Signals, ...] = ()
    if stop is None:
        stop = asyncio.Event()
        signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(receiver_app(queue, config, secret), access_log=None)
    try:
        await queue.check()
        await runner.setup()
        # Receivers on one host may share the port; the kernel spreads connections among them.
        site = web.TCPSite(runner, config.listen_host, config.listen_port, reuse_port=True)
        await site.start()
        log.info("receiver listening on %s:%d", config.listen_host, config.listen_port)
        url = config.webhook_url.rstrip("/") + config.webhook_path
        await register_webhook(bot, redis, queue_config, url, secret)
        await stop.wait()
        log.info("receiver stopping")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        await redis.aclose()
