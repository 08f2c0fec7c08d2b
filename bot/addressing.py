"""Which messages are for the bot: all in private chats, in groups only mentions and replies."""

from __future__ import annotations

from aiogram import Bot
from aiogram.filters import Filter
from aiogram.types import Message


async def is_addressed(message: Message, bot: Bot) -> bool:
    """Whether the bot should answer: a private chat, a mention of it, or a reply to it."""
    if message.chat.type == "private":
        return True
    me = await bot.me()
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        return True
    return bool(me.username) and f"@{me.username}".lower() in _mentions(message)


def without_mention(text: str, username: str | None) -> str:
    """The message text with the bot's @username taken out."""
    if not username:
        return text.strip()
    mention = f"@{username}"
    index = text.lower().find(mention.lower())
    while index >= 0:
        text = text[:index] + text[index + len(mention) :]
        index = text.lower().find(mention.lower())
    return " ".join(text.split())


def _mentions(message: Message) -> set[str]:
    text = message.text or message.caption or ""
    found: set[str] = set()
    for entity in message.entities or message.caption_entities or []:
        part = _entity_text(text, entity.offset, entity.length)
        if entity.type in ("mention", "bot_command") and part:
            found.add(part[part.find("@") :].lower() if "@" in part else part.lower())
    return found


def _entity_text(text: str, offset: int, length: int) -> str:
    """The text an entity covers. Telegram counts UTF-16 code units, and an update's offsets
    are not to be trusted: one may split a surrogate pair, which aiogram's `extract_from`
    raises on, so half characters are dropped instead."""
    units = text.encode("utf-16-le", errors="surrogatepass")
    return units[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="ignore")


class Addressed(Filter):
    """Lets through messages for the bot, never those in the operators' group."""

    def __init__(self, operator_chat_id: int = 0) -> None:
        self._operator_chat_id = operator_chat_id

    async def __call__(self, message: Message, bot: Bot) -> bool:
        if self._operator_chat_id and message.chat.id == self._operator_chat_id:
            return False
        return await is_addressed(message, bot)
