"""The log's single writer: one task commits queued writes in batches, one transaction each."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar, cast

from engine.log.connection import LogConnection, Query

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(slots=True)
class _Job:
    write: Query[object]
    done: asyncio.Future[object]
    # False for statements that must run outside a transaction, such as a WAL checkpoint.
    in_transaction: bool


_Outcome = tuple[_Job, object, Exception | None]


class BatchWriter:
    """Runs every write of one connection from one task, grouping queued writes into commits.

    A batch is what is queued when the task comes round, topped up for at most `wait_s` or until
    it holds `batch_max` writes. Each write runs inside a savepoint, so one failing write fails
    alone; the rest of its batch still commits.
    """

    def __init__(self, conn: LogConnection, *, batch_max: int, wait_s: float) -> None:
        self._conn = conn
        self._batch_max = batch_max
        self._wait_s = wait_s
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="conversation-log-writer")

    async def submit(
        self,
        write: Query[_T],
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
                batch = [first]
                stopping = await self._collect(batch)
                await self._process(batch)
        finally:
            # Reached early only if the task is cancelled or a write raised a BaseException:
            # fail whatever was not settled.
            self._closing = True
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if job is not None:
                    batch.append(job)
            for job in batch:
                _settle(job, error=RuntimeError("the conversation log writer stopped"))

    async def _collect(self, batch: list[_Job]) -> bool:
        # Tops up `batch` in place, so that `_run` can still fail it if cancelled meanwhile.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
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
                return True
            batch.append(job)
        return False

    async def _process(self, batch: list[_Job]) -> None:
        # The whole batch runs on the connection's thread in one hop; results are settled here.
        running = asyncio.ensure_future(self._conn.call(lambda _: self._process_here(batch)))
        try:
            outcomes = await asyncio.shield(running)
        except asyncio.CancelledError:
            # The thread commits the batch whatever happens to this task: wait for it, so that
            # each write is answered with what was stored rather than "stopped", then stop.
            while not running.done():
                with suppress(asyncio.CancelledError):
                    await asyncio.wait([running])
            _settle_all(running.result())
            raise
        _settle_all(outcomes)

    def _process_here(self, batch: list[_Job]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        group: list[_Job] = []
        for job in batch:
            if job.in_transaction:
                group.append(job)
                continue
            outcomes += self._commit_here(group)
            group = []
            try:
                outcomes.append((job, self._conn.run_here(job.write), None))
            except Exception as exc:
                outcomes.append((job, None, exc))
        outcomes += self._commit_here(group)
        return outcomes

    def _commit_here(self, group: list[_Job]) -> list[_Outcome]:
        if not group:
            return []
        conn = self._conn.execute_here
        outcomes: list[_Outcome] = []
        try:
            conn("BEGIN IMMEDIATE")
            for job in group:
                conn("SAVEPOINT write")
                try:
                    result = self._conn.run_here(job.write)
                except Exception as exc:
                    conn("ROLLBACK TO write")
                    conn("RELEASE write")
                    outcomes.append((job, None, exc))
                else:
                    conn("RELEASE write")
                    outcomes.append((job, result, None))
            conn("COMMIT")
        except Exception as exc:
            # The transaction itself failed (disk full, I/O error): nothing in it was stored.
            log.error("conversation log commit failed writes=%d error=%s", len(group), exc)
            with suppress(Exception):
                conn("ROLLBACK")
            return [(job, None, exc) for job in group]
        except BaseException:
            # Not a failed write but the writer stopping: release the file's write lock first.
            with suppress(Exception):
                conn("ROLLBACK")
            raise
        log.debug("conversation log committed writes=%d", len(group))
        return outcomes


def _settle_all(outcomes: list[_Outcome]) -> None:
    for job, result, error in outcomes:
        _settle(job, result=result, error=error)


def _settle(job: _Job, *, result: object = None, error: BaseException | None = None) -> None:
    if job.done.done():
        return
    if error is None:
        job.done.set_result(result)
    else:
        job.done.set_exception(error)
