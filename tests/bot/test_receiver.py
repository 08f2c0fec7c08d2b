"""The receiver role: the webhook answers once an update is queued; what it asks Telegram for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aiogram.types import Update
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_dispatcher
from bot.queue import UpdateQueue
from bot.receiver import ALLOWED_UPDATES, order_key, receiver_app
from engine import Engine
from engine.log import ConversationLog
from engine.settings import BotConfig, QueueConfig
from tests.services import RedisNamespace

SECRET = "receiver-secret"
GROUP = -1001234567890


@dataclass
class LogOnly:
    """An engine as far as building the dispatcher reads it."""

    conversation_log: ConversationLog


def message(chat: int, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": 1,
        "date": 1_700_000_000,
        "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
        "from": {"id": 5, "is_bot": False, "first_name": "Ann"},
        "text": "hello",
        **extra,
    }


@pytest.mark.parametrize("operator_chat_id", [0, GROUP])
def test_the_receiver_asks_for_what_the_workers_handle(
    conversation_log: ConversationLog, operator_chat_id: int
) -> None:
    engine = cast(Engine, LogOnly(conversation_log))
    dp = build_dispatcher(engine, BotConfig(operator_chat_id=operator_chat_id))
    assert sorted(dp.resolve_used_update_types()) == sorted(ALLOWED_UPDATES)


def test_updates_keep_the_order_of_their_chat_or_topic() -> None:
    assert order_key(Update.model_validate({"update_id": 1, "message": message(7)})) == "7"
    topic = message(GROUP, message_thread_id=9, is_topic_message=True)
    assert order_key(Update.model_validate({"update_id": 2, "message": topic})) == f"{GROUP}/9"
    press = {
        "id": "q1",
        "from": {"id": 7, "is_bot": False, "first_name": "Ann"},
        "chat_instance": "c",
        "message": message(7),
        "data": "x",
    }
    assert order_key(Update.model_validate({"update_id": 3, "callback_query": press})) == "7"
    inline = {"id": "i", "from": {"id": 7, "is_bot": False, "first_name": "Ann"}}
    inline |= {"query": "x", "offset": ""}
    assert order_key(Update.model_validate({"update_id": 4, "inline_query": inline})) == ""


@pytest.fixture
async def client(
    redis_namespace: RedisNamespace,
) -> AsyncIterator[tuple[TestClient[Any, Any], UpdateQueue]]:
    config = QueueConfig(url=redis_namespace.url, prefix=redis_namespace.prefix)
    queue = UpdateQueue.connect(config, "worker")
    await queue.check()
    app = receiver_app(queue, BotConfig(), SECRET)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, queue
    await queue.close()


async def test_the_webhook_queues_an_update_once_and_checks_the_secret(
    client: tuple[TestClient[Any, Any], UpdateQueue],
) -> None:
    http, queue = client
    update = {"update_id": 11, "message": message(7)}
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    wrong = await http.post(
        "/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "x"}
    )
    assert wrong.status == 401
    assert (await http.post("/telegram", json={"nope": 1}, headers=headers)).status == 400
    for _ in range(2):  # Telegram delivering it again: queued once
        answer = await http.post("/telegram", json=update, headers=headers)
        assert answer.status == 200
    [entry] = await queue.read(10, block_s=0.1)
    assert (entry.update_id, entry.chat, entry.ticket) == (11, "7", 1)
    assert entry.body == update
    health = await http.get("/health")
    assert (await health.json())["role"] == "receiver"
