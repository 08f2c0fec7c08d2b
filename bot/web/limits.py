"""A token bucket per API key: bursts up to `burst`, refilled at the key's rate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """Admits requests per key; `take` says how many seconds to wait when it refuses."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError(
                f"[web] rate_per_minute must be above 0 and rate_burst at least 1, "
                f"got {per_minute} and {burst}"
            )
        self._per_minute = per_minute
        self._burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def take(self, key: str, per_minute: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds until one token is back."""
        rate = (per_minute or self._per_minute) / 60.0
        now = self._clock()
        tokens, when = self._buckets.get(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - when) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate

    @staticmethod
    def retry_after(seconds: float) -> str:
        """The Retry-After header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(seconds)))
