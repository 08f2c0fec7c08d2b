"""Flood counts and hand-over state in Redis: what one process sees, another sees too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import pytest
from redis.asyncio import Redis

from bot.operator import OperatorDesk
from bot.shared import RedisFloodWindow, RedisHandoverBoard
from engine import Engine
from engine.log import ConversationLog
from tests.services import RedisNamespace

GROUP = -1001234567890


@dataclass
class LogOnly:
    """An engine as far as the operator desk's restore reads it: its conversation log."""

    conversation_log: ConversationLog


@pytest.fixture
async def clients(redis_namespace: RedisNamespace) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two connections, as two bot processes have."""
    one, two = Redis.from_url(redis_namespace.url), Redis.from_url(redis_namespace.url)
    yield one, two
    await one.aclose()
    await two.aclose()


async def test_a_flood_is_counted_across_processes_and_noticed_once(
    clients: tuple[Redis, Redis], redis_namespace: RedisNamespace
) -> None:
    one, two = (RedisFloodWindow(c, redis_namespace.prefix, 2, 60.0) for c in clients)
    assert await one.hit(7) == (False, False)
    assert await two.hit(7) == (False, False)
    assert await one.hit(7) == (True, True)  # the third message in the window: one notice
    assert await two.hit(7) == (True, False)
    assert await two.hit(8) == (False, False)  # other chats count on their own


async def test_a_quiet_window_answers_again(
    clients: tuple[Redis, Redis], redis_namespace: RedisNamespace
) -> None:
    window = RedisFloodWindow(clients[0], redis_namespace.prefix, 1, 0.2)
    assert await window.hit(7) == (False, False)
    assert await window.hit(7) == (True, True)
    await clients[0].delete(f"{redis_namespace.prefix}flood:7")  # the window passed
    assert await window.hit(7) == (False, False)
    assert await window.hit(7) == (True, True)  # a new flood gets a new notice


async def test_a_hand_over_by_one_worker_is_seen_by_another(
    clients: tuple[Redis, Redis],
    redis_namespace: RedisNamespace,
    conversation_log: ConversationLog,
) -> None:
    # The desk reads hand-overs from the log only; no knowledge base is needed here.
    engine = cast(Engine, LogOnly(conversation_log))
    boards = [RedisHandoverBoard(c, redis_namespace.prefix) for c in clients]
    first, second = (OperatorDesk(engine, GROUP, ("en",), handovers=b) for b in boards)
    await second.restore()
    conversation = await conversation_log.start_conversation("telegram", "42")
    await conversation_log.open_handover(conversation, "human_requested")
    await first.restore()  # this worker learns of the open hand-over and shares it
    assert first.is_with_operator(42)
    assert not second.is_with_operator(42)
    await second.refresh(42)  # before handling chat 42's next update
    assert second.is_with_operator(42)
    await boards[0].mark(42, False)  # closed by an operator, through another worker
    await second.refresh(42)
    assert not second.is_with_operator(42)
    assert not await boards[1].holds(42)


async def test_one_process_at_a_time_watches_the_log_for_the_desk(
    clients: tuple[Redis, Redis], redis_namespace: RedisNamespace
) -> None:
    first, second = (RedisHandoverBoard(c, redis_namespace.prefix, lease_s=60) for c in clients)
    assert await first.lead()
    assert not await second.lead()
    assert await first.lead()  # the leader keeps its lease
    await clients[0].delete(f"{redis_namespace.prefix}desk-watcher")  # the leader's lease ran out
    assert await second.lead()
    assert not await first.lead()
