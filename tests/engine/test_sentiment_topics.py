"""Refund, cancellation and problem words name a request or a report; only anger around them
makes a message strongly negative."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine, FinalReply
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from retrieval import KnowledgeBase


@pytest.mark.parametrize(
    "text",
    [
        "how do I get a refund?",
        "How long does a refund take?",
        "Do you refund the delivery costs?",
        "how do I cancel my order?",
        "cancel my order",
        "refund status",
        "can I get my money back?",
        "怎么退款？",
        "我要退款",
    ],
)
def test_plain_refund_and_cancel_requests_are_not_negative(text: str) -> None:
    assert LexiconSentiment().score(text).label != "negative"


@pytest.mark.parametrize(
    "text",
    [
        "I demand a refund",
        "refund me now",
        "give me my money back",
        "This is awful, I want a refund!!!",
        "WHERE IS MY ORDER!!! I WANT A REFUND",
        "still waiting for my refund, absolutely unacceptable",
        "I returned the lamp two weeks ago and I still have not received my refund",
        "马上给我退款",
    ],
)
def test_angry_refund_demands_stay_negative(text: str) -> None:
    assert LexiconSentiment().score(text).label == "negative"


async def test_a_refund_question_is_answered_not_escalated(
    sample_kb: KnowledgeBase, tmp_path: Path
) -> None:
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), log)
        cid = await engine.conversation("terminal", "gus")
        final = None
        for text in ("how do I get a refund?", "and how long does a refund take?"):
            async for event in engine.reply(cid, text):
                if isinstance(event, FinalReply):
                    final = event
    assert final is not None
    assert final.sentiment.label == "neutral" and final.action != "handoff", final.reason


@pytest.mark.parametrize(
    "text",
    [
        "my kettle broke and is dead after a month, is that covered?",
        "my phone died and I can't log in",
        "my payment failed",
        "I received the wrong item",
        "my card was stolen, what do I do?",
    ],
)
async def test_a_calm_problem_report_is_negative_but_not_escalated(
    text: str, sample_kb: KnowledgeBase, tmp_path: Path
) -> None:
    # With VADER's full weights the first three scored -0.80, -0.56 and -0.51: handed over.
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), log)
        cid = await engine.conversation("terminal", "hana")
        final = None
        async for event in engine.reply(cid, text):
            if isinstance(event, FinalReply):
                final = event
    assert final is not None
    assert final.sentiment.label == "negative", final.sentiment
    assert not final.escalate and final.reason != "negative_sentiment", final.reason
