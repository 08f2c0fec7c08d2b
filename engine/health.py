"""Liveness, readiness and Prometheus metrics over HTTP, for every process of the service.

`/livez` answers while the event loop runs; `/readyz` runs the process's checks (its store, its
queue, its model servers) at once and answers 503 naming what failed, so a load balancer or
Kubernetes sends no work to a process that cannot do it; `/metrics` is prometheus-client's text
format. A process mounts them on its own aiohttp app (the bot's webhook server) or serves them on
`[metrics] port` with `serve_health`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from engine.generators import Generator
from engine.log import Turn

log = logging.getLogger(__name__)

# Raises (any exception) when the part it checks cannot do its work; the message says why.
Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Where a process serves /metrics, /livez and /readyz, and how it logs."""

    host: str = "127.0.0.1"
    # 0: no separate server (the bot mounts the routes on its webhook server when it has one).
    port: int = 0
    # Each readiness check gets this long.
    check_timeout_s: float = 5.0
    # One JSON object per log line (for a log collector) instead of plain text.
    log_json: bool = False


class TurnReading(Protocol):
    """What readiness needs of a conversation store (SQLite or PostgreSQL): one cheap read."""

    async def recent_turns(self, conversation_id: int, limit: int = 10) -> list[Turn]: ...


@runtime_checkable
class ReadinessReporting(Protocol):
    """A generator that can say which of its model servers answer (the openai backend)."""

    async def ready(self) -> dict[str, bool]: ...


def add_health_routes(
    app: web.Application,
    checks: Mapping[str, Check],
    *,
    timeout_s: float = 5.0,
    before_scrape: Sequence[Check] = (),
) -> None:
    """Mount /livez, /readyz and /metrics on `app`.

    `before_scrape` runs before each /metrics answer: gauges read from elsewhere (the queue's
    depth) are fresh at every scrape.
    """

    async def live(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        results = await asyncio.gather(*(_run(check, timeout_s) for check in checks.values()))
        report = dict(zip(checks, results, strict=True))
        ok = all(result == "ok" for result in results)
        if not ok:
            log.warning("not ready: %s", {k: v for k, v in report.items() if v != "ok"})
        return web.json_response(
            {"status": "ok" if ok else "unavailable", "checks": report}, status=200 if ok else 503
        )

    async def metrics(request: web.Request) -> web.Response:
        failed = await asyncio.gather(*(_run(c, timeout_s) for c in before_scrape))
        if any(result != "ok" for result in failed):
            log.warning("metrics not refreshed: %s", [r for r in failed if r != "ok"])
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/livez", live)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)


async def serve_health(
    config: MetricsConfig, checks: Mapping[str, Check], *, before_scrape: Sequence[Check] = ()
) -> web.AppRunner:
    """Serve the health routes on `config.port`; the caller cleans the runner up at shutdown."""
    app = web.Application()
    add_health_routes(app, checks, timeout_s=config.check_timeout_s, before_scrape=before_scrape)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    log.info("health and metrics on http://%s:%d", config.host, config.port)
    return runner


def engine_checks(conversation_log: TurnReading, generator: Generator) -> dict[str, Check]:
    """The readiness checks of a process that answers: its store and its model servers."""

    async def store() -> None:
        await conversation_log.recent_turns(0, 1)

    checks: dict[str, Check] = {"store": store}
    if isinstance(generator, ReadinessReporting):
        reporting = generator

        async def model_servers() -> None:
            replicas = await reporting.ready()
            if not any(replicas.values()):
                raise RuntimeError(f"no model server answers: {sorted(replicas)}")

        checks["model_servers"] = model_servers
    return checks


async def _run(check: Check, timeout_s: float) -> str:
    try:
        async with asyncio.timeout(timeout_s):
            await check()
    except TimeoutError:
        return f"timed out after {timeout_s:g} s"
    except Exception as error:  # a readiness check reports any failure, it does not raise
        return f"{type(error).__name__}: {error}"
    return "ok"
