"""Canned replies: a short list of stock texts that admins keep and operators insert.

They live in the console's SQLite file, in a table of their own, so every server process sees
the same list.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

MAX_REPLIES = 50
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS canned_replies ("
    "id INTEGER PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, "
    "created_by TEXT NOT NULL, created_at REAL NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class CannedReply:
    """A stock reply: a short title to pick it by and the text it puts in the reply box."""

    id: int
    title: str
    text: str
    created_by: str


class CannedReplies:
    """The canned replies of the console's SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, title: str, text: str, created_by: str) -> CannedReply:
        """Add a reply; ValueError says what to change."""
        title, text = title.strip(), text.strip()
        if not title or not text:
            raise ValueError("a canned reply needs a title and a text")
        with self._connect() as conn:
            count = conn.execute("SELECT COUNT(*) FROM canned_replies").fetchone()[0]
            if count >= MAX_REPLIES:
                raise ValueError(f"at most {MAX_REPLIES} canned replies; remove one first")
            cursor = conn.execute(
                "INSERT INTO canned_replies (title, text, created_by, created_at) "
                "VALUES (?, ?, ?, ?)",
                (title, text, created_by, time.time()),
            )
            assert cursor.lastrowid is not None
        return CannedReply(cursor.lastrowid, title, text, created_by)

    def remove(self, reply_id: int) -> bool:
        with self._connect() as conn:
            deleted = conn.execute("DELETE FROM canned_replies WHERE id = ?", (reply_id,))
            return deleted.rowcount > 0

    def all(self) -> list[CannedReply]:
        """Every canned reply, by title."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, title, text, created_by FROM canned_replies ORDER BY title, id"
            ).fetchall()
        return [CannedReply(int(i), str(t), str(x), str(b)) for i, t, x, b in rows]

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, isolation_level=None, timeout=10)) as conn:
            conn.execute(_SCHEMA)
            yield conn
