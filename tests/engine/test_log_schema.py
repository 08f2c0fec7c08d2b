"""The log file's schema: created fresh, migrated step by step, refused when newer than the code."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from engine.log import SCHEMA_VERSION, ConversationLog, LogConfig
from engine.log.schema import MIGRATIONS, migrate, open_database, schema_version


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows}


async def test_open_creates_the_file_in_wal_mode_at_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "var" / "conversations.db"
    log = await ConversationLog.open(config=LogConfig(path=path))
    await log.close()
    with closing(sqlite3.connect(path)) as conn:
        assert schema_version(conn) == SCHEMA_VERSION == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert {"conversations", "turns", "retrieved", "feedback", "handovers"} <= tables(conn)
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"turns_by_conversation", "conversations_by_customer"} <= indexes


async def test_an_older_file_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = await ConversationLog.open(path)
    conversation = await log.start_conversation("telegram", "42")
    await log.add_turn(conversation, "customer", "hello")
    await log.close()
    step = ("ALTER TABLE turns ADD COLUMN channel_message_id INTEGER", "CREATE TABLE notes (x)")

    with closing(open_database(path)) as conn:
        assert migrate(conn, (*MIGRATIONS, step)) == SCHEMA_VERSION + 1
        assert "notes" in tables(conn)
        assert conn.execute("SELECT text, channel_message_id FROM turns").fetchall() == [
            ("hello", None)
        ]
        # Running the migrations again changes nothing.
        assert migrate(conn, (*MIGRATIONS, step)) == SCHEMA_VERSION + 1


def test_a_failing_step_leaves_the_file_at_the_previous_version(tmp_path: Path) -> None:
    broken = ("CREATE TABLE half_done (x)", "INSERT INTO no_such_table VALUES (1)")
    with closing(open_database(tmp_path / "log.db")) as conn:
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            migrate(conn, (*MIGRATIONS, broken))
        assert schema_version(conn) == SCHEMA_VERSION
        assert "half_done" not in tables(conn)
        assert not conn.in_transaction


async def test_a_file_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with closing(open_database(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match=r"newer than this code knows.*upgrade supportbot"):
        await ConversationLog.open(path)


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(RuntimeError, match="not a usable conversation log"):
        await ConversationLog.open(path)


def test_readers_do_not_create_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no conversation log at"):
        open_database(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_config_rejects_impossible_batching() -> None:
    with pytest.raises(ValueError, match="batch_max must be at least 1"):
        LogConfig(batch_max=0)
    with pytest.raises(ValueError, match="batch_wait_ms must be 0 or more"):
        LogConfig(batch_wait_ms=-1)


async def test_old_free_text_reasons_become_reason_codes(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(conn, MIGRATIONS[:2])
        conn.execute(
            "INSERT INTO conversations (channel, external_user_id, created_at, updated_at) "
            "VALUES ('telegram', '1', 1.0, 1.0)"
        )
        old = [
            ("answer", "confident: score 0.912"),
            ("answer", "clarify choice: option 2"),
            ("answer", "confident: score 0.7; ungrounded (2 of 9 words): extractive answer"),
            ("answer", "confident: score 0.7; generation failed (timeout): extractive answer"),
            ("clarify", "ambiguous: 2 entries within margin"),
            ("handoff", "out_of_scope"),
            ("handoff", "repeated_failure"),
            ("handoff", "human_requested"),
            ("handoff", "negative_sentiment"),
        ]
        conn.executemany(
            "INSERT INTO turns (conversation_id, role, text, created_at, action, reason) "
            "VALUES (1, 'bot', 'x', 2.0, ?, ?)",
            old,
        )
        conn.executemany(
            "INSERT INTO handovers (conversation_id, reason, opened_at) VALUES (1, ?, 3.0)",
            [("negative_sentiment",), ("Upset customer",), ("no confident answer",)],
        )
    async with await ConversationLog.open(path) as log:
        found = await log.get_conversation(1)
    assert found is not None
    assert [t.reason_code for t in found.turns] == [
        "confident",
        "clarify_choice",
        "ungrounded",
        "generation_failed",
        "ambiguous",
        "out_of_scope",
        "repeated_failure",
        "human_requested",
        "negative_sentiment",
    ]
    assert [t.reason for t in found.turns] == [reason for _, reason in old]
    assert [h.reason_code for h in found.handovers] == [
        "negative_sentiment",
        "negative_sentiment",
        None,
    ]
