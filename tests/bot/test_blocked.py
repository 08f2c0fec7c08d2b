"""A customer who blocked the bot: recorded once, nothing more sent to them, no traceback, and
answered again once they write again (end to end through the fake Bot API)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from engine.log import ConversationLog
from tests.bot.conftest import SlowGenerator, StartBot
from tests.bot.hostile import tracebacks
from tests.bot.test_chat import RETURN_WINDOW, buttons, text_of
from tests.telegram.fake_api import FakeTelegram


def skipped(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "it blocked the bot after writing" in r.getMessage()]


async def test_a_customer_who_blocked_the_bot_is_left_alone_until_they_write_again(
    start_bot: StartBot,
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = 151
    caplog.set_level(logging.INFO)
    # Three questions written, then the bot blocked before it got to any of them.
    for question in (RETURN_WINDOW, "How do I return an item?", "Can I pay with PayPal?"):
        tg.send_text(chat, question)
    tg.block(chat)
    await asyncio.sleep(1.1)  # message dates are whole seconds
    async with start_bot(generator=SlowGenerator(), stream_interval_s=0.05):
        # The first meets the block; the two queued behind it are left unanswered.
        await tg.wait_for(lambda: len(skipped(caplog)) == 2, timeout=60)
        await tg.wait_idle(quiet=0.5)
        to_chat = [c for c in tg.calls if c.get("chat_id") == chat]
        # One request met the block; nothing was sent there after it.
        assert [c.status for c in to_chat] == [403]
        await asyncio.sleep(1.1)
        tg.send_text(chat, "How long does delivery take?")  # writing again unblocks
        await tg.wait_for(lambda: any(buttons(m) for m in tg.messages(chat)))
        await tg.wait_idle()
    [answer] = tg.messages(chat)
    assert "Source:" in text_of(answer)
    noted = [r for r in caplog.records if "refuses the bot" in r.getMessage()]
    assert len(noted) == 1
    assert not tracebacks(caplog)
    conversation = await conversation_log.latest_conversation_id("telegram", str(chat))
    assert conversation is not None
    turns = await conversation_log.recent_turns(conversation, 20)
    # The reply the block cut short was not logged as a bot turn.
    assert [t.role for t in turns] == ["customer", "customer", "bot"]
