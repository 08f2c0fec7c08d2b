"""The polling journal: after a crash nothing taken from Telegram is lost or answered twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiogram.types import Update

from bot import build_dispatcher, make_bot
from bot.i18n import load_i18n
from bot.journal import RECOVERY_NOTICE, UpdateJournal, attach_journal
from engine import Engine
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from engine.settings import BotConfig
from retrieval import KnowledgeBase
from tests.bot.test_chat import text_of
from tests.telegram.fake_api import FakeTelegram


@contextlib.asynccontextmanager
async def journaled_bot(
    tg: FakeTelegram, kb: KnowledgeBase, conversation_log: ConversationLog, path: Path
) -> AsyncIterator[None]:
    """The real dispatcher polling the fake with the journal at `path`, like `python -m bot`."""
    config = BotConfig(api_base_url=tg.base_url, shutdown_grace_s=5.0)
    engine = Engine(kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    journal = await UpdateJournal.open(path)
    bot = make_bot(tg.token, config)
    dp = build_dispatcher(engine, config)
    attach_journal(bot, dp, journal)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        yield
    finally:
        await dp.stop_polling()
        await polling
        await journal.close()


async def test_a_restart_answers_what_was_only_received_and_notices_what_may_have_gone_out(
    tg: FakeTelegram, sample_kb: KnowledgeBase, conversation_log: ConversationLog, tmp_path: Path
) -> None:
    path = tmp_path / "telegram-updates.db"
    # A killed process had taken both updates (written down, unconfirmed at Telegram) and was
    # sending the answer to the second one.
    tg.send_text(501, "How long do I have to return an item?")
    asked = tg.send_text(502, "How long does delivery take?")
    journal = await UpdateJournal.open(path)
    taken = [Update.model_validate(u) for u in tg.pending_updates()]
    await journal.receive(taken)
    await journal.sending(taken[1].update_id)
    await journal.close()

    async with journaled_bot(tg, sample_kb, conversation_log, path):
        await tg.wait_for(lambda: tg.delivery_counts[taken[1].update_id] >= 1, timeout=30)
        await tg.wait_idle(quiet=0.5, timeout=30)
        tg.send_text(501, "Can I pay with PayPal?")
        await tg.wait_for(lambda: len(tg.messages(501)) >= 2, timeout=30)
        await tg.wait_idle(quiet=0.5, timeout=30)

    first, later = tg.messages(501)
    assert "30 days" in text_of(first)
    assert "Source:" in text_of(later)
    [notice] = tg.messages(502)
    assert text_of(notice) == RECOVERY_NOTICE
    assert notice["reply_to_message"]["message_id"] == asked["message_id"]
    # Telegram delivered both again; neither was handled a second time.
    assert all(tg.delivery_counts[u.update_id] == 1 for u in taken)
    journal = await UpdateJournal.open(path)
    try:
        assert await journal.unfinished() == []
    finally:
        await journal.close()


async def test_handled_updates_are_not_handled_again_after_a_restart(
    tg: FakeTelegram, sample_kb: KnowledgeBase, conversation_log: ConversationLog, tmp_path: Path
) -> None:
    path = tmp_path / "telegram-updates.db"
    async with journaled_bot(tg, sample_kb, conversation_log, path):
        tg.send_text(601, "How long do I have to return an item?")
        await tg.wait_for(lambda: bool(tg.messages(601)), timeout=30)
        await tg.wait_idle(quiet=0.5, timeout=30)
    async with journaled_bot(tg, sample_kb, conversation_log, path):
        await tg.wait_idle(quiet=1.0, timeout=30)
    assert len(tg.messages(601)) == 1


def test_the_recovery_notice_is_translated() -> None:
    assert load_i18n(("en", "zh")).gettext(RECOVERY_NOTICE, locale="zh") != RECOVERY_NOTICE
