"""Wake-ups over the real Redis: a reply logged by another process reaches the customer, and
the console's live view shows a new turn, long before the next poll; the poll stays."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
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
from engine.sentiment import LexiconSentiment
from engine.settings import BotConfig
from retrieval import KnowledgeBase
from tests.bot.test_operator import texts
from tests.bot.test_receiver import message
from tests.services import RedisNamespace
from tests.telegram.fake_api import FakeTelegram

# Far longer than any wake-up may take, far shorter than the poll: only a wake-up delivers.
POLL_S = 30.0
WITHIN_S = 10.0


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


async def test_a_worker_wakes_the_console_after_each_update(
    tg: FakeTelegram, wakeups: Wakeups, other_process: tuple[ConversationLog, Wakeups]
) -> None:
    _, theirs = other_process  # the worker's
    dp = Dispatcher()
    handled: list[str | None] = []

    @dp.message()
    async def answer(message: Message) -> None:
        handled.append(message.text)

    dp.update.outer_middleware(PublishTurns(theirs))
    bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
    woken, delivery = wakeups.next("turn"), wakeups.next("delivery")
    try:
        await dp.feed_update(bot, Update.model_validate({"update_id": 1, "message": message(7)}))
        await asyncio.wait_for(woken.wait(), WITHIN_S)
    finally:
        await bot.session.close()
    assert handled == ["hello"]
    assert not delivery.is_set(), "a turn is no reply to deliver: the outboxes sleep on"
