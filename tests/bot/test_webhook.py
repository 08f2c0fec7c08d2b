"""Webhook mode: Telegram's secret header is required, updates are answered, health answers."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiogram import Bot

from bot import build_dispatcher, make_bot, run_webhook
from engine import Engine
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from engine.settings import BotConfig
from retrieval import KnowledgeBase
from tests.bot.test_chat import answered, text_of
from tests.telegram.fake_api import FakeTelegram

SECRET = "s3cret_token-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_answers_updates_and_rejects_a_wrong_secret(
    tg: FakeTelegram, sample_kb: KnowledgeBase, conversation_log: ConversationLog
) -> None:
    port = free_port()
    config = BotConfig(
        api_base_url=tg.base_url,
        mode="webhook",
        listen_port=port,
        webhook_url=f"http://127.0.0.1:{port}",
        stream_interval_s=0.2,
    )
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    bot: Bot = make_bot(tg.token, config)
    stop = asyncio.Event()
    serving = asyncio.create_task(
        run_webhook(bot, build_dispatcher(engine, config), config, SECRET, stop)
    )
    try:
        await tg.wait_for("setWebhook")
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
    finally:
        stop.set()
        await serving
