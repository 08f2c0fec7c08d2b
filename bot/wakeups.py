"""Wake-ups between processes over Redis pub/sub: the conversation log changed somewhere.

Each process polls the log: the outbox every `[bot] outbox_interval_s`, the console's live view
every `[web] poll_interval_s`. With several processes on one Redis, the process that logs an
operator reply to be delivered (`delivery`) or new turns (`turn`) also publishes that word on
`<[queue] prefix>log`, and the outboxes and console streams of every process look at the log at
once. A wake-up only says "look now": the log stays the one source of truth, so a wake-up lost
while a process was disconnected costs at most one poll interval, and a process reconnecting
looks at the log straight away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, get_args

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.settings import QueueConfig

log = logging.getLogger(__name__)

Kind = Literal["delivery", "turn"]
KINDS: tuple[Kind, ...] = get_args(Kind)
# How long the listener waits before it subscribes again after losing Redis.
RECONNECT_S = 1.0


class Wakeups:
    """Publishes this process's log changes and hears every process's, on one Redis channel."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self.channel = f"{prefix}log"
        self._next: dict[Kind, asyncio.Event] = {kind: asyncio.Event() for kind in KINDS}
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    @classmethod
    def connect(cls, config: QueueConfig) -> Wakeups:
        """Wake-ups on the deployment's Redis (`[queue] url` and `prefix`); connects lazily."""
        return cls(Redis.from_url(config.url), config.prefix)

    async def publish(self, kind: Kind) -> None:
        """Tell every process to look at the log now. Redis being away is logged, not raised:
        the others' next poll finds the change."""
        try:
            await self._redis.publish(self.channel, kind)
        except (RedisError, OSError) as error:
            log.warning("wake-up %s not published: %s", kind, error)

    def next(self, kind: Kind) -> asyncio.Event:
        """The event set by the next wake-up of `kind` from any process (a `delivery` is a turn
        too). Take it before reading the log, so a wake-up between the read and the wait counts."""
        return self._next[kind]

    async def start(self) -> None:
        """Listen in the background until `close`."""
        self._task = asyncio.create_task(self._listen(), name="log-wakeups")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._redis.aclose()

    def _wake(self, kind: Kind) -> None:
        for woken in ("delivery", "turn") if kind == "delivery" else ("turn",):
            self._next[woken].set()
            self._next[woken] = asyncio.Event()

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                self._wake("delivery")  # what was published while away: look now
                async for message in pubsub.listen():
                    kind = message["data"].decode()
                    if kind in KINDS:
                        self._wake(kind)
            except (RedisError, OSError) as error:
                self.subscribed.clear()
                log.warning("wake-ups lost (%s); polling only until Redis is back", error)
            finally:
                await pubsub.aclose()
            await asyncio.sleep(RECONNECT_S)


class PublishTurns(BaseMiddleware):
    """Publishes a `turn` wake-up after each update a worker handled: its turns are logged."""

    def __init__(self, wakeups: Wakeups) -> None:
        self._wakeups = wakeups

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        try:
            return await handler(event, data)
        finally:
            await self._wakeups.publish("turn")
