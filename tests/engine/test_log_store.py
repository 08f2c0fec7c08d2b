"""ConversationLog: writes are acknowledged after commit, reads come back in conversation order."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from engine.log import ConversationLog, LogConfig, Retrieved


@pytest.fixture
async def conversation_log(tmp_path: Path) -> AsyncIterator[ConversationLog]:
    log = await ConversationLog.open(tmp_path / "log.db")
    yield log
    await log.close()


async def test_a_bot_turn_round_trips_with_everything_it_records(
    conversation_log: ConversationLog,
) -> None:
    log = conversation_log
    conversation = await log.start_conversation("telegram", "1001", language="en")
    question = await log.add_turn(
        conversation,
        "customer",
        "Where is my parcel?",
        sentiment_label="negative",
        sentiment_score=-0.4,
        models={"sentiment": "lexicon"},
    )
    answer = await log.add_turn(
        conversation,
        "bot",
        "It ships in two days.",
        action="answer",
        reason="confident",
        kb_version="v7",
        models={"generator": "extractive", "embedder": "all-MiniLM-L6-v2"},
        latencies_ms={"retrieve": 12.5, "generate": 3.0},
        retrieved=[Retrieved("shipping-time", 0.91), Retrieved("returns", 0.42)],
    )
    await log.add_feedback(answer, 1)

    assert question < answer
    found = await log.get_conversation(conversation)
    assert found is not None
    assert (found.channel, found.external_user_id, found.language) == ("telegram", "1001", "en")
    assert found.updated_at >= found.created_at
    first, second = found.turns
    assert (first.role, first.text, first.sentiment_label, first.sentiment_score) == (
        "customer",
        "Where is my parcel?",
        "negative",
        -0.4,
    )
    assert first.models == {"sentiment": "lexicon"} and first.feedback is None
    assert second.id == answer and second.action == "answer" and second.reason == "confident"
    assert second.kb_version == "v7" and second.feedback == 1
    assert second.models == {"embedder": "all-MiniLM-L6-v2", "generator": "extractive"}
    assert second.latencies_ms == {"generate": 3.0, "retrieve": 12.5}
    assert second.retrieved == (Retrieved("shipping-time", 0.91), Retrieved("returns", 0.42))


async def test_recent_turns_are_the_last_ones_oldest_first(
    conversation_log: ConversationLog,
) -> None:
    log = conversation_log
    conversation = await log.start_conversation("terminal", "me")
    other = await log.start_conversation("terminal", "someone else")
    for n in range(6):
        await log.add_turn(conversation, "customer" if n % 2 == 0 else "bot", f"message {n}")
        await log.add_turn(other, "customer", f"other {n}")

    recent = await log.recent_turns(conversation, 3)
    assert [turn.text for turn in recent] == ["message 3", "message 4", "message 5"]
    assert len(await log.recent_turns(conversation, 100)) == 6
    assert await log.recent_turns(conversation, 0) == []
    assert await log.recent_turns(12345, 5) == []
    assert await log.get_conversation(12345) is None
    assert await log.latest_conversation_id("terminal", "me") == conversation
    assert await log.latest_conversation_id("telegram", "me") is None


async def test_personal_data_is_redacted_unless_turned_off(tmp_path: Path) -> None:
    text = "I am jane@example.com, call +44 20 7946 0958 about order 12345678"
    async with await ConversationLog.open(tmp_path / "on.db") as log:
        conversation = await log.start_conversation("telegram", "1")
        await log.add_turn(conversation, "customer", text)
        await log.add_turn(conversation, "operator", "I wrote to jane@example.com")
        stored = [turn.text for turn in await log.recent_turns(conversation)]
    assert stored == [
        "I am [email], call [phone] about order 12345678",
        "I wrote to [email]",
    ]

    config = LogConfig(redact_pii=False)
    async with await ConversationLog.open(tmp_path / "off.db", config) as log:
        conversation = await log.start_conversation("telegram", "1")
        await log.add_turn(conversation, "customer", text)
        assert [turn.text for turn in await log.recent_turns(conversation)] == [text]


async def test_bad_writes_fail_with_a_message_that_says_what_to_do(
    conversation_log: ConversationLog,
) -> None:
    log = conversation_log
    conversation = await log.start_conversation("telegram", "1")
    question = await log.add_turn(conversation, "customer", "hi")
    with pytest.raises(ValueError, match="start one with start_conversation"):
        await log.add_turn(999, "customer", "hello?")
    with pytest.raises(ValueError, match="role 'robot' is not one of"):
        await log.add_turn(conversation, "robot", "beep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs role 'bot'"):
        await log.add_turn(conversation, "customer", "hi", action="answer")
    with pytest.raises(ValueError, match="together, or neither"):
        await log.add_turn(conversation, "customer", "hi", sentiment_label="negative")
    with pytest.raises(ValueError, match="feedback rates replies"):
        await log.add_feedback(question, 1)
    with pytest.raises(ValueError, match="no turn 999"):
        await log.add_feedback(999, -1)
    with pytest.raises(ValueError, match="must be 1 or -1"):
        await log.add_feedback(question, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no handover 999"):
        await log.close_handover(999)
    # The failures left nothing behind and the writer is still working.
    assert [turn.text for turn in await log.recent_turns(conversation)] == ["hi"]
    assert await log.add_turn(conversation, "customer", "still here") > question


async def test_a_second_vote_replaces_the_first(conversation_log: ConversationLog) -> None:
    log = conversation_log
    conversation = await log.start_conversation("telegram", "1")
    reply = await log.add_turn(conversation, "bot", "Hello!")
    await log.add_feedback(reply, 1)
    await log.add_feedback(reply, -1)
    (turn,) = await log.recent_turns(conversation)
    assert turn.feedback == -1


async def test_handovers_open_and_close(conversation_log: ConversationLog) -> None:
    log = conversation_log
    conversation = await log.start_conversation("telegram", "1")
    handover = await log.open_handover(conversation, "negative sentiment", topic_id=77)
    opened = await log.open_handover_for(conversation)
    assert opened is not None and opened.id == handover and opened.closed_at is None
    assert opened.reason == "negative sentiment" and opened.topic_id == 77
    assert await log.handover_for_topic(77) == opened

    await log.close_handover(handover, operator_id="op-5")
    await log.close_handover(handover)  # closing twice changes nothing
    assert await log.open_handover_for(conversation) is None
    assert await log.handover_for_topic(77) is None
    with closing(sqlite3.connect(log.path)) as conn:
        closed_at, operator = conn.execute(
            "SELECT closed_at, operator_id FROM handovers WHERE id = ?", (handover,)
        ).fetchone()
    assert closed_at >= opened.opened_at and operator == "op-5"
    with pytest.raises(ValueError, match="no conversation 999"):
        await log.open_handover(999, "angry")


async def test_close_commits_every_queued_write(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = await ConversationLog.open(path, LogConfig(batch_max=8, batch_wait_ms=50))
    conversation = await log.start_conversation("terminal", "1")
    pending = [
        asyncio.create_task(log.add_turn(conversation, "customer", f"m{n}")) for n in range(50)
    ]
    await asyncio.sleep(0)  # let every task queue its write
    await log.close()
    ids = await asyncio.gather(*pending)
    assert len(set(ids)) == 50
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM turns").fetchone() == (50,)
    with pytest.raises(RuntimeError, match="log is closed"):
        await log.add_turn(conversation, "customer", "too late")


async def test_a_cancelled_caller_still_gets_its_turn_written(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with await ConversationLog.open(path, LogConfig(batch_wait_ms=50)) as log:
        conversation = await log.start_conversation("terminal", "1")
        task = asyncio.create_task(log.add_turn(conversation, "customer", "written anyway"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT text FROM turns").fetchall() == [("written anyway",)]


async def test_a_long_read_transaction_does_not_block_the_writer(
    conversation_log: ConversationLog,
) -> None:
    log = conversation_log
    conversation = await log.start_conversation("terminal", "1")
    await log.add_turn(conversation, "customer", "before")
    with closing(sqlite3.connect(log.path, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM turns").fetchone() == (1,)
        async with asyncio.timeout(2):
            await log.add_turn(conversation, "customer", "during")
            assert len(await log.recent_turns(conversation)) == 2
        # The reader still sees its snapshot; the writer went ahead anyway.
        assert reader.execute("SELECT count(*) FROM turns").fetchone() == (1,)
        reader.execute("COMMIT")


async def test_a_read_cancelled_during_its_begin_leaves_the_reader_usable(
    conversation_log: ConversationLog,
) -> None:
    # The reader's thread runs BEGIN even when the awaiting read is cancelled meanwhile; the
    # read transaction must still end, or every later read fails inside it.
    log = conversation_log
    conversation = await log.start_conversation("terminal", "1")
    began, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def hold_begin(statement: str) -> None:
        if statement == "BEGIN":
            loop.call_soon_threadsafe(began.set)
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=30)

    await log._reader.call(lambda conn: conn.set_trace_callback(hold_begin))
    read = asyncio.create_task(log.get_conversation(conversation))
    await asyncio.wait_for(began.wait(), 30)
    read.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await read
    await log._reader.call(lambda conn: conn.set_trace_callback(None))

    assert not await log._reader.call(lambda conn: conn.in_transaction)
    assert await log.get_conversation(conversation) is not None
    assert await log.recent_turns(conversation) == []
