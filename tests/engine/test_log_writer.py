"""The batch writer groups queued writes into few transactions and isolates a failing write."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.log.connection import Connection, InlineConnection, LogConnection, Query
from engine.log.writer import BatchWriter


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[LogConnection]:
    conn = await LogConnection.open(tmp_path / "w.db", ["PRAGMA journal_mode = WAL"])
    try:
        await conn.execute("CREATE TABLE t (n INTEGER NOT NULL)")
        yield conn
    finally:
        await conn.close()


async def traced(conn: LogConnection) -> list[str]:
    statements: list[str] = []
    await conn.call(lambda sqlite: sqlite.set_trace_callback(statements.append))
    return statements


async def count(conn: LogConnection) -> int:
    rows = list(await conn.execute_fetchall("SELECT count(*) FROM t"))
    return int(rows[0][0])


async def test_concurrent_writes_share_transactions_of_at_most_batch_max(
    conn: LogConnection,
) -> None:
    statements = await traced(conn)
    writer = BatchWriter(conn, batch_max=64, wait_s=0.005)

    async def write(n: int) -> int:
        async def run(c: Connection) -> int:
            await c.execute("INSERT INTO t (n) VALUES (?)", (n,))
            return n

        return await writer.submit(run)

    assert await asyncio.gather(*(write(n) for n in range(100))) == list(range(100))
    await writer.close()
    commits = statements.count("COMMIT")
    assert 2 <= commits <= 4  # 100 writes, at most 64 a batch
    assert await count(conn) == 100


async def test_a_write_arriving_within_the_wait_joins_the_batch(
    conn: LogConnection,
) -> None:
    statements = await traced(conn)
    writer = BatchWriter(conn, batch_max=64, wait_s=0.5)

    async def run(c: Connection) -> None:
        await c.execute("INSERT INTO t (n) VALUES (1)")

    first = asyncio.create_task(writer.submit(run))
    await asyncio.sleep(0.02)
    await asyncio.gather(first, writer.submit(run))
    assert statements.count("COMMIT") == 1
    await writer.close()


async def test_a_failing_write_fails_alone(conn: LogConnection) -> None:
    writer = BatchWriter(conn, batch_max=64, wait_s=0.005)

    async def good(c: Connection) -> None:
        await c.execute("INSERT INTO t (n) VALUES (1)")

    async def bad(c: Connection) -> None:
        await c.execute("INSERT INTO t (n) VALUES (2)")
        raise ValueError("refused")

    results = await asyncio.gather(
        writer.submit(good), writer.submit(bad), writer.submit(good), return_exceptions=True
    )
    await writer.close()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    rows = await conn.execute_fetchall("SELECT n FROM t ORDER BY rowid")
    assert [tuple(row) for row in rows] == [(1,), (1,)]


async def test_a_failed_commit_fails_the_whole_batch_and_the_writer_goes_on(
    conn: LogConnection,
) -> None:
    writer = BatchWriter(conn, batch_max=64, wait_s=0.005)
    # A deferred constraint is only checked at COMMIT, so this batch's commit fails.
    await conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    await conn.execute(
        "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    await conn.execute("PRAGMA foreign_keys = ON")

    async def orphan(c: Connection) -> None:
        await c.execute("INSERT INTO child (p) VALUES (42)")

    async def good(c: Connection) -> None:
        await c.execute("INSERT INTO t (n) VALUES (1)")

    results = await asyncio.gather(
        writer.submit(good), writer.submit(orphan), return_exceptions=True
    )
    assert all(isinstance(result, Exception) for result in results)
    assert await count(conn) == 0
    await writer.submit(good)
    assert await count(conn) == 1
    await writer.close()


async def test_writes_outside_a_transaction_run_between_batches(
    conn: LogConnection,
) -> None:
    writer = BatchWriter(conn, batch_max=64, wait_s=0.005)
    seen: list[bool] = []

    async def probe(c: Connection) -> None:
        assert isinstance(c, InlineConnection)
        seen.append(c.sqlite.in_transaction)

    await asyncio.gather(
        writer.submit(probe), writer.submit(probe, in_transaction=False), writer.submit(probe)
    )
    await writer.close()
    assert seen == [True, False, True]


def writer_task() -> asyncio.Task[object]:
    return next(t for t in asyncio.all_tasks() if t.get_name() == "conversation-log-writer")


async def stored(conn: LogConnection) -> list[int]:
    rows = await conn.execute_fetchall("SELECT n FROM t ORDER BY n")
    return [int(row[0]) for row in rows]


async def test_a_cancelled_close_answers_each_write_with_what_was_stored(
    conn: LogConnection,
) -> None:
    writer = BatchWriter(conn, batch_max=64, wait_s=0.005)
    started, release = threading.Event(), threading.Event()

    def insert(n: int, *, hold: bool = False, fail: bool = False) -> Query[int]:
        async def run(c: Connection) -> int:
            await c.execute("INSERT INTO t (n) VALUES (?)", (n,))
            if hold:  # blocks the connection's thread mid-batch
                started.set()
                release.wait(10)
            if fail:
                raise ValueError("refused")
            return n

        return run

    batch = [
        asyncio.create_task(writer.submit(insert(1, hold=True))),
        asyncio.create_task(writer.submit(insert(2))),
        asyncio.create_task(writer.submit(insert(3, fail=True))),
    ]
    assert await asyncio.to_thread(started.wait, 10)
    queued = asyncio.create_task(writer.submit(insert(4)))  # not in the batch being committed
    closing = asyncio.create_task(writer.close())
    await asyncio.sleep(0.05)
    closing.cancel()  # cancels the writer task, which close() awaits
    await asyncio.sleep(0.05)
    release.set()

    results = await asyncio.gather(*batch, queued, return_exceptions=True)
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert results[:2] == [1, 2]
    assert isinstance(results[2], ValueError)
    assert isinstance(results[3], RuntimeError) and "stopped" in str(results[3])
    assert await stored(conn) == [1, 2]
    with pytest.raises(RuntimeError, match="closed"):
        await writer.submit(insert(5))


async def test_writes_being_collected_fail_when_the_writer_task_is_cancelled(
    conn: LogConnection,
) -> None:
    writer = BatchWriter(conn, batch_max=64, wait_s=10)

    async def run(c: Connection) -> None:
        await c.execute("INSERT INTO t (n) VALUES (1)")

    pending = asyncio.create_task(writer.submit(run))
    await asyncio.sleep(0.05)  # the writer holds it, waiting up to wait_s for more
    writer_task().cancel()  # as asyncio.run does on the way out
    with pytest.raises(RuntimeError, match="stopped"):
        await asyncio.wait_for(pending, 5)
    assert await stored(conn) == []


class Halt(BaseException):
    """Not an Exception: what a write must not leave a transaction open behind."""


async def test_a_base_exception_in_a_write_rolls_back_and_releases_the_file(
    conn: LogConnection, tmp_path: Path
) -> None:
    writer = BatchWriter(conn, batch_max=64, wait_s=0.005)

    async def halt(c: Connection) -> None:
        await c.execute("INSERT INTO t (n) VALUES (1)")
        raise Halt

    with pytest.raises(RuntimeError, match="stopped"):
        await writer.submit(halt)
    with pytest.raises(Halt):
        await writer.close()
    assert not await conn.call(lambda sqlite: sqlite.in_transaction)
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # "database is locked" while the writer holds it
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert await stored(conn) == []
