"""/metrics, /livez and /readyz served over real HTTP, scraped before and after replies."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine import Engine
from engine.generators import ExtractiveGenerator, GeneratorConfig, OpenAIGenerator
from engine.health import MetricsConfig, engine_checks, serve_health
from engine.jsonlog import JsonFormatter
from engine.log import ConversationLog
from engine.metrics import observe_queue
from engine.sentiment import LexiconSentiment
from retrieval import KnowledgeBase
from tests.ports import free_port


@pytest.fixture
async def conversation_log(tmp_path: Path) -> AsyncIterator[ConversationLog]:
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        yield log


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    scrape: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_replies_move_the_scraped_metrics(
    sample_kb: KnowledgeBase, conversation_log: ConversationLog
) -> None:
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    config = MetricsConfig(port=free_port())
    runner = await serve_health(config, engine_checks(conversation_log, engine.generator))
    url = f"http://127.0.0.1:{config.port}"
    try:
        status, text = await get(f"{url}/metrics")
        assert status == 200
        before = samples(text)
        conversation = await engine.conversation("test", "frank")
        for question in ("how long does delivery take?", "I want to talk to a human"):
            async for _ in engine.reply(conversation, question):
                pass
        after = samples((await get(f"{url}/metrics"))[1])
    finally:
        await runner.cleanup()

    for stage in ("search", "generation", "reply"):
        name = "supportbot_reply_duration_seconds_count"
        assert value(after, name, stage=stage) > value(before, name, stage=stage)
    answered = ("supportbot_replies_total", {"action": "answer", "reason": "confident"})
    handed = ("supportbot_replies_total", {"action": "handoff", "reason": "human_requested"})
    for name, labels in (answered, handed):
        assert value(after, name, **labels) == value(before, name, **labels) + 1
    handovers = "supportbot_handovers_total"
    assert value(after, handovers, reason="human_requested") == (
        value(before, handovers, reason="human_requested") + 1
    )
    # No label carries a conversation, chat or user id.
    seen = {v for (name, pairs) in after if name.startswith("supportbot_") for _, v in pairs}
    assert str(conversation) not in seen and "frank" not in seen


async def test_liveness_and_readiness_follow_the_model_servers(
    conversation_log: ConversationLog,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    generator = OpenAIGenerator(GeneratorConfig(backend="openai", base_urls=(dead,), timeout_s=2))
    config = MetricsConfig(port=free_port())
    runner = await serve_health(config, engine_checks(conversation_log, generator))
    url = f"http://127.0.0.1:{config.port}"
    try:
        assert (await get(f"{url}/livez"))[0] == 200
        status, text = await get(f"{url}/readyz")
        assert status == 503
        report = json.loads(text)
        assert report["checks"]["store"] == "ok"
        assert "no model server answers" in report["checks"]["model_servers"]
        scrape = samples((await get(f"{url}/metrics"))[1])
    finally:
        await runner.cleanup()
    errors = value(scrape, "supportbot_generator_errors_total", replica=dead, kind="health_check")
    assert errors == 1


async def test_readiness_is_ready_with_a_store_and_no_model_servers_to_wait_for(
    conversation_log: ConversationLog,
) -> None:
    config = MetricsConfig(port=free_port())
    runner = await serve_health(config, engine_checks(conversation_log, ExtractiveGenerator()))
    try:
        status, text = await get(f"http://127.0.0.1:{config.port}/readyz")
    finally:
        await runner.cleanup()
    assert status == 200 and json.loads(text) == {"status": "ok", "checks": {"store": "ok"}}


async def test_queue_state_is_exported() -> None:
    observe_queue("updates", depth=7, pending=2, oldest_age_s=3.5)
    config = MetricsConfig(port=free_port())
    runner = await serve_health(config, {})
    try:
        scrape = samples((await get(f"http://127.0.0.1:{config.port}/metrics"))[1])
    finally:
        await runner.cleanup()
    assert value(scrape, "supportbot_queue_depth", queue="updates") == 7
    assert value(scrape, "supportbot_queue_pending", queue="updates") == 2
    assert value(scrape, "supportbot_queue_consumer_lag_seconds", queue="updates") == 3.5


def test_json_log_lines_are_one_object_each() -> None:
    record = logging.LogRecord("engine", logging.WARNING, __file__, 1, "replied ms=%d", (12,), None)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "WARNING",
        "engine",
        "replied ms=12",
    )
    assert "\n" not in line
