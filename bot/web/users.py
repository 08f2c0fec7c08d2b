"""Console accounts and their sessions: argon2 password hashes, server-side session rows.

Passwords are guessable secrets, so they are stored with argon2id (a slow, memory-hard hash);
session tokens are 32 random bytes, so the session table keeps only their SHA-256. Sessions
live in the same SQLite file as the accounts, so that several server processes share them and
`python -m bot.web users` can change an account while the server runs (a removed account's
sessions end with it). The file also keeps operators' internal notes. Who holds a hand-over and
the customer's rating of it live in the conversation log, shared with the Telegram desk (an
older file's `assignments` and `ratings` tables are moved there once, by bot.web.console_upgrade).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

Role = Literal["operator", "admin"]
ROLES: tuple[Role, ...] = ("operator", "admin")
MIN_PASSWORD = 10
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users ("
    "name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions ("
    "token_hash TEXT PRIMARY KEY, name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, "
    "csrf TEXT NOT NULL, expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS notes ("
    "id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL, name TEXT NOT NULL, "
    "text TEXT NOT NULL, created_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS notes_conversation ON notes (conversation_id)",
)
_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class User:
    """A console account; the password is never kept, only its argon2 hash."""

    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in user and the CSRF token every state-changing request must carry."""

    user: User
    csrf: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class OldState:
    """What an older console file kept that now lives in the conversation log."""

    # (hand-over id, console user name) of hand-overs taken in the console.
    assignments: list[tuple[int, str]]
    # (hand-over id, when asked, score or None while awaited, when given) of ratings.
    ratings: list[tuple[int, float, int | None, float | None]]


# An older file's tables, and the names they keep once their rows are in the log.
_OLD_TABLES = {"assignments": "imported_assignments", "ratings": "imported_ratings"}


@dataclass(frozen=True, slots=True)
class Note:
    """An operator's internal note on a conversation; never sent to the customer."""

    id: int
    conversation_id: int
    name: str
    text: str
    created_at: float


class UserStore:
    """The console's SQLite file: accounts, sessions and notes."""

    def __init__(self, path: Path, *, session_hours: float = 12.0) -> None:
        self.path = path
        self._session_s = session_hours * 3600.0

    # Accounts.

    def create(self, name: str, role: Role, password: str) -> User:
        """Add an account; ValueError says what to change."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"user name {name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {ROLES}")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"the password must have at least {MIN_PASSWORD} characters")
        with self._connect() as conn:
            try:
                conn.execute(
                    "INSERT INTO users (name, hash, role, created_at) VALUES (?, ?, ?, ?)",
                    (name, _hasher.hash(password), role, time.time()),
                )
            except sqlite3.IntegrityError:
                raise ValueError(
                    f"a user named {name!r} exists; remove it first or pick another name"
                ) from None
        return User(name, role)

    def remove(self, name: str) -> bool:
        """Delete an account and end its sessions; False when there is no such account."""
        with self._connect() as conn:
            conn.execute("DELETE FROM sessions WHERE name = ?", (name,))
            return conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def users(self) -> list[User]:
        with self._connect() as conn:
            rows = conn.execute("SELECT name, role FROM users ORDER BY name").fetchall()
        return [User(str(name), role) for name, role in rows]

    def check(self, name: str, password: str) -> User | None:
        """The account when the password matches, else None (same work for unknown names)."""
        with self._connect() as conn:
            row = conn.execute("SELECT hash, role FROM users WHERE name = ?", (name,)).fetchone()
        stored = row[0] if row else _DUMMY
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if _hasher.check_needs_rehash(stored):
            with self._connect() as conn:
                conn.execute(
                    "UPDATE users SET hash = ? WHERE name = ?", (_hasher.hash(password), name)
                )
        return User(name, row[1])

    # Sessions.

    def start_session(self, user: User) -> str:
        """A new session's token (for the cookie only: the store keeps its hash)."""
        token = secrets.token_urlsafe(32)
        with self._connect() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at < ?", (time.time(),))
            conn.execute(
                "INSERT INTO sessions (token_hash, name, csrf, expires_at) VALUES (?, ?, ?, ?)",
                (
                    _digest(token),
                    user.name,
                    secrets.token_urlsafe(32),
                    time.time() + self._session_s,
                ),
            )
        return token

    def session(self, token: str) -> Session | None:
        """The live session of a cookie's token, or None."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT u.name, u.role, s.csrf, s.expires_at FROM sessions s "
                "JOIN users u ON u.name = s.name WHERE s.token_hash = ? AND s.expires_at > ?",
                (_digest(token), time.time()),
            ).fetchone()
        if row is None:
            return None
        return Session(User(row[0], row[1]), row[2], row[3])

    def end_session(self, token: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))

    # Console state.

    def add_note(self, conversation_id: int, name: str, text: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO notes (conversation_id, name, text, created_at) VALUES (?, ?, ?, ?)",
                (conversation_id, name, text, time.time()),
            )

    def notes(self, conversation_id: int) -> list[Note]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, conversation_id, name, text, created_at FROM notes "
                "WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [Note(*row) for row in rows]

    def old_state(self) -> OldState | None:
        """The hand-over holders and ratings of an older console file; None when there are none
        (a new file, or one moved to the log already)."""
        with self._connect() as conn:
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not tables & _OLD_TABLES.keys():
                return None
            assignments: list[tuple[int, str]] = []
            ratings: list[tuple[int, float, int | None, float | None]] = []
            if "assignments" in tables:
                assignments = [
                    (int(h), str(name))
                    for h, name in conn.execute(
                        "SELECT handover_id, name FROM assignments ORDER BY handover_id"
                    )
                ]
            if "ratings" in tables:
                ratings = [
                    (int(h), float(asked), *((None, None) if score is None else (int(score), at)))
                    for h, asked, score, at in conn.execute(
                        "SELECT handover_id, asked_at, score, rated_at FROM ratings "
                        "ORDER BY handover_id"
                    )
                ]
        return OldState(assignments, ratings)

    def retire_old_state(self) -> None:
        """Rename an older file's tables once their rows are in the log: kept, never read."""
        with self._connect() as conn:
            for old, new in _OLD_TABLES.items():
                with contextlib.suppress(sqlite3.OperationalError):  # absent: nothing to move
                    conn.execute(f"ALTER TABLE {old} RENAME TO {new}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, isolation_level=None, timeout=10)) as conn:
            conn.execute("PRAGMA foreign_keys = ON")
            for statement in _SCHEMA:
                conn.execute(statement)
            yield conn


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))
