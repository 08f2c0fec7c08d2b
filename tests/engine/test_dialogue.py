"""Conversations over several messages through `Engine.reply`: follow-ups and clarify choices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine import Engine, EngineConfig, FinalReply
from engine.choice import pick
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from retrieval import KnowledgeBase

RETURN_HOW = "returns-how-to"
RETURN_WINDOW = "returns-window"
DELIVERY_TIME = "orders-and-delivery/how-long-does-delivery-take"


@pytest.fixture
async def conversation_log(tmp_path: Path) -> AsyncIterator[ConversationLog]:
    log = await ConversationLog.open(tmp_path / "log.db")
    yield log
    await log.close()


def make_engine(kb: KnowledgeBase, log: ConversationLog, *, memory: bool = True) -> Engine:
    config = EngineConfig(contextual_queries=memory)
    return Engine(kb, ExtractiveGenerator(), LexiconSentiment(), log, config)


async def say(engine: Engine, conversation: int, *messages: str) -> FinalReply:
    final = None
    for text in messages:
        async for event in engine.reply(conversation, text):
            if isinstance(event, FinalReply):
                final = event
    assert final is not None
    return final


async def test_a_follow_up_is_answered_from_the_conversation(
    sample_kb: KnowledgeBase, conversation_log: ConversationLog
) -> None:
    engine = make_engine(sample_kb, conversation_log)
    cid = await engine.conversation("terminal", "ann")
    final = await say(engine, cid, "how long does delivery take?", "and to Germany?")
    assert (final.action, final.hits[0].entry.id) == ("answer", DELIVERY_TIME)
    assert "Germany" in final.text

    forgetful = make_engine(sample_kb, conversation_log, memory=False)
    cid = await forgetful.conversation("terminal", "ben")
    alone = await say(forgetful, cid, "how long does delivery take?", "and to Germany?")
    assert alone.hits[0].entry.id != DELIVERY_TIME


async def test_a_new_question_is_not_pulled_back_to_the_last_topic(
    sample_kb: KnowledgeBase, conversation_log: ConversationLog
) -> None:
    engine = make_engine(sample_kb, conversation_log)
    cid = await engine.conversation("terminal", "cat")
    final = await say(engine, cid, "Why was my card declined?", "reset my password")
    assert final.action == "answer", final.reason
    assert final.hits[0].entry.id == "help-centre-payments/i-forgot-my-password-how-do-i-reset-it"


async def clarified(engine: Engine, user: str) -> tuple[int, FinalReply]:
    cid = await engine.conversation("terminal", user)
    final = await say(engine, cid, "How do I return an item?", "and how long does that take?")
    assert final.action == "clarify"
    assert [o.id for o in final.options] == [RETURN_WINDOW, RETURN_HOW]
    return cid, final


@pytest.mark.parametrize(
    ("answer", "faq_id", "number"),
    [
        ("2", RETURN_HOW, 2),
        ("#1", RETURN_WINDOW, 1),
        ("the second one", RETURN_HOW, 2),
        ("first", RETURN_WINDOW, 1),
        ("How do I return an item?", RETURN_HOW, 2),
        ("how long do I have", RETURN_WINDOW, 1),
    ],
)
async def test_an_answer_to_a_clarifying_question_picks_the_option(
    sample_kb: KnowledgeBase,
    conversation_log: ConversationLog,
    answer: str,
    faq_id: str,
    number: int,
) -> None:
    engine = make_engine(sample_kb, conversation_log)
    cid, _ = await clarified(engine, "dan")
    final = await say(engine, cid, answer)
    assert (final.action, final.reason) == ("answer", f"clarify choice: option {number}")
    assert final.hits[0].entry.id == faq_id and final.text == final.hits[0].entry.answer
    conversation = await conversation_log.get_conversation(cid)
    assert conversation is not None
    assert conversation.turns[-1].retrieved[0].faq_id == faq_id


async def test_the_options_survive_a_restart(sample_kb: KnowledgeBase, tmp_path: Path) -> None:
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        cid, _ = await clarified(make_engine(sample_kb, log), "eve")
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        final = await say(make_engine(sample_kb, log), cid, "the second one")
    assert (final.action, final.hits[0].entry.id) == ("answer", RETURN_HOW)


async def test_a_new_question_after_a_clarifying_question_is_searched(
    sample_kb: KnowledgeBase, conversation_log: ConversationLog
) -> None:
    engine = make_engine(sample_kb, conversation_log)
    cid, _ = await clarified(engine, "fay")
    final = await say(engine, cid, "how do I track my parcel?")
    assert not final.reason.startswith("clarify choice")
    assert final.hits[0].entry.id == "orders-and-delivery/how-do-i-track-my-parcel"
    human = await say(
        engine,
        cid,
        "How do I return an item?",
        "and how long does that take?",
        "2 no, a human please",
    )
    assert human.action == "handoff" and human.reason == "human_requested"


OPTIONS = [
    "How long does delivery take?",
    "How much does delivery cost?",
    "Do you refund delivery?",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 2),
        ("option 2 please", 1),
        ("the last one", 2),
        ("第二个", 1),
        ("the cost one", 1),
        ("refund", 2),
        ("4", None),
        ("delivery", None),  # in every option: no choice
        ("I have 2 orders that never arrived", None),
        ("how do I pay with Klarna?", None),
    ],
)
def test_picks_by_number_ordinal_or_words(text: str, expected: int | None) -> None:
    assert pick(text, OPTIONS) == expected
