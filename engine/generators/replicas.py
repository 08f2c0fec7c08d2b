"""Model server replicas: which one a conversation goes to, and which ones are fit to answer.

A conversation is hashed to an order of the replicas (rendezvous hashing, a form of consistent
hashing: adding or removing a replica moves only the conversations that hashed to it), so its
turns reach the same `vllm serve` while that one is healthy and vLLM's prefix cache is reused.
The hash is stable across processes, so several bot workers agree on it.

Each replica has a circuit breaker: `failures_to_open` failures in a row take it out for
`cooldown_s`; after that, one health check (GET /v1/models) puts it back or keeps it out for
another cooldown. The same check reads the models the replica serves, its LoRA adapters included,
so a request never names an adapter the replica has not loaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from engine.metrics import GENERATOR_ERRORS, REPLICA_UP

log = logging.getLogger(__name__)

# Reads the ids of the models a replica at this URL serves; raises ReplicaCheckFailed.
ListModels = Callable[[str], Awaitable[list[str]]]


@dataclass(slots=True)
class Replica:
    """One server's state as this process last saw it."""

    url: str
    failures: int = 0  # in a row
    open_until: float = -math.inf  # circuit breaker open before this monotonic time
    models: frozenset[str] = field(default_factory=frozenset)
    checked_at: float = -math.inf  # last successful read of `models`


class ReplicaPool:
    """The replicas behind one generator, their breakers and the hash order per conversation."""

    def __init__(
        self,
        urls: Iterable[str],
        *,
        failures_to_open: int = 2,
        cooldown_s: float = 10.0,
        check_interval_s: float = 15.0,
        check_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # "http://host:8000/v1" and "http://host:8000" name the same server.
        self.replicas = tuple(Replica(url.rstrip("/").removesuffix("/v1")) for url in urls)
        if not self.replicas:
            raise ValueError("a replica pool needs at least one URL")
        self._failures_to_open = max(1, failures_to_open)
        self._cooldown_s = cooldown_s
        self._interval_s = check_interval_s
        self._check_timeout_s = check_timeout_s
        self._clock = clock
        # The first model each server listed, kept in the order vLLM lists them (base first).
        self._listed_first: dict[str, str] = {}
        for replica in self.replicas:
            REPLICA_UP.labels(replica=replica.url).set(1)

    def order(self, key: str) -> list[Replica]:
        """The replicas in the order `key` tries them; without a key, the configured order."""
        if not key:
            return list(self.replicas)
        return sorted(self.replicas, key=lambda r: _weight(key, r.url), reverse=True)

    def is_open(self, replica: Replica) -> bool:
        """Whether the breaker keeps `replica` out now (its cooldown has not passed)."""
        return self._clock() < replica.open_until

    def needs_check(self, replica: Replica) -> bool:
        """A replica back from cooldown, or whose served models are stale, is checked first."""
        stale = self._clock() - replica.checked_at >= self._interval_s
        return replica.failures >= self._failures_to_open or stale

    def listed_first(self, replica: Replica) -> str:
        """The first model the replica listed (vLLM lists its base model first)."""
        return self._listed_first.get(replica.url, "")

    def succeeded(self, replica: Replica) -> None:
        """A request or check worked: the breaker closes."""
        if replica.failures >= self._failures_to_open:
            log.info("replica back url=%s", replica.url)
        replica.failures = 0
        replica.open_until = -math.inf
        REPLICA_UP.labels(replica=replica.url).set(1)

    def failed(self, replica: Replica, kind: str) -> None:
        """A request or check failed; enough of them in a row open the breaker."""
        GENERATOR_ERRORS.labels(replica=replica.url, kind=kind).inc()
        replica.failures += 1
        if replica.failures >= self._failures_to_open:
            replica.open_until = self._clock() + self._cooldown_s
            REPLICA_UP.labels(replica=replica.url).set(0)
            log.warning(
                "replica out url=%s failures=%d for_s=%.0f kind=%s",
                replica.url,
                replica.failures,
                self._cooldown_s,
                kind,
            )

    def take_out(self, replica: Replica, kind: str) -> None:
        """A replica that died mid-answer is out at once, whatever its count."""
        replica.failures = max(replica.failures, self._failures_to_open - 1)
        self.failed(replica, kind)

    async def check(self, replica: Replica, list_models: ListModels) -> str:
        """Read the replica's served models (its health check) and update its breaker.

        Returns the problem, or "" when the replica is fit to answer.
        """
        try:
            async with asyncio.timeout(self._check_timeout_s):
                listed = await list_models(replica.url)
        except (ReplicaCheckFailed, TimeoutError) as error:
            problem = "timed out" if isinstance(error, TimeoutError) else str(error)
            log.warning("health check failed url=%s error=%s", replica.url, problem)
            self.failed(replica, "health_check")
            return problem
        if listed:
            self._listed_first[replica.url] = listed[0]
        replica.models = frozenset(listed)
        replica.checked_at = self._clock()
        self.succeeded(replica)
        return ""

    async def check_all(self, list_models: ListModels) -> dict[str, bool]:
        """Check every replica at once; whether each is fit to answer (readiness)."""
        problems = await asyncio.gather(*(self.check(r, list_models) for r in self.replicas))
        return {r.url: not problem for r, problem in zip(self.replicas, problems, strict=True)}


class ReplicaCheckFailed(Exception):
    """A health check got no usable list of models; the message says what came back."""


def _weight(key: str, url: str) -> int:
    digest = hashlib.blake2b(f"{key}\x00{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
