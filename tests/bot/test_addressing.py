"""Mentions read from entities whose offsets a hostile update chose."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram.types import Chat, Message, MessageEntity

from bot.addressing import _mentions


def _group_message(text: str, *entities: MessageEntity) -> Message:
    return Message(
        message_id=1,
        date=datetime.now(UTC),
        chat=Chat(id=-1001, type="supergroup"),
        text=text,
        entities=list(entities),
    )


def test_a_mention_is_read_by_utf16_offsets() -> None:
    # "😀" is two UTF-16 code units, so the mention starts at offset 3, not 2.
    mention = MessageEntity(type="mention", offset=3, length=11)
    message = _group_message("😀 @SupportBot hi", mention)
    assert _mentions(message) == {"@supportbot"}


def test_an_offset_inside_a_surrogate_pair_drops_the_half_character() -> None:
    # Offset 1 splits "😀"'s surrogate pair: aiogram's extract_from raises on this.
    split = MessageEntity(type="mention", offset=1, length=12)
    message = _group_message("😀@SupportBot hi", split)
    assert _mentions(message) == {"@supportbot"}
    beyond = _group_message("😀", MessageEntity(type="mention", offset=1, length=40))
    assert _mentions(beyond) == set()
