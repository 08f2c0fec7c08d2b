"""The log's single writer: one task commits queued writes in batches, one transaction each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar, cast

import aiosqlite

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(slots=True)
class _Job:
    write: Callable[[aiosqlite.Connection], Awaitable[object]]
    done: asyncio.Future[object]
    # False for statements that must run outside a transaction, such as a WAL checkpoint.
    in_transaction: bool


class BatchWriter:
    """Runs every write of one connection from one task, grouping queued writes into commits.

    A batch is what is queued when the task comes round, topped up for at most `wait_s` or until
    it holds `batch_max` writes. Each write runs inside a savepoint, so one failing write fails
    alone; the rest of its batch still commits.
    """

    def __init__(self, conn: aiosqlite.Connection, *, batch_max: int, wait_s: float) -> None:
        self._conn = conn
        self._batch_max = batch_max
        self._wait_s = wait_s
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="conversation-log-writer")

    async def submit(
        self,
        write: Callable[[aiosqlite.Connection], Awaitable[_T]],
        *,
        in_transaction: bool = True,
    ) -> _T:
        """Queue `write` and return its result once the transaction holding it has committed.

        If the caller is cancelled meanwhile, the write still happens; only the answer is lost.
        """
        if self._closing or self._task.done():
            raise RuntimeError("the conversation log is closed; open a new ConversationLog")
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(write, done, in_transaction))
        return cast(_T, await asyncio.shield(done))

    async def close(self) -> None:
        """Commit everything queued so far, then stop the task."""
        if not self._closing:
            self._closing = True
            self._queue.put_nowait(None)
        await self._task

    async def _run(self) -> None:
        batch: list[_Job] = []
        try:
            stopping = False
            while not stopping:
                first = await self._queue.get()
                if first is None:
                    break
                batch, stopping = await self._collect(first)
                await self._process(batch)
        finally:
            # Only reached early if the task is cancelled: fail whatever was not settled.
            self._closing = True
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if job is not None:
                    batch.append(job)
            for job in batch:
                _settle(job, error=RuntimeError("the conversation log writer stopped"))

    async def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        batch = [first]
        while len(batch) < self._batch_max:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        job = await self._queue.get()
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if job is None:
                return batch, True
            batch.append(job)
        return batch, False

    async def _process(self, batch: list[_Job]) -> None:
        group: list[_Job] = []
        for job in batch:
            if job.in_transaction:
                group.append(job)
                continue
            await self._commit(group)
            group = []
            try:
                _settle(job, result=await job.write(self._conn))
            except Exception as exc:
                _settle(job, error=exc)
        await self._commit(group)

    async def _commit(self, group: list[_Job]) -> None:
        if not group:
            return
        conn = self._conn
        outcomes: list[tuple[_Job, object, Exception | None]] = []
        try:
            await conn.execute("BEGIN IMMEDIATE")
            for job in group:
                await conn.execute("SAVEPOINT write")
                try:
                    result = await job.write(conn)
                except Exception as exc:
                    await conn.execute("ROLLBACK TO write")
                    await conn.execute("RELEASE write")
                    outcomes.append((job, None, exc))
                else:
                    await conn.execute("RELEASE write")
                    outcomes.append((job, result, None))
            await conn.execute("COMMIT")
        except Exception as exc:
            # The transaction itself failed (disk full, I/O error): nothing in it was stored.
            log.error("conversation log commit failed writes=%d error=%s", len(group), exc)
            if conn.in_transaction:
                with suppress(Exception):
                    await conn.execute("ROLLBACK")
            for job in group:
                _settle(job, error=exc)
            return
        log.debug("conversation log committed writes=%d", len(group))
        for job, result, error in outcomes:
            _settle(job, result=result, error=error)


def _settle(job: _Job, *, result: object = None, error: BaseException | None = None) -> None:
    if job.done.done():
        return
    if error is None:
        job.done.set_result(result)
    else:
        job.done.set_exception(error)
