"""CSAT: which messages are ratings, and when a rating is taken from the log's point of view."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.log import ConversationLog
from engine.rating import THANKS, score_of, take_rating


@pytest.mark.parametrize(
    ("text", "score"),
    [("5", 5), (" 1 ", 1), ("4.", 4), ("3!", 3), ("👍", 5), ("👍\ufe0f", 5), ("👎", 1)],
)
def test_ratings_are_recognised(text: str, score: int) -> None:
    assert score_of(text) == score


@pytest.mark.parametrize("text", ["6", "0", "5 stars", "where is my parcel?", "", "10"])
def test_other_messages_are_not_ratings(text: str) -> None:
    assert score_of(text) is None


async def resolved(log: ConversationLog) -> tuple[int, int]:
    conversation = await log.start_conversation("web", "visitor")
    await log.add_turn(conversation, "customer", "I need a person")
    handover = await log.open_handover(conversation, "human_requested")
    await log.close_handover(handover, operator_id="olaf")
    await log.ask_rating(handover)
    await log.add_turn(conversation, "operator", "How did we do?")
    return conversation, handover


async def test_the_answer_to_the_question_is_stored_and_thanked_for(tmp_path: Path) -> None:
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        conversation, handover = await resolved(log)
        assert await take_rating(log, conversation, "where is it?") is None
        rated = await take_rating(log, conversation, "2", external_id="m-1")
        assert rated is not None and (rated.handover_id, rated.score) == (handover, 2)
        turns = await log.recent_turns(conversation, 2)
        assert [(t.role, t.text, t.action) for t in turns] == [
            ("customer", "2", None),
            ("bot", THANKS, None),
        ]
        assert rated.turn_id == turns[-1].id
        assert await take_rating(log, conversation, "5") is None  # rated already
        assert await log.handover_ratings() == [2]


async def test_a_number_after_the_bot_spoke_again_is_not_a_rating(tmp_path: Path) -> None:
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        conversation, _ = await resolved(log)
        # The customer asked something else; "1" now picks an option of the bot's question.
        await log.add_turn(conversation, "customer", "how do returns work?")
        await log.add_turn(conversation, "bot", "Which of these do you mean?", action="clarify")
        assert await take_rating(log, conversation, "1") is None
        assert await log.handover_ratings() == []


async def test_a_late_answer_is_not_a_rating(tmp_path: Path) -> None:
    async with await ConversationLog.open(tmp_path / "log.db") as log:
        conversation, _ = await resolved(log)
        eight_days = 8 * 24 * 3600.0
        found = await log.awaiting_rating(conversation, since=0)
        assert found is not None and found.rating_asked_at is not None
        later = found.rating_asked_at + eight_days
        assert await take_rating(log, conversation, "5", now=later) is None
