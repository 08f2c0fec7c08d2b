"""Several bot processes: start a webhook receiver or a queue worker from the settings."""

from __future__ import annotations

import os
import socket

from aiogram import Bot
from redis.asyncio import Redis

from bot.app import build_dispatcher
from bot.queue import QueueUnavailable
from bot.receiver import run_receiver
from bot.shared import shared_state
from bot.wakeups import PublishTurns, Wakeups
from bot.worker import run_worker
from engine import Engine
from engine.settings import Settings

__all__ = ["QueueUnavailable", "consumer_name", "serve_receiver", "serve_worker"]


def consumer_name() -> str:
    """This worker's name in the consumer group: unique per host and process."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def serve_receiver(bot: Bot, settings: Settings, secret: str) -> None:
    """Queue webhook updates until SIGTERM; QueueUnavailable when Redis cannot be reached."""
    await run_receiver(bot, settings.bot, settings.queue, secret)


async def serve_worker(bot: Bot, engine: Engine, settings: Settings) -> None:
    """Answer queued updates until SIGTERM; QueueUnavailable when Redis cannot be reached.

    Flood counts and the operator desk's hand-overs are shared with the other workers in Redis;
    the console's replies wake this worker's outbox, and its turns the console (bot.wakeups).
    """
    redis = Redis.from_url(settings.queue.url)
    wakeups = Wakeups.connect(settings.queue)
    await wakeups.start()
    try:
        flood, handovers = shared_state(redis, settings.bot, settings.queue)
        dp = build_dispatcher(
            engine, settings.bot, flood=flood, handovers=handovers, wakeups=wakeups
        )
        dp.update.outer_middleware(PublishTurns(wakeups))
        await run_worker(
            bot,
            dp,
            settings.queue,
            consumer_name(),
            languages=settings.bot.languages,
            grace_s=settings.bot.shutdown_grace_s,
        )
    finally:
        await wakeups.close()
        await redis.aclose()
