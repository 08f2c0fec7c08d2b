"""After a crash the log and the customers agree: one customer turn per question, a bot turn
marked delivered only once Telegram confirmed it, and the restart notice only where the answer
may really have reached the customer (end to end through the fake Bot API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiogram.types import Update

from bot.journal import RECOVERY_NOTICE, UpdateJournal
from engine import Engine, FinalReply
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog, Turn
from engine.sentiment import LexiconSentiment
from retrieval import KnowledgeBase
from tests.bot.conftest import StartBot
from tests.bot.hostile import refused_calls, tracebacks
from tests.bot.test_chat import RETURN_WINDOW, answered, text_of
from tests.bot.test_journal import journaled_bot
from tests.telegram.fake_api import FakeTelegram


async def turns_of(log: ConversationLog, user: int) -> list[Turn]:
    conversation = await log.latest_conversation_id("telegram", str(user))
    assert conversation is not None
    return await log.recent_turns(conversation, 50)


async def test_an_answer_is_delivered_once_telegram_confirmed_it_and_undelivered_if_refused(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    group = -100173
    async with start_bot():
        tg.send_text(171, RETURN_WINDOW)
        await answered(tg, 171)
        # A question in a forum topic that is deleted before the answer goes out: Telegram
        # refuses the answer ("message thread not found").
        tg.send_text(group, f"@support_test_bot {RETURN_WINDOW}", user_id=173, message_thread_id=9)
        tg.world.chat(group).topics.pop(9)
        await tg.wait_for(lambda: bool(tg.calls_for("sendMessage", ok=False)))
        await tg.wait_idle()
    [_, answer] = await turns_of(conversation_log, 171)
    assert (answer.role, answer.delivery, answer.external_id) == ("bot", "delivered", "171/1")
    [_, refused] = await turns_of(conversation_log, 173)
    assert (refused.role, refused.delivery) == ("bot", "undelivered")


async def test_a_restart_settles_each_half_done_question_once_as_the_log_says(
    tg: FakeTelegram,
    sample_kb: KnowledgeBase,
    conversation_log: ConversationLog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A killed process had, for three questions, logged the customer's turn and its answer:
    # 181's answer never went out (journal: received), 182's was going out (sending, answer
    # pending in the log), and 183's Telegram had confirmed (sending, answer delivered).
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    asked: dict[int, dict[str, Any]] = {}
    for chat in (181, 182, 183):
        asked[chat] = tg.send_text(chat, RETURN_WINDOW)
        conversation = await engine.conversation("telegram", str(chat))
        events = [
            event
            async for event in engine.reply(
                conversation, RETURN_WINDOW, external_id=f"{chat}/1", delivery="pending"
            )
        ]
        final = events[-1]
        assert isinstance(final, FinalReply)
        if chat == 183:
            await conversation_log.set_delivery(final.turn_id, "delivered")
    logged = {chat: await turns_of(conversation_log, chat) for chat in asked}
    path = tmp_path / "telegram-updates.db"
    journal = await UpdateJournal.open(path)
    taken = [Update.model_validate(u) for u in tg.pending_updates()]
    await journal.receive(taken)
    for update in taken[1:]:
        await journal.sending(update.update_id)
    await journal.close()

    async with journaled_bot(tg, sample_kb, conversation_log, path):
        await tg.wait_for(lambda: len(tg.confirmed_update_ids) == 3, timeout=30)
        await tg.wait_idle(quiet=0.5, timeout=30)

    [answer] = tg.messages(181)  # sent now, with the text logged before the crash
    assert text_of(answer).startswith(logged[181][1].text[:40])
    [notice] = tg.messages(182)
    assert text_of(notice) == RECOVERY_NOTICE
    assert notice["reply_to_message"]["message_id"] == asked[182]["message_id"]
    assert tg.messages(183) == []  # it had arrived: neither a notice nor a second answer
    after = {chat: await turns_of(conversation_log, chat) for chat in asked}
    for chat in asked:
        assert [t.id for t in after[chat]] == [t.id for t in logged[chat]]  # one pair each
    deliveries = {chat: after[chat][1].delivery for chat in asked}
    # 182's answer may or may not have reached the customer: the log says it is unconfirmed.
    assert deliveries == {181: "delivered", 182: "pending", 183: "delivered"}
    assert not refused_calls(tg) and not tracebacks(caplog)
