"""An older console file's hand-over holders and ratings move into the conversation log once."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from bot.web.console_upgrade import Imported, import_old_console
from bot.web.users import UserStore
from engine.log import ConversationLog
from engine.rating import take_rating
from tests.web.console_helpers import PASSWORD

# The console file's tables before holders and ratings moved to the log (commit 11405d1).
OLD_SCHEMA = (
    "CREATE TABLE users ("
    "name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE sessions ("
    "token_hash TEXT PRIMARY KEY, name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, "
    "csrf TEXT NOT NULL, expires_at REAL NOT NULL)",
    "CREATE TABLE assignments ("
    "handover_id INTEGER PRIMARY KEY, name TEXT NOT NULL, assigned_at REAL NOT NULL)",
    "CREATE TABLE notes ("
    "id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL, name TEXT NOT NULL, "
    "text TEXT NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE ratings ("
    "handover_id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL, "
    "asked_at REAL NOT NULL, score INTEGER, rated_at REAL)",
)


def tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_an_old_console_files_holders_and_ratings_move_to_the_log(tmp_path: Path) -> None:
    users_path = tmp_path / "console.db"
    async with await ConversationLog.open(tmp_path / "conversations.db") as log:
        held_c = await log.start_conversation("telegram", "1")
        held = await log.open_handover(held_c, "human_requested", topic_id=7)
        rated_c = await log.start_conversation("web", "2")
        rated = await log.open_handover(rated_c, "human_requested")
        await log.close_handover(rated, operator_id="olaf")
        awaited_c = await log.start_conversation("telegram", "3")
        awaited = await log.open_handover(awaited_c, "human_requested")
        await log.close_handover(awaited, operator_id="olaf")
        now = time.time()
        with closing(sqlite3.connect(users_path)) as conn, conn:
            for statement in OLD_SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT INTO assignments VALUES (?, 'olaf', ?)", (held, now))
            conn.execute("INSERT INTO notes VALUES (1, ?, 'olaf', 'kept', ?)", (held_c, now))
            conn.executemany(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?)",
                [
                    (rated, rated_c, now - 86400, 4, now - 86000),
                    (awaited, awaited_c, now, None, None),
                    (999, 999, now, 5, now),  # erased from the log since
                ],
            )
        users = UserStore(users_path)
        users.create("olaf", "operator", PASSWORD)

        assert await import_old_console(users, log) == Imported(holders=1, ratings=2)

        taken = await log.open_handover_for(held_c)
        assert taken is not None and taken.assignee == "olaf"
        # Announced when it was taken: the outbox does not post it in the topic again.
        assert taken.announced_assignee == "olaf"
        assert await log.handover_ratings() == [4]
        # Dated as before: CSAT stays in the period it was given in.
        assert await log.handover_ratings(since=now - 3600) == []
        before = await log.get_conversation(rated_c)
        assert before is not None and before.handovers[0].rated_at == now - 86000
        # The awaited rating is collected: "5" is a rating, not a question for the bot.
        collected = await take_rating(log, awaited_c, "5")
        assert collected is not None and collected.handover_id == awaited
        assert sorted(await log.handover_ratings()) == [4, 5]
        # Once only: the old tables are renamed, and a second start finds nothing to move.
        assert {"assignments", "ratings"}.isdisjoint(tables(users_path))
        assert {"imported_assignments", "imported_ratings"} <= tables(users_path)
        assert await import_old_console(users, log) is None
        assert [n.text for n in users.notes(held_c)] == ["kept"]
        assert users.check("olaf", PASSWORD) is not None


async def test_a_new_console_file_has_nothing_to_move(tmp_path: Path) -> None:
    async with await ConversationLog.open(tmp_path / "conversations.db") as log:
        users = UserStore(tmp_path / "console.db")
        users.create("ann", "admin", PASSWORD)
        assert await import_old_console(users, log) is None
