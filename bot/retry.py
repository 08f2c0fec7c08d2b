"""Honour Telegram's flood control: wait `retry_after` and send again, so no reply is lost."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendChatAction, SendMessageDraft, TelegramMethod
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response

log = logging.getLogger(__name__)

# Cosmetic calls: when Telegram says wait, skipping them is better than delaying the answer.
_SKIPPABLE = (SendChatAction,)
# Drafts are retried by the streamer at its own pace; it needs to see the error.
_CALLER_HANDLES = (SendMessageDraft,)


class RetryAfterMiddleware(BaseRequestMiddleware):
    """A Bot API request middleware that retries 429 responses after the time Telegram asks."""

    def __init__(self, max_wait_s: float = 60.0) -> None:
        self._max_wait_s = max_wait_s

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if isinstance(method, _SKIPPABLE):
                    return cast("Response[TelegramType]", True)
                if isinstance(method, _CALLER_HANDLES):
                    raise
                wait = min(float(error.retry_after), self._max_wait_s)
                log.warning(
                    "flood control method=%s chat=%s retry_after=%s",
                    type(method).__name__,
                    getattr(method, "chat_id", None),
                    error.retry_after,
                )
                await asyncio.sleep(wait)
