"""The console's replies reach Telegram customers through the log, once, with several processes."""

from __future__ import annotations

import asyncio
import socket
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bot import make_bot
from bot.outbox import ConsoleOutbox
from engine import Engine
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog, LogConfig, open_store
from engine.sentiment import LexiconSentiment
from engine.settings import BotConfig
from retrieval import KnowledgeBase
from tests.bot.conftest import StartBot
from tests.bot.test_operator import GROUP, MARIA, field, hand_over, texts
from tests.telegram.fake_api import FakeTelegram

CUSTOMER = 311


async def test_a_console_reply_reaches_the_customer_once_with_two_processes(
    start_bot: StartBot,
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    sample_kb: KnowledgeBase,
    tmp_path: Path,
) -> None:
    tg.set_member(GROUP, MARIA, "member")
    # A second bot process: its own connection to the same log file, its own outbox.
    other_log = await ConversationLog.open(tmp_path / "conversations.db")
    other_engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), other_log)
    other_bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
    other = ConsoleOutbox(other_engine, operator_chat_id=GROUP, interval_s=0.05)
    try:
        async with start_bot(operator_chat_id=GROUP, outbox_interval_s=0.05) as harness:
            await other.start(other_bot)
            topic = await hand_over(tg, CUSTOMER)
            conversation = await conversation_log.latest_conversation_id("telegram", str(CUSTOMER))
            assert conversation is not None
            # What the console does on "reply": a pending operator turn in the log.
            turn = await other_log.add_turn(
                conversation, "operator", "Refund sent <today>.", delivery="pending"
            )
            await tg.wait_for(lambda: "Refund sent <today>." in texts(tg, CUSTOMER))
            await tg.wait_for(lambda: any("Refund sent" in t for t in texts(tg, GROUP)))
            await tg.wait_idle(quiet=0.5)
            ours: ConsoleOutbox = harness.dp["outbox"]
            assert ours.sent + other.sent == 1
    finally:
        await other.stop()
        await other_bot.session.close()
        await other_log.close()
    assert texts(tg, CUSTOMER).count("Refund sent <today>.") == 1
    [mirror] = [m for m in tg.messages(GROUP) if "Refund sent" in str(field(m, "text"))]
    assert field(mirror, "message_thread_id") == topic
    assert "Sent from the console" in str(field(mirror, "text"))
    delivered = await conversation_log.get_turn(turn)
    assert delivered is not None and delivered.delivery == "delivered"
    assert await conversation_log.undelivered_turns("telegram") == []


