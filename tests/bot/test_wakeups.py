"""Wake-ups over the real Redis: a reply logged by another process reaches the customer, and
the console's live view shows a new turn, long before the next poll; the poll stays."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiogram import Dispatcher
from aiogram.types import Message, Update
from redis.asyncio import Redis

from bot import make_bot
from bot.outbox import ConsoleOutbox
from bot.wakeups import PublishTurns, Wakeups
from bot.web import console_live
from engine import Engine
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog
from engine.log.activity import Activity, ActivityMark
from engine.sentiment import LexiconSentiment
from engine.settings import BotConfig, QueueConfig
from retrieval import KnowledgeBase
from tests.bot.test_operator import texts
from tests.bot.test_receiver import message
from tests.missing import missing
from tests.ports import free_port
from tests.services import RedisNamespace
from tests.telegram.fake_api import FakeTelegram

# Far longer than any wake-up may take, far shorter than the poll: only a wake-up delivers.
POLL_S = 30.0
WITHIN_S = 10.0
# Far shorter than the 5 s a stalled Redis used to cost each update and reply.
PROMPT_S = 2.0


@pytest.fixture
async def wakeups(redis_namespace: RedisNamespace) -> AsyncIterator[Wakeups]:
    """This process's wake-ups, listening."""
    ours = Wakeups(Redis.from_url(redis_namespace.url), redis_namespace.prefix)
    await ours.start()
    await asyncio.wait_for(ours.subscribed.wait(), WITHIN_S)
    yield ours
    await ours.close()


@pytest.fixture
async def other_process(
    redis_namespace: RedisNamespace, tmp_path: Path
) -> AsyncIterator[tuple[ConversationLog, Wakeups]]:
    """Another process's connections to the same log and the same Redis (the console's)."""
    log = await ConversationLog.open(tmp_path / "conversations.db")
    theirs = Wakeups(Redis.from_url(redis_namespace.url), redis_namespace.prefix)
    yield log, theirs
    await theirs.close()
    await log.close()


async def test_a_reply_logged_elsewhere_wakes_the_outbox_long_before_its_poll(
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    sample_kb: KnowledgeBase,
    wakeups: Wakeups,
    other_process: tuple[ConversationLog, Wakeups],
) -> None:
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    conversation = await conversation_log.start_conversation("telegram", "321")
    await conversation_log.add_turn(conversation, "operator", "First.", delivery="pending")
    bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
    outbox = ConsoleOutbox(engine, interval_s=POLL_S, wakeups=wakeups)
    try:
        await outbox.start(bot)
        # The first pass sent what was pending; the next poll is POLL_S away.
        await tg.wait_for(lambda: texts(tg, 321) == ["First."], timeout=WITHIN_S)
        log, theirs = other_process
        await log.add_turn(conversation, "operator", "Second.", delivery="pending")
        await theirs.publish("delivery")
        await tg.wait_for(lambda: texts(tg, 321) == ["First.", "Second."], timeout=WITHIN_S)
    finally:
        await outbox.stop()
        await bot.session.close()
    assert await conversation_log.undelivered_turns("telegram") == []


async def test_the_outbox_still_polls_when_redis_is_away(
    tg: FakeTelegram, conversation_log: ConversationLog, sample_kb: KnowledgeBase
) -> None:
    with socket.socket() as free:  # nothing listens there
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    away = Wakeups(Redis.from_url(f"redis://127.0.0.1:{port}/0"), "nowhere:")
    await away.start()
    await away.publish("delivery")  # logged, not raised
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
    outbox = ConsoleOutbox(engine, interval_s=0.05, wakeups=away)
    try:
        await outbox.start(bot)
        conversation = await conversation_log.start_conversation("telegram", "322")
        await conversation_log.add_turn(conversation, "operator", "Polled.", delivery="pending")
        await tg.wait_for(lambda: texts(tg, 322) == ["Polled."], timeout=WITHIN_S)
    finally:
        await outbox.stop()
        await bot.session.close()
        await away.close()
    assert not away.subscribed.is_set()


async def test_a_turn_logged_elsewhere_wakes_the_console_stream(
    conversation_log: ConversationLog,
    wakeups: Wakeups,
    other_process: tuple[ConversationLog, Wakeups],
) -> None:
    async def here() -> bool:
        return False

    stream = console_live.events(conversation_log, interval_s=POLL_S, gone=here, wakeups=wakeups)
    log, theirs = other_process
    try:
        assert (await anext(stream)).startswith("retry:")
        conversation = await log.start_conversation("telegram", "323")
        await log.add_turn(conversation, "customer", "Hello?")
        # Read at once (the stream's first look); the next look is a poll POLL_S away.
        first = await asyncio.wait_for(anext(stream), WITHIN_S)
        await log.add_turn(conversation, "customer", "Anyone there?")
        await theirs.publish("turn")
        second = await asyncio.wait_for(anext(stream), WITHIN_S)
    finally:
        await stream.aclose()
    for event in (first, second):
        assert event.startswith("event: message\n") and f'"conversation": {conversation}' in event


def worker_dispatcher(wakeups: Wakeups) -> tuple[Dispatcher, list[str | None]]:
    """A worker's dispatcher that publishes its turns; the list holds the texts it handled."""
    dp = Dispatcher()
    handled: list[str | None] = []

    @dp.message()
    async def answer(message: Message) -> None:
        handled.append(message.text)

    dp.update.outer_middleware(PublishTurns(wakeups))
    return dp, handled


