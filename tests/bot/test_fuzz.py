"""Generated Bot API updates through the real dispatcher, polling the fake Bot API: whatever
comes, no traceback, every button press answered once, and no call Telegram would refuse."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram.types import TelegramObject, Update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.log import ConversationLog
from retrieval import KnowledgeBase
from tests.bot.conftest import Harness, running_bot
from tests.bot.hostile import refused_calls, tracebacks
from tests.telegram.fake_api import FakeTelegram
from tests.telegram.strategies import updates
from tests.telegram.world import DEFAULT_ICON_COLOR, Topic

BOT_USER = FakeTelegram().bot_user
_QUERY_IDS = itertools.count(1)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


@dataclass
class Fuzzed:
    """The running bot, and the ids of the updates its dispatcher finished handling."""

    harness: Harness
    handled: set[int] = field(default_factory=set)


@pytest.fixture
async def fuzzed(
    tg: FakeTelegram, sample_kb: KnowledgeBase, conversation_log: ConversationLog
) -> AsyncIterator[Fuzzed]:
    """One running bot for all the examples of a test: the state they leave is part of it."""
    async with running_bot(tg, sample_kb, conversation_log, stream_interval_s=0.05) as running:
        found = Fuzzed(running)

        async def note(handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
            try:
                return await handler(event, data)
            finally:
                if isinstance(event, Update):
                    found.handled.add(event.update_id)

        running.dp.update.outer_middleware(note)
        yield found


def declare(tg: FakeTelegram, update: dict[str, Any]) -> None:
    """Let the fake know the chats and topics an update speaks of, as Telegram would."""
    kind, event = next((k, v) for k, v in update.items() if k != "update_id")
    message = event.get("message") if kind == "callback_query" else event
    if not isinstance(message, dict):
        return
    chat = message["chat"]
    tg.add_chat(chat["id"], chat["type"], is_forum=bool(chat.get("is_forum")))
    thread = message.get("message_thread_id")
    if thread is not None:
        topics = tg.world.chat(chat["id"]).topics
        topics.setdefault(thread, Topic(thread, f"Topic {thread}", DEFAULT_ICON_COLOR))


@settings(
    max_examples=25,
    deadline=None,
    database=None,  # no example store left in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(updates(BOT_USER), min_size=1, max_size=4))
async def test_generated_updates_never_break_the_bot(
    batch: list[dict[str, Any]],
    fuzzed: Fuzzed,
    tg: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls, records = len(tg.calls), len(caplog.records)
    queries, update_ids = [], set()
    for update in batch:
        declare(tg, update)
        if "callback_query" in update:  # Telegram never repeats a query id
            update["callback_query"]["id"] = f"fuzz-{next(_QUERY_IDS)}"
        queued = tg.add_update(update)
        update_ids.add(queued["update_id"])
        if "callback_query" in queued:
            queries.append(queued["callback_query"]["id"])
    await tg.wait_for(lambda: update_ids <= fuzzed.handled, timeout=60)
    new_calls = tg.calls[calls:]
    answers = [c["callback_query_id"] for c in new_calls if c.method == "answerCallbackQuery"]
    assert sorted(answers) == sorted(queries), new_calls
    refused = [c for c in refused_calls(tg) if c in new_calls]
    assert not refused, [(c.method, c.description, c.params) for c in refused]
    assert not [r for r in tracebacks(caplog) if r in caplog.records[records:]]
