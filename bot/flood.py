"""A flood from one chat gets one polite slow-down notice and no engine work."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiogram import BaseMiddleware, Bot
from aiogram.types import Message, TelegramObject
from aiogram.utils.i18n import gettext as _

from bot.addressing import is_addressed

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class FloodWindow(Protocol):
    """Messages per chat in a sliding window, shared by the processes that serve the chats."""

    async def hit(self, chat_id: int) -> tuple[bool, bool]:
        """Count one message: (over the limit, first message of this flood)."""
        ...


class FloodGuard(BaseMiddleware):
    """Outer message middleware: more than `limit` messages in `window_s` from a chat are dropped.

    Only messages addressed to the bot count; the operators' group is never limited. The chat
    gets one notice per flood, and is answered again once its rate falls back under the limit.
    The count is kept in this process unless a shared `window` is given (several processes).
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        operator_chat_id: int = 0,
        clock: Callable[[], float] = time.monotonic,
        window: FloodWindow | None = None,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("[bot] flood_messages must be 1 or more and flood_window_s above 0")
        self._limit = limit
        self._window_s = window_s
        self._operator_chat_id = operator_chat_id
        self._clock = clock
        self._recent: dict[int, deque[float]] = {}
        self._warned: set[int] = set()
        self._shared = window

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Message) or event.chat.id == self._operator_chat_id:
            return await handler(event, data)
        bot: Bot = data["bot"]
        if not await is_addressed(event, bot):
            return await handler(event, data)
        chat_id = event.chat.id
        flooding, first = await self.hit(chat_id)
        if not flooding:
            return await handler(event, data)
        if first:
            log.info("flood chat=%s limit=%d window_s=%.0f", chat_id, self._limit, self._window_s)
            await bot.send_message(
                chat_id,
                _(
                    "You're sending messages faster than I can answer them. Please wait a "
                    "moment; I'll reply again once things slow down."
                ),
                message_thread_id=event.message_thread_id if event.is_topic_message else None,
            )
        return None

    async def hit(self, chat_id: int) -> tuple[bool, bool]:
        """Count one message from the chat: (over the limit, first message of this flood)."""
        if self._shared is not None:
            return await self._shared.hit(chat_id)
        if not self._flooding(chat_id):
            self._warned.discard(chat_id)
            return False, False
        first = chat_id not in self._warned
        self._warned.add(chat_id)
        return True, first

    def _flooding(self, chat_id: int) -> bool:
        now = self._clock()
        recent = self._recent.setdefault(chat_id, deque())
        while recent and recent[0] <= now - self._window_s:
            recent.popleft()
        recent.append(now)
        if len(self._recent) > 10_000:
            self._forget_quiet(now)
        return len(recent) > self._limit

    def _forget_quiet(self, now: float) -> None:
        for chat_id in [
            c for c, r in self._recent.items() if not r or r[-1] <= now - self._window_s
        ]:
            del self._recent[chat_id]
            self._warned.discard(chat_id)
