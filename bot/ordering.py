"""One reply at a time per chat, in the order the messages came; in-flight work drains on exit."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
ChatKey = tuple[int, int | None]


def chat_key(event: TelegramObject) -> ChatKey | None:
    """The chat (and forum topic) an event belongs to; None for events outside a chat."""
    message = event.message if isinstance(event, CallbackQuery) else event
    if not isinstance(message, Message):
        return None
    return (message.chat.id, message.message_thread_id if message.is_topic_message else None)


class ChatOrder(BaseMiddleware):
    """Outer middleware: events of one chat are handled one after another, first come first.

    asyncio locks wake waiters in arrival order, and updates reach this middleware in the order
    Telegram numbered them, so answers keep the customer's order. Different chats run in parallel.
    """

    def __init__(self) -> None:
        self._locks: dict[ChatKey, asyncio.Lock] = {}
        self._users: Counter[ChatKey] = Counter()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        key = chat_key(event)
        if key is None:
            return await handler(event, data)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            async with lock:
                return await handler(event, data)
        finally:
            if task is not None:
                self._tasks.discard(task)
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]

    @property
    def in_flight(self) -> int:
        """Events being handled or waiting for their chat."""
        return len(self._tasks)

    async def drain(self, timeout_s: float) -> None:
        """Let in-flight events finish for up to `timeout_s`, then cancel what is left."""
        tasks = set(self._tasks) - {asyncio.current_task()}
        if not tasks:
            return
        log.info("waiting for %d replies in progress (up to %.0f s)", len(tasks), timeout_s)
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d replies still running at shutdown", len(pending))
            await asyncio.wait(pending)
