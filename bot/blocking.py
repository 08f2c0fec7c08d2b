"""Chats that blocked the bot: noted once, sent nothing more until the customer writes again.

Telegram answers 403 to every message for a customer who blocked the bot (or a group that
removed it). The first 403 is recorded; from then on nothing is sent there (typing indicators
and drafts are dropped quietly, messages fail at once without a request), queued messages from
before the block are not answered, and a message written after it lifts the block.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.base import BaseSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import SendChatAction, SendMessageDraft, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Message, TelegramObject

if TYPE_CHECKING:
    from aiogram.methods import Response

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
# Cosmetic calls: dropped without an error for a chat that blocked the bot.
_DROPPED = (SendChatAction, SendMessageDraft)


class BlockedChats(BaseMiddleware):
    """Outer message middleware and Bot API request middleware (`attach`) sharing one record."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._since: dict[int, float] = {}
        self._clock = clock
        self._sessions: weakref.WeakSet[BaseSession] = weakref.WeakSet()

    def attach(self, bot: Bot) -> None:
        """Watch the bot's requests for 403s (once per session; run at start-up)."""
        if bot.session not in self._sessions:
            self._sessions.add(bot.session)
            bot.session.middleware(_BlockedRequests(self))

    def is_blocked(self, chat_id: int) -> bool:
        return chat_id in self._since

    def block(self, chat_id: int, reason: str) -> None:
        if chat_id not in self._since:
            self._since[chat_id] = self._clock()
            log.warning("chat=%s refuses the bot (%s); silent until it writes", chat_id, reason)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Message) and event.chat.id in self._since:
            if event.date.timestamp() <= self._since[event.chat.id]:
                log.info("not answering chat=%s: it blocked the bot after writing", event.chat.id)
                return None
            del self._since[event.chat.id]
            log.info("chat=%s writes again; answering it again", event.chat.id)
        return await handler(event, data)


class _BlockedRequests(BaseRequestMiddleware):
    def __init__(self, chats: BlockedChats) -> None:
        self._chats = chats

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        if isinstance(chat_id, int) and self._chats.is_blocked(chat_id):
            if isinstance(method, _DROPPED):
                return cast("Response[TelegramType]", True)
            raise TelegramForbiddenError(method, "Forbidden: the chat blocked the bot earlier")
        try:
            return await make_request(bot, method)
        except TelegramForbiddenError as error:
            if isinstance(chat_id, int):
                self._chats.block(chat_id, error.message)
            if isinstance(method, _DROPPED):
                return cast("Response[TelegramType]", True)
            raise
