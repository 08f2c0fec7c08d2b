"""Webhook mode: the secret header is required, updates are answered, health answers, and the
updates a killed process was working on are neither lost nor answered twice when Telegram
delivers them again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiogram import Bot
from aiogram.types import Update

from bot import build_dispatcher, make_bot, run_webhook
from bot.journal import RECOVERY_NOTICE, UpdateJournal
from engine import Engine
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from engine.settings import BotConfig
from retrieval import KnowledgeBase
from tests.bot.test_chat import answered, text_of
from tests.ports import free_port
from tests.telegram.fake_api import FakeTelegram

SECRET = "s3cret_token-1"


@contextlib.asynccontextmanager
async def webhook_bot(
    tg: FakeTelegram,
    kb: KnowledgeBase,
    conversation_log: ConversationLog,
    journal: UpdateJournal | None = None,
) -> AsyncIterator[int]:
    """The real dispatcher behind its webhook on a free port, which it yields."""
    port = free_port()
    config = BotConfig(
        api_base_url=tg.base_url,
        mode="webhook",
        listen_port=port,
        webhook_url=f"http://127.0.0.1:{port}",
        stream_interval_s=0.2,
    )
    engine = Engine(kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    bot: Bot = make_bot(tg.token, config)
    stop = asyncio.Event()
    dp = build_dispatcher(engine, config)
    serving = asyncio.create_task(run_webhook(bot, dp, config, SECRET, stop, journal=journal))
    try:
        await tg.wait_for("setWebhook")
        yield port
    finally:
        stop.set()
        await serving


async def test_webhook_answers_updates_and_rejects_a_wrong_secret(
    tg: FakeTelegram, sample_kb: KnowledgeBase, conversation_log: ConversationLog
) -> None:
    async with webhook_bot(tg, sample_kb, conversation_log) as port:
        registered = tg.calls_for("setWebhook")[-1]
        assert registered["secret_token"] == SECRET
        assert registered["url"] == f"http://127.0.0.1:{port}/telegram"

        tg.send_text(201, "How long do I have to return an item?")
        messages = await answered(tg, 201)
        assert "30 days" in text_of(messages[-1])

        base = f"http://127.0.0.1:{port}"
        update = {
            "update_id": 999,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 202, "type": "private"},
                "text": "hi",
            },
        }
        async with aiohttp.ClientSession() as http:
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
            async with http.post(f"{base}/telegram", json=update, headers=wrong) as response:
                assert response.status == 401
            async with http.post(f"{base}/telegram", json=update) as response:
                assert response.status == 401
            async with http.get(f"{base}/health") as response:
                assert response.status == 200
                assert (await response.json())["status"] == "ok"
        await asyncio.sleep(0.2)
        assert not tg.messages(202)


async def test_updates_delivered_again_after_a_crash_are_answered_once_or_noticed(
    tg: FakeTelegram, sample_kb: KnowledgeBase, conversation_log: ConversationLog, tmp_path: Path
) -> None:
    # A killed process had taken three updates (Telegram got no answer for any of them): one
    # only received, one whose answer was going out, one answered just before the kill.
    tg.send_text(301, "How long do I have to return an item?")
    asked = tg.send_text(302, "How long does delivery take?")
    tg.send_text(303, "Can I pay with PayPal?")
    taken = [Update.model_validate(u) for u in tg.pending_updates()]
    journal = await UpdateJournal.open(tmp_path / "telegram-webhook-updates.db")
    try:
        assert [await journal.arrive(u) for u in taken] == [None, None, None]
        await journal.sending(taken[1].update_id)
        await journal.done(taken[2].update_id)

        async with webhook_bot(tg, sample_kb, conversation_log, journal):
            await tg.wait_for(lambda: len(tg.confirmed_update_ids) == 3, timeout=30)
            tg.send_text(303, "Can I pay with PayPal?")
            await tg.wait_for(lambda: len(tg.confirmed_update_ids) == 4, timeout=30)
            await tg.wait_idle(quiet=0.5, timeout=30)

        [answer] = tg.messages(301)
        assert "30 days" in text_of(answer)
        [notice] = tg.messages(302)
        assert text_of(notice) == RECOVERY_NOTICE
        assert notice["reply_to_message"]["message_id"] == asked["message_id"]
        [later] = tg.messages(303)  # the answered update was only acknowledged
        assert "Source:" in text_of(later)
        assert all(tg.delivery_counts[u.update_id] == 1 for u in taken)
        assert await journal.unfinished() == []
        assert await journal.arrive(taken[0]) == "done"
    finally:
        await journal.close()
