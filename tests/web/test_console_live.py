"""Live console: /console/events pushes new hand-overs and customer messages, and the inbox and a
transcript show them in a real browser without a reload."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from bot import make_bot
from bot.outbox import ConsoleOutbox
from bot.web.__main__ import main
from bot.web.users import UserStore
from engine import Engine
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog, LogConfig, open_store
from engine.log.activity import ActivityEvent, ActivityMark
from engine.sentiment import LexiconSentiment
from engine.settings import BotConfig, QueueConfig
from retrieval import KnowledgeBase, RetrievalConfig
from tests.bot.test_operator import texts
from tests.services import RedisNamespace, need_module
from tests.telegram.fake_api import FakeTelegram
from tests.web.conftest import HashKb
from tests.web.console_helpers import (
    PASSWORD,
    ask,
    browser_sign_in,
    console_config,
    console_page,
    open_handover,
    saved_shots,
)
from tests.web.server import WebServer, serve_web
from tests.web.test_console import sign_in

# Counts the event streams a page has open, so a test waits for the stream instead of a guess.
# The count goes on the page's root element, and the test waits with a selector:
# page.wait_for_function evaluates its expression with eval, which the console's
# Content-Security-Policy (script-src 'self') refuses now and then.
COUNT_OPEN_STREAMS = """
(() => {
  const Native = window.EventSource;
  if (!Native) return;
  window.openStreams = 0;
  window.EventSource = function (url, init) {
    const source = new Native(url, init);
    source.addEventListener("open", () => {
      window.openStreams += 1;
      document.documentElement.dataset.openStreams = String(window.openStreams);
    });
    return source;
  };
})();
"""
# A stream of this page is open (each page load starts without the mark).
STREAM_OPEN = "html[data-open-streams]"


def read_events(
    http: httpx.Client, found: list[dict[str, object]], opened: threading.Event
) -> None:
    """Read /console/events into `found` (kind plus data) until the stream ends."""
    with http.stream("GET", "/console/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line == ": open":
                opened.set()
            elif line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind:
                found.append({"kind": kind, **json.loads(line.removeprefix("data: "))})
                kinds = {(e["kind"], e.get("role")) for e in found}
                if {("handover", None), ("message", "customer")} <= kinds:
                    return


def test_the_event_stream_tells_of_a_customer_message_and_a_handover(
    site: WebServer,
) -> None:
    with sign_in(site, "olaf") as (http, _):
        found: list[dict[str, object]] = []
        opened = threading.Event()
        reader = threading.Thread(target=read_events, args=(http, found, opened), daemon=True)
        reader.start()
        assert opened.wait(30), "the stream did not open"
        conversation = open_handover(site, "kim@example.com", "Where is my <b>parcel</b>?")
        reader.join(60)
        assert not reader.is_alive(), f"no hand-over event came; saw {found}"
    assert {"kind": "message", "conversation": conversation, "role": "customer"} in found
    assert {"kind": "handover", "conversation": conversation} in found
    # Ids and roles only: no customer text travels in the events.
    assert all(set(event) <= {"kind", "conversation", "role"} for event in found)


def test_the_event_stream_is_behind_sign_in(site: WebServer) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as http:
        response = http.get("/console/events")
    assert response.status_code == 303 and response.headers["location"] == "/console/login"


async def test_the_inbox_and_a_transcript_update_without_a_reload(
    site: WebServer, chromium: Path, shots: Path
) -> None:
    async with console_page(chromium) as page:
        await page.add_init_script(COUNT_OPEN_STREAMS)
        await browser_sign_in(page, site.url, "ann", PASSWORD)
        await page.get_by_text("Nothing here.").wait_for()
        # A mark on the window: a reload would drop it.
        await page.evaluate("window.notReloaded = true")
        await page.locator(STREAM_OPEN).wait_for(state="attached")
        conversation = await asyncio.to_thread(
            open_handover, site, "kim", "My parcel is late & <i>lost</i>"
        )
        link = page.locator(f"a[href='/console/conversations/{conversation}']")
        await link.wait_for(timeout=30_000)
        assert await page.evaluate("window.notReloaded === true")
        await page.screenshot(path=shots / "1-inbox-live.png", full_page=True)
        await link.click()
        await page.get_by_text("My parcel is late & <i>lost</i>").wait_for()
        await page.evaluate("window.notReloaded = true")
        await page.locator(STREAM_OPEN).wait_for(state="attached")
        again, _ = await asyncio.to_thread(ask, site, "kim", "Hello? Anyone there?")
        assert again == conversation
        await page.get_by_text("Hello? Anyone there?").wait_for(timeout=30_000)
        assert await page.evaluate("window.notReloaded === true")
        await page.screenshot(path=shots / "2-conversation-live.png", full_page=True)
    assert saved_shots(shots) == [
        "1-inbox-live.png",
        "2-conversation-live.png",
    ]


async def test_the_log_tells_what_is_new_since_a_mark(any_log: LogConfig) -> None:
    store = await open_store(any_log)
    try:
        empty = await store.activity()
        assert empty.mark == ActivityMark(0, 0, 0.0) and empty.events == ()
        first = await store.start_conversation("telegram", "kim")
        await store.add_turn(first, "customer", "Hello")
        mark = (await store.activity()).mark
        assert (await store.activity(mark)).events == ()
        second = await store.start_conversation("web", "ola")
        await store.add_turn(second, "customer", "I want a person")
        await store.add_turn(second, "bot", "One moment.", action="handoff")
        handover = await store.open_handover(second, "human_requested")
        # Written by another connection, as another process would.
        other = await open_store(any_log)
        try:
            await other.add_turn(first, "customer", "Still there?")
        finally:
            await other.close()
        news = await store.activity(mark)
        assert news.events == (
            ActivityEvent("handover", second),
            ActivityEvent("message", second, "customer"),
            ActivityEvent("message", second, "bot"),
            ActivityEvent("message", first, "customer"),
        )
        assert news.mark.turn_id > mark.turn_id and news.mark.handover_id > mark.handover_id
        assert (await store.activity(news.mark)).events == ()
        # Taken or closed (here or in a Telegram topic): the inbox shows it too.
        await store.close_handover(handover, operator_id="ann")
        closed = await store.activity(news.mark)
        assert closed.events == (ActivityEvent("handover", second),)
        assert closed.mark.changed_at > news.mark.changed_at
        assert (await store.activity(closed.mark)).events == ()
    finally:
        await store.close()


async def test_a_console_reply_wakes_the_bot_process_outbox(
    tmp_path: Path, hash_kb: HashKb, redis_namespace: RedisNamespace
) -> None:
    wakeups_module = need_module("bot.wakeups", "bash scripts/setup.sh redis")
    kb_dir, embedder = hash_kb
    config = dataclasses.replace(console_config(tmp_path), redis_wakeups=True)
    UserStore(config.users_path).create("olaf", "operator", PASSWORD)
    queue = QueueConfig(url=redis_namespace.url, prefix=redis_namespace.prefix)
    # The bot process: its own connection to the log, its outbox polling only every 30 s.
    log = await ConversationLog.open(tmp_path / "conversations.db")
    conversation = await log.start_conversation("telegram", "341")
    await log.add_turn(conversation, "customer", "I want a person")
    await log.open_handover(conversation, "human_requested")
    wakeups = wakeups_module.Wakeups.connect(queue)
    await wakeups.start()
    engine = Engine(
        KnowledgeBase(kb_dir, embedder, RetrievalConfig(kb_dir=kb_dir)),
        ExtractiveGenerator(),
        LexiconSentiment(),
        log,
    )
    outbox = ConsoleOutbox(engine, interval_s=30.0, wakeups=wakeups)

    def reply(site: WebServer) -> None:
        here = f"/console/conversations/{conversation}"
        with sign_in(site, "olaf") as (http, csrf):
            sent = http.post(f"{here}/reply", data={"csrf": csrf, "text": "Olaf here."})
            assert sent.status_code == 303, sent.text

    async with FakeTelegram() as tg:
        bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
        try:
            await asyncio.wait_for(wakeups.subscribed.wait(), 10)
            await outbox.start(bot)
            with serve_web(tmp_path, kb_dir, embedder, config=config, queue=queue) as site:
                await asyncio.to_thread(reply, site)
                await tg.wait_for(lambda: texts(tg, 341) == ["Olaf here."], timeout=10)
        finally:
            await outbox.stop()
            await bot.session.close()
            await wakeups.close()
            await log.close()


async def test_a_console_reply_never_waits_for_a_stalled_redis(
    tmp_path: Path, hash_kb: HashKb
) -> None:
    need_module("redis", "bash scripts/setup.sh redis")
    kb_dir, embedder = hash_kb
    config = dataclasses.replace(console_config(tmp_path), redis_wakeups=True)
    UserStore(config.users_path).create("olaf", "operator", PASSWORD)
    log = await ConversationLog.open(tmp_path / "conversations.db")
    conversation = await log.start_conversation("telegram", "342")
    await log.add_turn(conversation, "customer", "I want a person")
    await log.open_handover(conversation, "human_requested")
    await log.close()

    def reply(site: WebServer) -> float:
        here = f"/console/conversations/{conversation}"
        with sign_in(site, "olaf") as (http, csrf):
            started = time.monotonic()
            sent = http.post(f"{here}/reply", data={"csrf": csrf, "text": "Olaf here."})
            took = time.monotonic() - started
            assert sent.status_code == 303, sent.text
            return took

    with socket.socket() as stalled:  # takes connections, never answers
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(100)
        queue = QueueConfig(url=f"redis://127.0.0.1:{stalled.getsockname()[1]}/0", prefix="s:")
        with serve_web(tmp_path, kb_dir, embedder, config=config, queue=queue) as site:
            took = [await asyncio.to_thread(reply, site) for _ in range(2)]
    # A stalled Redis cost each reply 5 s; 2 s leaves a loaded machine room.
    assert max(took) < 2.0, took


def test_wake_ups_without_the_redis_extra_say_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "web.toml"
    config.write_text(
        f'[web]\nkeys_path = "{tmp_path / "keys.db"}"\nredis_wakeups = true\n', encoding="utf-8"
    )
    for name in ("redis", "redis.asyncio", "redis.asyncio.client", "redis.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "bot.wakeups", raising=False)
    assert main(["--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "redis_wakeups" in error and "bash scripts/setup.sh redis" in error, error
