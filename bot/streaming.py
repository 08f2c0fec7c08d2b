"""Show a reply while it is generated: drafts in private chats, else one message edited.

Updates are throttled per reply and sent in the background, so a slow or rate-limited
Telegram never holds up generation; the final form always replaces the preview. A reply whose
text all comes within half an interval of its first piece (an extractive answer) is shown once,
whole: a preview of it would be replaced at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from aiogram.types import InlineKeyboardMarkup, Message

from bot.formatting import preview

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DraftSupport:
    """Whether the Bot API server takes sendMessageDraft; learnt from its first refusal."""

    enabled: bool = True


class ReplyStream:
    """One reply in one chat: `update` with the text so far, then `finish` with the final form."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        *,
        thread_id: int | None,
        interval_s: float,
        drafts: DraftSupport | None,
        draft_id: int,
    ) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._thread_id = thread_id
        self._interval_s = interval_s
        self._drafts = drafts
        self._draft_id = draft_id or 1
        self._next_at = time.monotonic() + interval_s
        self._first_text_at = 0.0
        self._shown = ""
        self._message: Message | None = None
        self._pending: asyncio.Task[None] | None = None

    def update(self, text: str) -> None:
        """Note the reply so far; it is shown when the chat's interval has passed."""
        if self._pending is not None and not self._pending.done():
            return
        now = time.monotonic()
        if not self._first_text_at:
            self._first_text_at = now
        if now < self._next_at or now < self._first_text_at + self._interval_s / 2:
            return
        html = preview(text)
        if not html or html == self._shown:
            return
        self._next_at = now + self._interval_s
        self._pending = asyncio.create_task(self._show(html))

    async def finish(self, chunks: Sequence[str], markup: InlineKeyboardMarkup | None) -> Message:
        """Replace the preview with the final HTML messages; `markup` goes on the last one."""
        if self._pending is not None:
            with contextlib.suppress(TelegramAPIError):
                await self._pending
        sent: Message | None = None
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            keyboard = markup if last else None
            if index == 0 and self._message is not None:
                sent = await self._edit(self._message, chunk, keyboard)
            else:
                sent = await self._bot.send_message(
                    self._chat_id,
                    chunk,
                    message_thread_id=self._thread_id,
                    reply_markup=keyboard,
                )
        assert sent is not None, "a reply has at least one message"
        return sent

    async def cancel(self) -> None:
        """Stop a preview update in flight (the reply was abandoned)."""
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramAPIError):
                await self._pending

    async def _show(self, html: str) -> None:
        drafts = self._drafts
        try:
            if drafts is not None and drafts.enabled:
                try:
                    await self._bot.send_message_draft(
                        self._chat_id,
                        self._draft_id,
                        message_thread_id=self._thread_id,
                        text=html,
                    )
                    self._shown = html
                    return
                except TelegramRetryAfter as error:
                    self._next_at = time.monotonic() + error.retry_after
                    return
                except TelegramBadRequest as error:
                    log.info("drafts unavailable, editing messages instead: %s", error.message)
                    drafts.enabled = False
            if self._message is None:
                self._message = await self._bot.send_message(
                    self._chat_id, html, message_thread_id=self._thread_id
                )
            else:
                await self._bot.edit_message_text(
                    text=html, chat_id=self._chat_id, message_id=self._message.message_id
                )
            self._shown = html
        except TelegramAPIError as error:
            # A preview is disposable: the final form is sent regardless.
            log.warning("preview update failed chat=%s: %s", self._chat_id, error)

    async def _edit(
        self, message: Message, html: str, markup: InlineKeyboardMarkup | None
    ) -> Message:
        try:
            edited = await self._bot.edit_message_text(
                text=html,
                chat_id=self._chat_id,
                message_id=message.message_id,
                reply_markup=markup,
            )
        except TelegramBadRequest as error:
            if "not modified" not in error.message:
                raise
            if markup is not None:
                await self._bot.edit_message_reply_markup(
                    chat_id=self._chat_id, message_id=message.message_id, reply_markup=markup
                )
            return message
        return edited if isinstance(edited, Message) else message
