"""Replica affinity and circuit breakers, without servers (health checks are plain functions)."""

from __future__ import annotations

from collections import Counter

from prometheus_client import REGISTRY

from engine.generators.replicas import ReplicaCheckFailed, ReplicaPool

URLS = ("http://a:8000", "http://b:8000", "http://c:8000")
KEYS = [str(n) for n in range(600)]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def first(pool: ReplicaPool, key: str) -> str:
    return pool.order(key)[0].url


def test_a_conversation_always_goes_to_the_same_replica_and_they_share_the_load() -> None:
    pool, again = ReplicaPool(URLS), ReplicaPool(reversed(URLS))
    assert all(first(pool, key) == first(again, key) for key in KEYS)
    shares = Counter(first(pool, key) for key in KEYS)
    assert set(shares) == set(URLS)
    assert min(shares.values()) > len(KEYS) / len(URLS) / 2


def test_adding_a_replica_moves_only_the_conversations_it_takes() -> None:
    before = ReplicaPool(URLS)
    after = ReplicaPool((*URLS, "http://d:8000"))
    moved = [key for key in KEYS if first(before, key) != first(after, key)]
    assert moved
    assert all(first(after, key) == "http://d:8000" for key in moved)
    assert len(moved) < len(KEYS) / 2


def test_without_a_key_replicas_are_tried_in_the_configured_order() -> None:
    assert [r.url for r in ReplicaPool(URLS).order("")] == list(URLS)


async def test_failures_open_the_breaker_and_a_health_check_closes_it() -> None:
    clock = Clock()
    pool = ReplicaPool(URLS, failures_to_open=2, cooldown_s=10.0, clock=clock)
    replica = pool.replicas[0]
    errors = REGISTRY.get_sample_value(
        "supportbot_generator_errors_total", {"replica": replica.url, "kind": "timeout"}
    )
    pool.failed(replica, "timeout")
    assert not pool.is_open(replica)
    pool.failed(replica, "timeout")
    assert pool.is_open(replica)
    assert (
        REGISTRY.get_sample_value("supportbot_generator_replica_up", {"replica": replica.url}) == 0
    )
    assert (
        REGISTRY.get_sample_value(
            "supportbot_generator_errors_total", {"replica": replica.url, "kind": "timeout"}
        )
        == (errors or 0) + 2
    )

    clock.now += 10.0
    assert not pool.is_open(replica) and pool.needs_check(replica)

    async def down(url: str) -> list[str]:
        raise ReplicaCheckFailed("connection refused")

    assert await pool.check(replica, down) == "connection refused"
    assert pool.is_open(replica)  # half-open probe failed: another cooldown

    clock.now += 10.0

    async def up(url: str) -> list[str]:
        return ["base-model", "lora-7"]

    assert await pool.check(replica, up) == ""
    assert not pool.is_open(replica) and not pool.needs_check(replica)
    assert replica.models == {"base-model", "lora-7"}
    assert pool.listed_first(replica) == "base-model"
    assert (
        REGISTRY.get_sample_value("supportbot_generator_replica_up", {"replica": replica.url}) == 1
    )


async def test_served_models_are_read_again_after_the_interval() -> None:
    clock = Clock()
    pool = ReplicaPool(URLS[:1], check_interval_s=15.0, clock=clock)
    replica = pool.replicas[0]
    assert pool.needs_check(replica)

    async def models(url: str) -> list[str]:
        return ["base-model"]

    await pool.check(replica, models)
    clock.now += 14.0
    assert not pool.needs_check(replica)
    clock.now += 1.0
    assert pool.needs_check(replica)


def test_a_replica_that_dies_mid_answer_is_out_at_once() -> None:
    pool = ReplicaPool(URLS, failures_to_open=3, clock=Clock())
    pool.take_out(pool.replicas[1], "connect")
    assert pool.is_open(pool.replicas[1])


def test_a_base_url_may_name_the_v1_path() -> None:
    pool = ReplicaPool(("http://a:8000/v1", "http://b:8000/"))
    assert [r.url for r in pool.replicas] == ["http://a:8000", "http://b:8000"]
