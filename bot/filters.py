"""Filters the routers use, as coroutines: aiogram runs a plain function filter (an `F` magic
filter too) in a worker thread, a thread hop for every message it looks at."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message


async def has_text(message: Message) -> bool:
    """A message with text (`F.text`)."""
    return bool(message.text)


async def has_caption(message: Message) -> bool:
    """A media message with a caption (`F.caption`)."""
    return bool(message.caption)


class InChat(Filter):
    """Messages in one chat (`F.chat.id == chat_id`)."""

    def __init__(self, chat_id: int) -> None:
        self._chat_id = chat_id

    async def __call__(self, message: Message) -> bool:
        return message.chat.id == self._chat_id


class PressedOutside(Filter):
    """Button presses anywhere but under a message in one chat. Unlike
    `F.message.chat.id != chat_id`, a press with no message (under an inline-mode message,
    which this bot never sends) passes too."""

    def __init__(self, chat_id: int) -> None:
        self._chat_id = chat_id

    async def __call__(self, query: CallbackQuery) -> bool:
        return query.message is None or query.message.chat.id != self._chat_id