async def test_a_reply_to_a_chat_that_blocked_the_bot_is_marked_undelivered(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    conversation = await conversation_log.start_conversation("telegram", "312")
    turn = await conversation_log.add_turn(conversation, "operator", "Hello?", delivery="pending")
    tg.block(312)
    async with start_bot(outbox_interval_s=0.05):
        await tg.wait_for(lambda: tg.calls_for("sendMessage") != [])
        await tg.wait_idle(quiet=0.5)
    found = await conversation_log.get_turn(turn)
    assert found is not None and found.delivery == "undelivered"


async def test_take_in_a_topic_takes_it_from_the_console_holder(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    tg.set_member(GROUP, MARIA, "member")
    async with start_bot(operator_chat_id=GROUP, outbox_interval_s=0.05):
        topic = await hand_over(tg, 313)
        conversation = await conversation_log.latest_conversation_id("telegram", "313")
        assert conversation is not None
        handover = await conversation_log.open_handover_for(conversation)
        assert handover is not None
        # What the console's "assign to me" does.
        await conversation_log.assign_handover(handover.id, "olaf")
        await tg.wait_for(lambda: "Taken by olaf in the console." in texts(tg, GROUP))
        tg.send_text(GROUP, "/take", user_id=MARIA, chat_type="supergroup", message_thread_id=topic)
        await tg.wait_for(lambda: "Taken by Alice (Telegram)." in texts(tg, GROUP))
        await tg.wait_idle(quiet=0.5)
    taken = await conversation_log.open_handover_for(conversation)
    assert taken is not None and taken.assignee == "Alice (Telegram)"
    assert texts(tg, GROUP).count("Taken by olaf in the console.") == 1
    assert not any("Alice (Telegram) in the console" in t for t in texts(tg, GROUP))


@pytest.fixture(params=["sqlite", "postgresql"])
def log_config(request: pytest.FixtureRequest, tmp_path: Path) -> LogConfig:
    """An empty log of each kind."""
    if request.param == "sqlite":
        return LogConfig(url=f"sqlite:///{tmp_path / 'log.db'}")
    return LogConfig(url=str(request.getfixturevalue("postgres_url")))


async def test_outboxes_passing_at_once_send_each_reply_once(
    log_config: LogConfig, tg: FakeTelegram, sample_kb: KnowledgeBase
) -> None:
    config = log_config
    async with AsyncExitStack() as stack:
        outboxes, bots = [], []
        for _ in range(3):  # three processes: each its own connection and its own bot
            store = await open_store(config)
            stack.push_async_callback(store.close)
            engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), store)
            bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
            stack.push_async_callback(bot.session.close)
            outboxes.append(ConsoleOutbox(engine))
            bots.append(bot)
        log = engine.conversation_log
        for chat in range(701, 706):
            conversation = await log.start_conversation("telegram", str(chat))
            await log.add_turn(conversation, "operator", f"hi {chat}", delivery="pending")
        sent = await asyncio.gather(*(o.deliver(b) for o, b in zip(outboxes, bots, strict=True)))
        assert sum(sent) == 5
        assert await log.undelivered_turns("telegram") == []
    for chat in range(701, 706):
        assert texts(tg, chat) == [f"hi {chat}"]


async def test_a_send_that_fails_on_the_way_is_retried_at_once_by_another_process(
    tg: FakeTelegram, conversation_log: ConversationLog, sample_kb: KnowledgeBase
) -> None:
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    conversation = await conversation_log.start_conversation("telegram", "314")
    turn = await conversation_log.add_turn(conversation, "operator", "Hello?", delivery="pending")
    # Nothing listens on the port the first bot talks to: a network error, not an answer.
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    down = make_bot(tg.token, BotConfig(api_base_url=f"http://127.0.0.1:{port}"))
    up = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
    first, second = ConsoleOutbox(engine), ConsoleOutbox(engine)
    try:
        assert await first.deliver(down) == 0
        # The claim was given back: the next pass sends it, not one reclaim_s (300 s) later.
        assert await first.deliver(up) == 0, "this process backs off before trying again"
        assert await second.deliver(up) == 1
    finally:
        await down.session.close()
        await up.session.close()
    assert texts(tg, 314) == ["Hello?"]
    sent = await conversation_log.get_turn(turn)
    assert sent is not None and sent.delivery == "delivered"


async def test_a_send_held_by_flood_control_gives_its_claim_back_before_it_goes_stale(
    tg: FakeTelegram, conversation_log: ConversationLog, sample_kb: KnowledgeBase
) -> None:
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    conversation = await conversation_log.start_conversation("telegram", "315")
    turn = await conversation_log.add_turn(conversation, "operator", "Hello?", delivery="pending")
    tg.rate_limit(315, retry_after=30, times=1)
    bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
    # A claim of 2 s: the send waiting 30 s for flood control is cut off after 1 s.
    outbox = ConsoleOutbox(engine, reclaim_s=2.0, interval_s=0.05)
    try:
        assert await outbox.deliver(bot) == 0
        assert await conversation_log.claim_delivery(turn, stale_after_s=3600)
        await conversation_log.release_delivery(turn)
        await asyncio.sleep(0.2)  # past this process's first back-off
        assert await outbox.deliver(bot) == 1
    finally:
        await bot.session.close()
    assert texts(tg, 315) == ["Hello?"]
