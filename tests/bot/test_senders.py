"""Messages Telegram sends without a person in `from`, and photos with a question in the
caption, end to end through the fake Bot API."""

from __future__ import annotations

import time

import pytest

from bot.senders import CHAT_CHANNEL
from engine.log import ConversationLog
from tests.bot.conftest import StartBot
from tests.bot.hostile import apologies, refused_calls, tracebacks
from tests.bot.test_chat import RETURN_WINDOW, buttons, text_of
from tests.telegram.fake_api import FakeTelegram

MENTION = "@support_test_bot"


async def test_chats_speaking_for_themselves_are_answered_each_in_its_own_conversation(
    start_bot: StartBot,
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    group, channel, other_group = -3001, -1003002, -3003
    tg.add_chat(channel, "channel", title="Shop news")
    async with start_bot():
        # A channel post forwarded into its discussion group, mentioning the bot.
        tg.send_text(group, f"{MENTION} {RETURN_WINDOW}", sender_chat_id=channel)
        # Two anonymous admins of the group, told apart by their signatures.
        tg.send_text(
            group,
            f"{MENTION} How do I return an item?",
            sender_chat_id=group,
            author_signature="Ann",
        )
        tg.send_text(
            group, f"{MENTION} Can I pay with PayPal?", sender_chat_id=group, author_signature="Bob"
        )
        # An anonymous admin of another group, without a signature.
        tg.send_text(
            other_group, f"{MENTION} How long does delivery take?", sender_chat_id=other_group
        )
        # A message with no `from` at all.
        tg.add_update(
            {
                "message": {
                    "message_id": 900,
                    "date": int(time.time()),
                    "chat": tg.add_chat(group),
                    "sender_chat": tg.add_chat(group),
                    "text": f"{MENTION} How long is the warranty on your products?",
                    "entities": [{"type": "mention", "offset": 0, "length": len(MENTION)}],
                }
            }
        )
        await tg.wait_for(lambda: len(tg.messages(group)) >= 4 and bool(tg.messages(other_group)))
        await tg.wait_idle()
    answers = [text_of(m) for m in tg.messages(group)]
    assert any("30 days" in a for a in answers)
    assert any("Return items" in a for a in answers)
    assert not any(buttons(m) for m in tg.messages(group))  # nobody can be told apart to press
    keys = [str(channel), f"{group}/Ann", f"{group}/Bob", str(other_group), str(group)]
    conversations = [await conversation_log.latest_conversation_id(CHAT_CHANNEL, k) for k in keys]
    assert None not in conversations and len(set(conversations)) == len(keys)
    for conversation in conversations:
        assert conversation is not None
        turns = await conversation_log.recent_turns(conversation)
        assert [t.role for t in turns] == ["customer", "bot"]
    # The placeholder accounts are nobody's conversation.
    for placeholder in ("777000", "1087968824"):
        assert await conversation_log.latest_conversation_id("telegram", placeholder) is None
    assert not apologies(tg, group) and not refused_calls(tg) and not tracebacks(caplog)


async def test_a_photo_with_a_question_in_its_caption_is_answered(
    start_bot: StartBot,
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with start_bot():
        tg.send_photo(141, caption=RETURN_WINDOW)
        await tg.wait_for(lambda: any(buttons(m) for m in tg.messages(141)))
        tg.send_photo(141)
        await tg.wait_for(lambda: len(tg.messages(141)) >= 2)
        await tg.wait_idle()
    answer, uncaptioned = (text_of(m) for m in tg.messages(141))
    assert "30 days" in answer
    assert "only read text" in uncaptioned
    conversation = await conversation_log.latest_conversation_id("telegram", "141")
    assert conversation is not None
    turns = await conversation_log.recent_turns(conversation)
    assert turns[0].text == RETURN_WINDOW
    assert not refused_calls(tg) and not tracebacks(caplog)
