"""Search the queries of concurrent replies together, so that many share one embedding call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Q = TypeVar("Q")
R = TypeVar("R")


class SearchBatcher(Generic[Q, R]):
    """Collects the queries of concurrent callers and searches them in one batch.

    A batch starts `max_wait_s` after the first query arrives while none is running; queries
    that arrive while a batch is being searched form the next one. `search` is a plain sync
    function (embedding and FAISS search), always run on the same worker thread: torch keeps a
    team of CPU threads per calling thread, and asyncio's default executor hands the calls to
    changing threads, each with a team of its own (scripts/bench_engine.py: replies/s over the
    encode rate 0.41 -> 0.45, mean of three runs each).
    """

    def __init__(
        self,
        search: Callable[[list[Q]], list[R]],
        *,
        max_wait_s: float = 0.002,
        max_batch: int = 256,
    ) -> None:
        self._search = search
        self._max_wait_s = max_wait_s
        self._max_batch = max_batch
        self._waiting: list[tuple[list[Q], asyncio.Future[list[R]]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")

    async def search(self, queries: Sequence[Q]) -> list[R]:
        """The results for `queries`, in order, searched together with concurrent callers'."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(queries), future))
        if self._worker is None:
            self._worker = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        batch: list[tuple[list[Q], asyncio.Future[list[R]]]] = []
        try:
            await asyncio.sleep(self._max_wait_s)
            while self._waiting:
                batch = self._take()
                queries = [q for qs, _ in batch for q in qs]
                try:
                    results = await asyncio.get_running_loop().run_in_executor(
                        self._thread, self._search, queries
                    )
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                log.debug("searched batch callers=%d queries=%d", len(batch), len(queries))
                start = 0
                for qs, future in batch:
                    if not future.done():  # a caller that gave up is skipped
                        future.set_result(results[start : start + len(qs)])
                    start += len(qs)
        finally:
            self._worker = None
            # Cancelled (the loop is shutting down): nobody may wait for a batch forever.
            for _, future in batch + self._take_all():
                future.cancel()

    def _take(self) -> list[tuple[list[Q], asyncio.Future[list[R]]]]:
        batch: list[tuple[list[Q], asyncio.Future[list[R]]]] = []
        size = 0
        while self._waiting and (not batch or size + len(self._waiting[0][0]) <= self._max_batch):
            waiting = self._waiting.pop(0)
            batch.append(waiting)
            size += len(waiting[0])
        return batch

    def _take_all(self) -> list[tuple[list[Q], asyncio.Future[list[R]]]]:
        waiting, self._waiting = self._waiting, []
        return waiting
