"""Erasing a customer deletes their rows and leaves none of their text in the files on disk."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from engine.log import ConversationLog, Retrieved, dialogue_examples

MARKER = "zanzibarquokkamarker"
USER = "4242"


def raw_bytes(path: Path) -> bytes:
    """The database file and its -wal and -shm companions, as they are on disk."""
    parts = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return b"".join(part.read_bytes() for part in parts if part.exists())


async def fill_conversation(log: ConversationLog, channel: str, user: str, word: str) -> None:
    conversation = await log.start_conversation(channel, user)
    await log.add_turn(conversation, "customer", f"my {word} is broken")
    reply = await log.add_turn(
        conversation,
        "bot",
        f"sorry about your {word}",
        action="answer",
        retrieved=[Retrieved(f"faq-{word}", 0.8)],
    )
    await log.add_feedback(reply, -1)
    # Longer than a page, so the text lives in overflow pages too.
    await log.add_turn(conversation, "customer", f"{word} " * 2000)
    handover = await log.open_handover(conversation, f"{word} complaint", topic_id=7)
    await log.close_handover(handover, operator_id="op-1")
    await log.add_turn(conversation, "operator", f"we will replace the {word}")


async def test_erasure_removes_every_row_and_every_byte_of_the_customer(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with await ConversationLog.open(path) as log:
        await fill_conversation(log, "telegram", USER, MARKER)
        await log.checkpoint()
        assert MARKER.encode() in path.read_bytes()  # now in the main file, not only the WAL
        await fill_conversation(log, "telegram", USER, MARKER)  # and in the WAL
        await fill_conversation(log, "telegram", "someone-else", "kettle")
        await fill_conversation(log, "terminal", USER, "toaster")  # another channel
        assert MARKER.encode() in raw_bytes(path)

        assert await log.erase_customer("telegram", USER) == 2

        assert MARKER.encode() not in raw_bytes(path)
        assert await log.latest_conversation_id("telegram", USER) is None
        other = await log.latest_conversation_id("telegram", "someone-else")
        assert other is not None
        assert [t.text for t in await log.recent_turns(other, 1)] == ["we will replace the kettle"]
        assert await log.latest_conversation_id("terminal", USER) is not None
        assert await log.erase_customer("telegram", USER) == 0

    assert MARKER.encode() not in raw_bytes(path)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        counts = [
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("conversations", "turns", "retrieved", "feedback", "handovers")
        ]
    assert counts == [2, 8, 2, 2, 2]  # what the two remaining conversations hold
    assert all(MARKER not in example.reply for example in dialogue_examples(path))


def test_the_byte_check_would_see_a_plain_delete(tmp_path: Path) -> None:
    # Some SQLite builds (Debian's) zero deleted content by default, others do not; this shows
    # that without secure_delete a deleted row stays readable, so the test above has teeth.
    path = tmp_path / "plain.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA secure_delete = OFF")
        conn.execute("CREATE TABLE t (text TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [(f"{MARKER} {n}",) for n in range(50)])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("DELETE FROM t")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        assert MARKER.encode() in raw_bytes(path)


async def test_writes_to_an_erased_conversation_fail(tmp_path: Path) -> None:
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        conversation = await log.start_conversation("telegram", "gone")
        await log.erase_customer("telegram", "gone")
        with pytest.raises(ValueError, match="erased, or never started"):
            await log.add_turn(conversation, "customer", "hello again")
