"""The bot's Bot API metrics against a local Bot API that answers 429 once, then accepts."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from bot.app import make_bot
from bot.metrics import start_health
from bot.queue import UpdateQueue
from engine.health import MetricsConfig
from engine.settings import BotConfig, QueueConfig, Settings
from tests.ports import free_port
from tests.services import RedisNamespace

TOKEN = "123456:AAtest"


@pytest.fixture
async def flooding_api() -> AsyncIterator[tuple[str, list[str]]]:
    """A Bot API whose first sendMessage is refused with retry_after=1; its URL and calls."""
    calls: list[str] = []

    async def method(request: web.Request) -> web.Response:
        name = request.match_info["method"]
        calls.append(name)
        if name == "sendMessage" and calls.count(name) == 1:
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1},
                },
                status=429,
            )
        message = {"message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"}, "text": "hi"}
        return web.json_response({"ok": True, "result": message})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", method)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", calls
    finally:
        await runner.cleanup()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_flood_wait_is_counted_and_the_message_still_goes_out(
    flooding_api: tuple[str, list[str]],
) -> None:
    url, calls = flooding_api
    errors = ("supportbot_telegram_api_errors_total", "SendMessage", "TelegramRetryAfter")
    before_errors = sample(errors[0], method=errors[1], error=errors[2])
    before_waits = sample("supportbot_telegram_retry_after_seconds_sum", method="SendMessage")
    bot = make_bot(TOKEN, BotConfig(api_base_url=url))
    try:
        await bot.send_message(42, "hi")
    finally:
        await bot.session.close()
    assert calls == ["sendMessage", "sendMessage"]
    assert sample(errors[0], method=errors[1], error=errors[2]) == before_errors + 1
    waited = sample("supportbot_telegram_retry_after_seconds_sum", method="SendMessage")
    assert waited == before_waits + 1


async def test_a_receiver_is_ready_with_its_queue_and_exports_its_depth_at_each_scrape(
    redis_namespace: RedisNamespace,
) -> None:
    queue_config = QueueConfig(url=redis_namespace.url, prefix=redis_namespace.prefix)
    queue = UpdateQueue.connect(queue_config)
    try:
        await queue.check()
        for update_id in (1, 2, 3):
            await queue.enqueue(update_id, {"update_id": update_id}, chat=str(update_id))
    finally:
        await queue.close()
    port = free_port()
    settings = Settings(
        bot=BotConfig(role="receiver"),
        queue=queue_config,
        metrics=MetricsConfig(port=port),
    )
    async with contextlib.AsyncExitStack() as stack:
        await start_health(stack, settings)
        async with aiohttp.ClientSession() as session:
            # Scraped first: the queue's gauges are read at the scrape, not only at /readyz.
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                scrape = await response.text()
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                status, report = response.status, await response.json()
    assert status == 200 and report["checks"] == {"queue": "ok"}
    assert 'supportbot_queue_depth{queue="updates"} 3.0' in scrape
