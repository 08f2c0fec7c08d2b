"""Several bot processes: start a webhook receiver or a queue worker from the settings."""

from __future__ import annotations

import os
import socket

from aiogram import Bot, Dispatcher

from bot.queue import QueueUnavailable
from bot.receiver import run_receiver
from bot.worker import run_worker
from engine.settings import Settings

__all__ = ["QueueUnavailable", "consumer_name", "serve_receiver", "serve_worker"]


def consumer_name() -> str:
    """This worker's name in the consumer group: unique per host and process."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def serve_receiver(bot: Bot, settings: Settings, secret: str) -> None:
    """Queue webhook updates until SIGTERM; QueueUnavailable when Redis cannot be reached."""
    await run_receiver(bot, settings.bot, settings.queue, secret)


async def serve_worker(bot: Bot, dp: Dispatcher, settings: Settings) -> None:
    """Answer queued updates until SIGTERM; QueueUnavailable when Redis cannot be reached."""
    await run_worker(
        bot,
        dp,
        settings.queue,
        consumer_name(),
        languages=settings.bot.languages,
        grace_s=settings.bot.shutdown_grace_s,
    )
