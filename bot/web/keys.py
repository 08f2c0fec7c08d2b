"""API keys: created once and shown once, stored as SHA-256 hashes, scoped, revocable.

Keys are 32 random bytes, so a fast hash is enough to make a stolen key file useless (a slow
password hash such as argon2 protects guessable secrets, and would cost every request
milliseconds). The file is SQLite so that `python -m bot.web keys` can change it while the
server runs; the server notices the change by the file's modification time.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Scope = Literal["chat", "admin"]
SCOPES: tuple[Scope, ...] = ("chat", "admin")
PREFIX = "sb-"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS keys ("
    "name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, scope TEXT NOT NULL, "
    "rate_per_minute REAL, created_at REAL NOT NULL, revoked_at REAL)"
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's identity and rights; the secret itself is never kept."""

    name: str
    scope: Scope
    # None: the server's [web] rate_per_minute.
    rate_per_minute: float | None = None


def hash_key(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """The key file; `find` is cheap enough to run on every request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, ApiKey] = {}

    def create(self, name: str, scope: Scope, *, rate_per_minute: float | None = None) -> str:
        """Add a key and return its secret: the only time it is ever shown."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"key name {name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
        if scope not in SCOPES:
            raise ValueError(f"scope {scope!r} is not one of {SCOPES}")
        if rate_per_minute is not None and rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute must be above 0, got {rate_per_minute}")
        secret = PREFIX + secrets.token_urlsafe(32)
        with self._connect() as conn:
            try:
                conn.execute(
                    "INSERT INTO keys (name, hash, scope, rate_per_minute, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, hash_key(secret), scope, rate_per_minute, time.time()),
                )
            except sqlite3.IntegrityError:
                raise ValueError(
                    f"a key named {name!r} exists; revoke it first or pick another name"
                ) from None
        return secret

    def revoke(self, name: str) -> bool:
        """Revoke the named key at once; False when there is no such live key."""
        with self._connect() as conn:
            cursor = conn.execute(
                "UPDATE keys SET revoked_at = ?, name = name || '#revoked-' || ? "
                "WHERE name = ? AND revoked_at IS NULL",
                (time.time(), secrets.token_hex(4), name),
            )
            return cursor.rowcount > 0

    def names(self) -> list[tuple[str, Scope]]:
        """The live keys' names and scopes."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT name, scope FROM keys WHERE revoked_at IS NULL ORDER BY name"
            ).fetchall()
        return [(str(name), scope) for name, scope in rows]

    def find(self, secret: str) -> ApiKey | None:
        """The live key with this secret, or None."""
        if not secret.startswith(PREFIX):
            return None
        self._reload_if_changed()
        return self._by_hash.get(hash_key(secret))

    def _reload_if_changed(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._by_hash = {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        with self._lock, closing(sqlite3.connect(self.path)) as conn:
            rows = conn.execute(
                "SELECT hash, name, scope, rate_per_minute FROM keys WHERE revoked_at IS NULL"
            ).fetchall()
            self._by_hash = {h: ApiKey(name, scope, rate) for h, name, scope, rate in rows}
            self._stamp = stamp

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # sqlite3's own context manager commits but never closes the connection.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.execute(_SCHEMA)
            yield conn