async def test_a_worker_wakes_the_console_after_each_update(
    tg: FakeTelegram, wakeups: Wakeups, other_process: tuple[ConversationLog, Wakeups]
) -> None:
    _, theirs = other_process  # the worker's
    dp, handled = worker_dispatcher(theirs)
    bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
    woken, delivery = wakeups.next("turn"), wakeups.next("delivery")
    try:
        await dp.feed_update(bot, Update.model_validate({"update_id": 1, "message": message(7)}))
        await asyncio.wait_for(woken.wait(), WITHIN_S)
    finally:
        await bot.session.close()
    assert handled == ["hello"]
    assert not delivery.is_set(), "a turn is no reply to deliver: the outboxes sleep on"


@pytest.fixture
def stalled_url() -> Iterator[str]:
    """A Redis URL where connections are accepted and never answered (a stalled server)."""
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(100)
        yield f"redis://127.0.0.1:{stalled.getsockname()[1]}/0"


async def test_a_worker_update_never_waits_for_a_stalled_redis(
    tg: FakeTelegram, stalled_url: str
) -> None:
    stalled = Wakeups.connect(QueueConfig(url=stalled_url, prefix="stalled:"))
    await stalled.start()
    dp, handled = worker_dispatcher(stalled)
    bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
    try:
        for update_id in (1, 2):
            started = time.monotonic()
            update = Update.model_validate({"update_id": update_id, "message": message(8)})
            await asyncio.wait_for(dp.feed_update(bot, update), PROMPT_S)
            assert time.monotonic() - started < PROMPT_S
    finally:
        await bot.session.close()
        await asyncio.wait_for(stalled.close(), PROMPT_S)
    assert handled == ["hello", "hello"]
    assert not stalled.subscribed.is_set()


async def test_a_payload_that_is_no_word_changes_nothing(
    redis_namespace: RedisNamespace, wakeups: Wakeups
) -> None:
    other = Redis.from_url(redis_namespace.url)
    try:
        await other.publish(wakeups.channel, b"\xff")
        await other.publish(wakeups.channel, "nothing")
        woken = wakeups.next("delivery")
        await other.publish(wakeups.channel, "delivery")
        await asyncio.wait_for(woken.wait(), WITHIN_S)
    finally:
        await other.aclose()
    await wakeups.close()  # raises nothing


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A redis-server of this test's own, which it may stop and continue."""
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed", "apt-get install redis-server", ci="CI has it")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + WITHIN_S
        while True:  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield server, port
    finally:
        server.send_signal(signal.SIGCONT)
        server.terminate()
        server.wait()


async def test_a_stalled_redis_is_noticed_and_said_once_each_way(
    private_redis: tuple[subprocess.Popen[bytes], int], caplog: pytest.LogCaptureFixture
) -> None:
    server, port = private_redis
    queue = QueueConfig(url=f"redis://127.0.0.1:{port}/0", prefix="stall:")
    ours = Wakeups.connect(queue, health_check_s=0.3)
    caplog.set_level(logging.WARNING, logger="bot.wakeups")
    try:
        await ours.start()
        await _until(ours.subscribed.is_set)
        # Stopped, it keeps the connection open and answers nothing, as a half-open one does.
        server.send_signal(signal.SIGSTOP)
        await _until(lambda: not ours.subscribed.is_set())
        await asyncio.sleep(3.0)  # subscribing again fails a few times meanwhile
        assert not ours.subscribed.is_set()
        server.send_signal(signal.SIGCONT)
        await _until(ours.subscribed.is_set)
        woken = ours.next("turn")
        await ours.publish("turn")
        await asyncio.wait_for(woken.wait(), WITHIN_S)
    finally:
        server.send_signal(signal.SIGCONT)
        await ours.close()
    said = [" ".join(record.getMessage().split()[:2]) for record in caplog.records]
    assert said.count("wake-ups lost") == 1, said
    assert said.count("wake-ups back:") == 1, said


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WITHIN_S):
        while not condition():  # noqa: ASYNC110 (a flag cleared sets no event)
            await asyncio.sleep(0.05)


async def test_a_burst_of_turns_costs_a_stream_a_few_reads_per_poll(
    conversation_log: ConversationLog,
    wakeups: Wakeups,
    other_process: tuple[ConversationLog, Wakeups],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, theirs = other_process
    reads = 0
    read = conversation_log.activity

    async def counted(after: ActivityMark | None = None) -> Activity:
        nonlocal reads
        reads += 1
        return await read(after)

    monkeypatch.setattr(conversation_log, "activity", counted)

    async def here() -> bool:
        return False

    interval_s = 0.4
    stream = console_live.events(
        conversation_log, interval_s=interval_s, gone=here, wakeups=wakeups
    )
    assert (await anext(stream)).startswith("retry:")
    following = asyncio.create_task(anext(stream))  # no turn is logged: it never yields
    await asyncio.sleep(0.05)
    before, started = reads, time.monotonic()
    for _ in range(100):  # a busy fleet: a turn every 10 ms
        await theirs.publish("turn")
        await asyncio.sleep(0.01)
    took = time.monotonic() - started
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    await stream.aclose()
    allowed = console_live.WAKE_READS * (took / interval_s + 1) + 1
    assert 1 < reads - before <= allowed, (reads - before, took)
