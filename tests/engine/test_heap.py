"""The start-up heap frozen out of the collector's walks, and a swapped model freed from it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from engine.heap import release_frozen, settle_heap


class Model:
    """Holds itself in a reference cycle, as a loaded SentenceTransformer does."""

    def __init__(self) -> None:
        self.me = self
        self.weights = bytearray(1 << 20)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Whatever a test freezes is unfrozen again, for the tests after it."""
    try:
        yield
    finally:
        gc.unfreeze()


def test_settle_heap_freezes_what_start_up_built(unfrozen: None) -> None:
    started = Model()
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert not any(obj is started for obj in gc.get_objects())  # none of the walked ones


def test_a_replaced_model_frozen_in_a_cycle_is_freed_by_release_frozen(unfrozen: None) -> None:
    live = {"sentiment": Model()}
    old = weakref.ref(live["sentiment"])
    settle_heap()
    live["sentiment"] = Model()  # the swap
    gc.collect()
    assert old() is not None  # a full collection passes the frozen cycle by
    release_frozen()
    assert old() is None
    assert gc.get_freeze_count() > 0  # and what is still used is frozen again


def test_release_frozen_freezes_nothing_when_the_heap_was_not_frozen(unfrozen: None) -> None:
    gc.unfreeze()
    release_frozen()
    assert gc.get_freeze_count() == 0
