"""The service's Prometheus metrics, defined once, and the small functions the edges call.

Names follow Prometheus conventions (`supportbot_` prefix, base units, `_total` counters). Labels
take a small fixed set of values: never a chat, user or conversation id, never customer text.
Every process serves them on `/metrics` (engine/health.py); the default registry holds them.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

# Seconds: from a fast extractive reply to a long generated one on a busy CPU.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The engine's own latency keys, by the stage name the metric uses.
_STAGES = {
    "sentiment": "sentiment",
    "retrieval": "search",
    "generation": "generation",
    "log": "log",
}

REPLY_SECONDS = Histogram(
    "supportbot_reply_duration_seconds",
    "Time spent on one reply, by stage (search, generation, ...; 'reply' is the whole reply).",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
REPLIES = Counter(
    "supportbot_replies_total",
    "Replies sent, by the policy's action and the reason code behind it.",
    ["action", "reason"],
)
HANDOVERS = Counter(
    "supportbot_handovers_total",
    "Conversations handed over to a person, by reason code.",
    ["reason"],
)
GENERATION_RECOVERIES = Counter(
    "supportbot_generation_recoveries_total",
    "Answers whose model server failed: completed on another replica, or replaced by the "
    "extractive answer.",
    ["outcome"],
)
GENERATOR_ERRORS = Counter(
    "supportbot_generator_errors_total",
    "Failed requests to a model server, by replica URL and kind of failure.",
    ["replica", "kind"],
)
REPLICA_UP = Gauge(
    "supportbot_generator_replica_up",
    "1 while a model server replica takes requests, 0 while its circuit breaker is open.",
    ["replica"],
)
TELEGRAM_ERRORS = Counter(
    "supportbot_telegram_api_errors_total",
    "Failed Bot API calls, by method and error class.",
    ["method", "error"],
)
TELEGRAM_RETRY_AFTER = Histogram(
    "supportbot_telegram_retry_after_seconds",
    "Flood-control waits Telegram asked for (retry_after), by method.",
    ["method"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300),
)
# The update queue (several bot processes): depth is what no worker has taken yet, pending what
# a worker took and has not acknowledged, lag the age of the oldest of either, in seconds.
QUEUE_DEPTH = Gauge("supportbot_queue_depth", "Updates queued that no worker has taken.", ["queue"])
QUEUE_PENDING = Gauge(
    "supportbot_queue_pending", "Updates a worker took and has not acknowledged.", ["queue"]
)
QUEUE_LAG = Gauge(
    "supportbot_queue_consumer_lag_seconds",
    "Age of the oldest update not yet acknowledged (0 when the queue is empty).",
    ["queue"],
)


def observe_reply(
    action: str, code: str, latencies_ms: Mapping[str, float], *, handed_over: bool
) -> None:
    """Record one finished reply: its stages' latencies, its action and reason code, a hand-over."""
    for key, ms in latencies_ms.items():
        REPLY_SECONDS.labels(stage=_STAGES.get(key, key)).observe(ms / 1000)
    REPLY_SECONDS.labels(stage="reply").observe(sum(latencies_ms.values()) / 1000)
    REPLIES.labels(action=action, reason=code).inc()
    if handed_over:
        HANDOVERS.labels(reason=code).inc()


def observe_queue(queue: str, *, depth: int, pending: int, oldest_age_s: float) -> None:
    """Record the update queue's state as its owner last read it."""
    QUEUE_DEPTH.labels(queue=queue).set(depth)
    QUEUE_PENDING.labels(queue=queue).set(pending)
    QUEUE_LAG.labels(queue=queue).set(oldest_age_s)
