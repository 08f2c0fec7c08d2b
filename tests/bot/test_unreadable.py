"""An update aiogram cannot read (a Message without its chat, as another Bot API version might
send) is skipped and recorded with its raw JSON; everyone else is still served, by long polling
and by webhook."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.journal import UpdateJournal
from engine.log import ConversationLog
from retrieval import KnowledgeBase
from tests.bot.conftest import StartBot
from tests.bot.hostile import tracebacks
from tests.bot.test_chat import RETURN_WINDOW, buttons, text_of
from tests.bot.test_journal import journaled_bot
from tests.bot.test_webhook import webhook_bot
from tests.telegram.fake_api import FakeTelegram


def unreadable(message_id: int) -> dict[str, Any]:
    return {"message": {"message_id": message_id, "date": 0, "text": "no chat here"}}


def answered_each(tg: FakeTelegram, *chats: int) -> bool:
    return all(any(buttons(m) for m in tg.messages(chat)) for chat in chats)


async def test_polling_skips_an_unreadable_update_records_it_and_serves_the_rest(
    tg: FakeTelegram,
    sample_kb: KnowledgeBase,
    conversation_log: ConversationLog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "telegram-updates.db"
    tg.send_text(161, RETURN_WINDOW)
    bad_in_the_middle = tg.add_update(unreadable(1))["update_id"]
    tg.send_text(162, RETURN_WINDOW)
    bad_at_the_end = tg.add_update(unreadable(2))["update_id"]
    async with journaled_bot(tg, sample_kb, conversation_log, path):
        await tg.wait_for(lambda: answered_each(tg, 161, 162), timeout=30)
        tg.send_text(163, RETURN_WINDOW)
        await tg.wait_for(lambda: answered_each(tg, 163), timeout=30)
        await tg.wait_idle()
    assert {bad_in_the_middle, bad_at_the_end} <= set(tg.confirmed_update_ids)
    assert not tg.pending_updates()
    journal = await UpdateJournal.open(path)
    try:
        kept = await journal.unreadable()
    finally:
        await journal.close()
    assert [k[0] for k in kept] == [bad_in_the_middle, bad_at_the_end]
    assert json.loads(kept[0][1]) == {"update_id": bad_in_the_middle, **unreadable(1)}
    assert "chat" in kept[0][2]
    assert not tracebacks(caplog)


async def test_polling_without_a_journal_logs_the_unreadable_update_and_goes_on(
    start_bot: StartBot, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tg.add_update(unreadable(1))["update_id"]
    tg.send_text(164, RETURN_WINDOW)
    async with start_bot():
        await tg.wait_for(lambda: answered_each(tg, 164), timeout=30)
        await tg.wait_idle()
    assert bad in tg.confirmed_update_ids
    [warning] = [r for r in caplog.records if "unreadable update" in r.getMessage()]
    assert warning.levelno == logging.WARNING and '"no chat here"' in warning.getMessage()
    assert not tracebacks(caplog)


async def test_a_webhook_answers_200_to_an_unreadable_update_and_records_it(
    tg: FakeTelegram,
    sample_kb: KnowledgeBase,
    conversation_log: ConversationLog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = await UpdateJournal.open(tmp_path / "telegram-webhook-updates.db")
    try:
        async with webhook_bot(tg, sample_kb, conversation_log, journal):
            bad = tg.add_update(unreadable(1))["update_id"]
            tg.send_text(165, RETURN_WINDOW)
            await tg.wait_for(lambda: answered_each(tg, 165), timeout=30)
            await tg.wait_idle()
        kept = await journal.unreadable()
    finally:
        await journal.close()
    assert [(update_id, status) for update_id, status in tg.webhook_attempts][:1] == [(bad, 200)]
    assert [k[0] for k in kept] == [bad]
    assert "30 days" in text_of(tg.messages(165)[-1])
    assert not tracebacks(caplog)
