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
from typing import Any, Literal, cast, get_args

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import TelegramObject
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from engine.settings import QueueConfig

log = logging.getLogger(__name__)

Kind = Literal["delivery", "turn"]
KINDS: tuple[Kind, ...] = get_args(Kind)
# How long the listener waits before it subscribes again after losing Redis.
RECONNECT_S = 1.0
# The longest a wake-up may take to publish: past it, the others' next poll finds the change.
PUBLISH_TIMEOUT_S = 0.25
# Connecting to Redis and each answer but the listener's wait: a stalled Redis costs this much.
SOCKET_TIMEOUT_S = 1.0
# How often the listener pings a quiet subscription: a connection that died without a word
# (a host gone, a stalled server) is given up after about twice this.
HEALTH_CHECK_S = 5.0


class Wakeups:
    """Publishes this process's log changes and hears every process's, on one Redis channel."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self.channel = f"{prefix}log"
        self._next: dict[Kind, asyncio.Event] = {kind: asyncio.Event() for kind in KINDS}
        self._task: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        # Publishing stops until then after a failure: the polls carry the changes meanwhile.
        self._quiet_until = 0.0
        self._unpublished = False
        self._lost = False
        self._closing = False
        self.subscribed = asyncio.Event()

    @classmethod
    def connect(cls, config: QueueConfig, *, health_check_s: float = HEALTH_CHECK_S) -> Wakeups:
        """Wake-ups on the deployment's Redis (`[queue] url` and `prefix`); connects lazily."""
        redis = Redis.from_url(
            config.url,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=health_check_s,
        )
        return cls(redis, config.prefix)

    async def publish(self, kind: Kind) -> None:
        """Tell every process to look at the log now, within `PUBLISH_TIMEOUT_S`. Redis being
        away or slow is logged, not raised: the others' next poll finds the change."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._quiet_until:
            return
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await self._redis.publish(self.channel, kind)
        except (RedisError, OSError, TimeoutError) as error:
            self._quiet_until = loop.time() + RECONNECT_S
            if not self._unpublished:  # once until one goes through again
                why = str(error) or type(error).__name__
                log.warning("wake-ups not published (%s); the polls carry the changes", why)
            self._unpublished = True
        else:
            self._unpublished = False

    def publish_soon(self, kind: Kind) -> None:
        """`publish` in the background: what replies to a person never waits for Redis."""
        task = asyncio.create_task(self.publish(kind), name=f"publish-{kind}")
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    def next(self, kind: Kind) -> asyncio.Event:
        """The event set by the next wake-up of `kind` from any process (a `delivery` is a turn
        too). Take it before reading the log, so a wake-up between the read and the wait counts."""
        return self._next[kind]

    async def start(self) -> None:
        """Listen in the background until `close`."""
        self._task = asyncio.create_task(self._listen(), name="log-wakeups")

    async def close(self) -> None:
        """Stop listening, let the wake-ups being published finish, and disconnect; never
        raises, so what closes after it still closes."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
        tasks = [*self._publishing, *([self._task] if self._task is not None else [])]
        self._task = None
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("wake-ups ended with an error", exc_info=outcome)
        try:
            await self._redis.aclose()
        except (RedisError, OSError) as error:
            log.warning("wake-ups: closing the Redis connection failed: %s", error)

    def _wake(self, kind: Kind) -> None:
        for woken in ("delivery", "turn") if kind == "delivery" else ("turn",):
            self._next[woken].set()
            self._next[woken] = asyncio.Event()

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self._follow(pubsub)
            except (RedisError, OSError) as error:
                self.subscribed.clear()
                if not self._lost:
                    self._lost = True
                    log.warning("wake-ups lost (%s); polling only until Redis is back", error)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            if self._closing:  # a cancel that met a read's timeout comes back as that timeout
                return
            await asyncio.sleep(RECONNECT_S)

    async def _follow(self, pubsub: PubSub) -> None:
        """Wake on each message until the subscription breaks. With a health check interval,
        redis-py pings a quiet connection before a read; no answer for a whole interval after
        that ping means the connection is dead although nothing said so."""
        connection = pubsub.connection
        assert connection is not None, "subscribed, so connected"
        interval = connection.health_check_interval or None
        # Without an interval a read returns only with what Redis said; with one, the time of
        # the next ping moves on with each thing read.
        read_before = connection.next_health_check
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=interval)
            if not self.subscribed.is_set() and (
                interval is None or connection.next_health_check != read_before
            ):
                self._subscribed()  # Redis confirmed the subscription
            if message is not None:
                data = message["data"]
                kind = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
                if kind in KINDS:
                    self._wake(cast(Kind, kind))
            elif interval is not None:
                last_read = connection.next_health_check - interval
                silent = asyncio.get_running_loop().time() - last_read
                if silent > 2 * interval:  # pinged at least one interval ago, no pong
                    raise RedisConnectionError(f"no answer from Redis for {silent:.1f} s")

    def _subscribed(self) -> None:
        self.subscribed.set()
        if self._lost:
            self._lost = False
            log.warning("wake-ups back: subscribed to %s again", self.channel)
        self._wake("delivery")  # what was published while away: look now


class PublishTurns(BaseMiddleware):
    """Publishes a `turn` wake-up, in the background, after each update a worker handled (or
    failed on): its turns are logged."""

    def __init__(self, wakeups: Wakeups) -> None:
        self._wakeups = wakeups

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        try:
            result = await handler(event, data)
        except Exception:
            self._wakeups.publish_soon("turn")  # it may have logged turns before it failed
            raise
        if result is not UNHANDLED:  # an update no handler took logged nothing
            self._wakeups.publish_soon("turn")
        return result
