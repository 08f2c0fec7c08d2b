"""The flood guard counts per chat within a sliding window."""

from __future__ import annotations

import pytest

from bot.flood import FloodGuard


def test_flooding_is_per_chat_and_ends_when_the_window_passes() -> None:
    now = [0.0]
    guard = FloodGuard(3, 10.0, clock=lambda: now[0])
    assert [guard._flooding(1) for _ in range(4)] == [False, False, False, True]
    assert guard._flooding(2) is False
    now[0] = 10.5
    assert guard._flooding(1) is False


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="flood_messages"):
        FloodGuard(0, 10.0)
