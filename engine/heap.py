"""The start-up heap, kept out of the garbage collector's walks, and what a model swap frees.

A process that serves (`python -m bot`) freezes what start-up built (`settle_heap`). Frozen
objects are never collected, so an object frozen at start-up that later becomes garbage inside a
reference cycle stays in memory: a loaded SentenceTransformer sits in such cycles. Whatever
drops a model loaded before the freeze (a knowledge base switching embedders on reload, a
promoted sentiment classifier replacing the live one) calls `release_frozen` afterwards.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def settle_heap() -> None:
    """Leave what start-up built (models, aiogram's and pydantic's schemas: about 700,000
    objects) out of the garbage collector's walks, which otherwise pass over all of it in each
    full collection: 1.2-2.1 s of the event loop at a time (measured in scripts/bench_bot.py's
    load phase)."""
    gc.collect()
    gc.freeze()


def release_frozen() -> None:
    """Collect what became garbage among the frozen objects, then freeze the rest again.

    Does nothing while the heap is not frozen: the collector finds that garbage by itself.
    One full collection over the whole heap, so called once per swap, not per reply.
    """
    if gc.get_freeze_count() == 0:
        return
    started = time.process_time()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    log.info(
        "frozen heap released found=%d cpu_ms=%.0f", found, (time.process_time() - started) * 1000
    )
