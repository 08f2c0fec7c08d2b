"""A real conversation log filled through ConversationLog, shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.log import ConversationLog, LogConfig, Retrieved
from tests.engine.llm_fixtures import lora_adapter, smollm_dir

__all__ = ["fill_log", "lora_adapter", "smollm_dir"]

SHIPPING = "shipping-time"
RETURNS = "returns"


async def fill_log(path: Path, *, redact_pii: bool = True) -> dict[str, int]:
    """Conversations covering every export rule; returns the ids the tests check."""
    ids: dict[str, int] = {}
    async with await ConversationLog.open(path, LogConfig(redact_pii=redact_pii)) as log:
        # Answered and liked: an embedder pair and a dialogue example.
        c = await log.start_conversation("telegram", "liked")
        await log.add_turn(
            c,
            "customer",
            "how long does shipping take?",
            sentiment_label="neutral",
            sentiment_score=0.0,
        )
        t = await log.add_turn(
            c,
            "bot",
            "Shipping takes 3-5 working days.",
            action="answer",
            retrieved=[Retrieved(SHIPPING, 0.9), Retrieved(RETURNS, 0.2)],
        )
        await log.add_feedback(t, 1)
        ids["liked"] = t
        # Answered and rated down: neither a pair nor an example.
        c = await log.start_conversation("telegram", "disliked")
        await log.add_turn(
            c,
            "customer",
            "can I send it back after a year?",
            sentiment_label="neutral",
            sentiment_score=0.0,
        )
        t = await log.add_turn(
            c, "bot", "Yes, any time.", action="answer", retrieved=[Retrieved(RETURNS, 0.7)]
        )
        await log.add_feedback(t, -1)
        ids["disliked"] = t
        # Answered, no vote: a pair but no dialogue example.
        c = await log.start_conversation("telegram", "silent")
        await log.add_turn(
            c,
            "customer",
            "when will my parcel arrive",
            sentiment_label="positive",
            sentiment_score=0.4,
        )
        ids["silent"] = await log.add_turn(
            c,
            "bot",
            "Shipping takes 3-5 working days.",
            action="answer",
            retrieved=[Retrieved(SHIPPING, 0.8)],
        )
        # Upset, liked bot answer, then handed over: the operator answers.
        c = await log.start_conversation("telegram", "upset")
        ids["upset_message"] = await log.add_turn(
            c,
            "customer",
            "this is ridiculous, where is my refund",
            sentiment_label="negative",
            sentiment_score=-0.7,
        )
        t = await log.add_turn(
            c, "bot", "Refunds take 5 days.", action="answer", retrieved=[Retrieved(RETURNS, 0.6)]
        )
        await log.add_feedback(t, 1)
        ids["handed_over_bot"] = t
        handover = await log.open_handover(c, "negative_sentiment")
        ids["operator"] = await log.add_turn(
            c, "operator", "Sorry for the wait: your refund was sent today and shows in 2 days."
        )
        await log.close_handover(handover, operator_id="op1")
        # An erased customer leaves nothing behind.
        c = await log.start_conversation("telegram", "erased")
        await log.add_turn(
            c, "customer", "erase me please", sentiment_label="neutral", sentiment_score=0.0
        )
        t = await log.add_turn(
            c,
            "bot",
            "Shipping takes 3-5 working days.",
            action="answer",
            retrieved=[Retrieved(SHIPPING, 0.9)],
        )
        await log.add_feedback(t, 1)
        await log.erase_customer("telegram", "erased")
        # A message with an e-mail address: redacted unless redaction is off.
        c = await log.start_conversation("telegram", "pii")
        await log.add_turn(
            c,
            "customer",
            "my mail is jane.doe@example.com, where is my order",
            sentiment_label="neutral",
            sentiment_score=0.0,
        )
        ids["pii"] = await log.add_turn(
            c,
            "bot",
            "Shipping takes 3-5 working days.",
            action="answer",
            retrieved=[Retrieved(SHIPPING, 0.9)],
        )
    return ids


@pytest.fixture
async def filled_log(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    path = tmp_path / "conversations.db"
    return path, await fill_log(path)
