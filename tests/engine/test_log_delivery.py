"""Delivery state, idempotent turns and the listings front ends read from the log."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from engine.log import ConversationLog, Retrieved
from engine.log.schema import MIGRATIONS, migrate


@pytest.fixture
async def conversation_log(tmp_path: Path) -> AsyncIterator[ConversationLog]:
    log = await ConversationLog.open(tmp_path / "log.db")
    yield log
    await log.close()


async def test_a_redelivered_message_keeps_one_turn(conversation_log: ConversationLog) -> None:
    log = conversation_log
    conversation = await log.start_conversation("telegram", "5")
    first = await log.add_turn(conversation, "customer", "where is it?", external_id="update-9")
    again = await log.add_turn(conversation, "customer", "where is it?", external_id="update-9")
    # The same id from another role or conversation is another message.
    reply = await log.add_turn(conversation, "bot", "here", external_id="update-9")
    other = await log.start_conversation("telegram", "6")
    elsewhere = await log.add_turn(other, "customer", "hi", external_id="update-9")
    plain = [await log.add_turn(conversation, "customer", "no id") for _ in range(2)]

    assert again == first
    assert len({first, reply, elsewhere, *plain}) == 5
    turns = await log.recent_turns(conversation, 10)
    assert [(t.role, t.external_id) for t in turns] == [
        ("customer", "update-9"),
        ("bot", "update-9"),
        ("customer", None),
        ("customer", None),
    ]


async def test_pending_replies_are_listed_until_delivered(
    conversation_log: ConversationLog,
) -> None:
    log = conversation_log
    conversation = await log.start_conversation("telegram", "5")
    await log.add_turn(conversation, "customer", "hello")
    sent = await log.add_turn(conversation, "bot", "hi", action="answer", delivery="pending")
    lost = await log.add_turn(
        conversation,
        "bot",
        "shipping takes two days",
        action="answer",
        delivery="pending",
        retrieved=[Retrieved("shipping", 0.8)],
    )
    web = await log.start_conversation("web", "5")
    await log.add_turn(web, "bot", "elsewhere", delivery="pending")

    pending = await log.undelivered_turns("telegram")
    assert [(user, turn.id, turn.delivery) for user, turn in pending] == [
        ("5", sent, "pending"),
        ("5", lost, "pending"),
    ]
    assert pending[1][1].retrieved == (Retrieved("shipping", 0.8),)

    await log.set_delivery(sent, "delivered")
    await log.set_delivery(lost, "undelivered")
    assert await log.undelivered_turns("telegram") == []
    turn = await log.get_turn(lost)
    assert turn is not None and turn.delivery == "undelivered" and turn.text.startswith("shipping")
    assert await log.get_turn(9999) is None
    with pytest.raises(ValueError, match="no turn 9999"):
        await log.set_delivery(9999, "delivered")
    with pytest.raises(ValueError, match="not one of"):
        await log.set_delivery(sent, "sent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not one of"):
        await log.add_turn(conversation, "bot", "x", delivery="lost")  # type: ignore[arg-type]


async def test_conversations_are_listed_newest_first_with_counts(
    conversation_log: ConversationLog,
) -> None:
    log = conversation_log
    quiet = await log.start_conversation("telegram", "1")
    busy = await log.start_conversation("web", "2")
    for text in ("a", "b", "c"):
        await log.add_turn(busy, "customer", text)
    await log.open_handover(busy, "human_requested")
    await log.close_conversation(quiet)
    await log.close_conversation(quiet)  # closing twice keeps the first time

    first, second = await log.list_conversations()
    assert (first.id, first.turns, first.open_handover, first.closed_at) == (busy, 3, True, None)
    assert (second.id, second.turns, second.open_handover) == (quiet, 0, False)
    assert second.closed_at is not None and second.closed_at >= second.created_at
    assert [c.id for c in await log.list_conversations("telegram")] == [quiet]
    assert [c.id for c in await log.list_conversations(limit=1, offset=1)] == [quiet]
    found = await log.get_conversation(quiet)
    assert found is not None and found.closed_at == second.closed_at
    with pytest.raises(ValueError, match="no conversation 999"):
        await log.close_conversation(999)


async def test_a_version_1_file_gains_delivery_and_keeps_its_turns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(conn, MIGRATIONS[:1])
        conn.execute(
            "INSERT INTO conversations (channel, external_user_id, created_at, updated_at) "
            "VALUES ('telegram', '3', 1.0, 1.0)"
        )
        conn.execute(
            "INSERT INTO turns (conversation_id, role, text, created_at) "
            "VALUES (1, 'customer', 'old question', 1.0)"
        )
    async with await ConversationLog.open(path) as log:
        (turn,) = await log.recent_turns(1)
        assert (turn.text, turn.delivery, turn.external_id) == ("old question", None, None)
        again = await log.add_turn(1, "customer", "new", external_id="u1")
        assert await log.add_turn(1, "customer", "new", external_id="u1") == again
        (summary,) = await log.list_conversations()
        assert (summary.turns, summary.closed_at) == (2, None)
