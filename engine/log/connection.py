"""An SQLite connection owned by one thread, where a whole query function runs in one hop.

The log's query functions (engine/log/queries.py) are coroutines over a small connection API.
Run through aiosqlite, each statement was a round trip between the event loop and the
connection's thread, about 14 a reply; that cost more CPU than the SQL itself
(scripts/bench_engine.py). Here `LogConnection.run` sends the whole function to the thread,
where it runs against `InlineConnection`, whose methods never suspend, so it finishes there
in one pass: one round trip for a reply's read, one for a batch of writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias, TypeVar

_T = TypeVar("_T")


# Positional (a sequence) or named (a mapping) statement parameters.
Parameters: TypeAlias = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Executed:
    """What a statement changed: the rows it touched."""

    rowcount: int


class Connection(Protocol):
    """The statements a log query function may await."""

    async def execute(self, sql: str, parameters: Parameters = ()) -> Executed: ...

    async def execute_fetchall(self, sql: str, parameters: Parameters = ()) -> list[Any]: ...

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Executed: ...

    async def execute_insert(self, sql: str, parameters: Parameters = ()) -> tuple[int] | None:
        """The new row's rowid, as a one-element row."""
        ...


# A coroutine function over a connection: what the log's queries and writes are.
Query: TypeAlias = Callable[["Connection"], Coroutine[Any, Any, _T]]


class InlineConnection:
    """A `Connection` whose methods run at once on the calling thread (the connection's own)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.sqlite = conn

    async def execute(self, sql: str, parameters: Parameters = ()) -> Executed:
        return Executed(self.sqlite.execute(sql, parameters).rowcount)

    async def execute_fetchall(self, sql: str, parameters: Parameters = ()) -> list[Any]:
        return self.sqlite.execute(sql, parameters).fetchall()

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Executed:
        return Executed(self.sqlite.executemany(sql, parameters).rowcount)

    async def execute_insert(self, sql: str, parameters: Parameters = ()) -> tuple[int] | None:
        rowid = self.sqlite.execute(sql, parameters).lastrowid
        return None if rowid is None else (rowid,)


def finish(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """The result of a coroutine that awaits only an `InlineConnection`, run to its end now."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: _T = stop.value
        return result
    coroutine.close()
    raise RuntimeError("a log query awaited something other than its connection")


class LogConnection:
    """An SQLite connection in autocommit mode on a thread of its own.

    Open with `await LogConnection.open(path, pragmas)`; close with `await close()`.
    """

    def __init__(self, thread: ThreadPoolExecutor, inline: InlineConnection) -> None:
        self._thread = thread
        self._inline = inline

    @classmethod
    async def open(cls, path: Path, pragmas: Iterable[str] = ()) -> LogConnection:
        """Connect to `path` and apply `pragmas`, on the connection's thread."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conversation-log")

        def connect() -> sqlite3.Connection:
            # Autocommit mode: the writer issues BEGIN and COMMIT itself.
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                for pragma in pragmas:
                    conn.execute(pragma)
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            conn = await asyncio.get_running_loop().run_in_executor(thread, connect)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(thread, InlineConnection(conn))

    async def call(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        """`function(connection)`, run on the connection's thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, function, self._inline.sqlite
        )

    async def run(self, query: Query[_T]) -> _T:
        """A log query function, run to its end on the connection's thread in one hop."""
        return await self.call(lambda _: self.run_here(query))

    def run_here(self, query: Query[_T]) -> _T:
        """A log query function run now; only on the connection's thread (inside `call`)."""
        return finish(query(self._inline))

    def execute_here(self, sql: str) -> None:
        """Run one statement now; only on the connection's thread (inside `call`)."""
        self._inline.sqlite.execute(sql)

    async def execute(self, sql: str, parameters: Parameters = ()) -> Executed:
        return await self.run(lambda c: c.execute(sql, parameters))

    async def execute_fetchall(self, sql: str, parameters: Parameters = ()) -> list[Any]:
        return await self.run(lambda c: c.execute_fetchall(sql, parameters))

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Executed:
        return await self.run(lambda c: c.executemany(sql, parameters))

    async def execute_insert(self, sql: str, parameters: Parameters = ()) -> tuple[int] | None:
        return await self.run(lambda c: c.execute_insert(sql, parameters))

    async def close(self) -> None:
        """Close the connection, then its thread."""
        try:
            await self.call(lambda conn: conn.close())
        finally:
            self._thread.shutdown(wait=False)
