"""The operator desk's records in the log: which forum topic is whose, who is with an operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.log import ConversationLog


@pytest.fixture
async def conversation_log(tmp_path: Path) -> AsyncIterator[ConversationLog]:
    log = await ConversationLog.open(tmp_path / "conversations.db")
    yield log
    await log.close()


async def test_a_topic_assigned_to_a_handover_finds_it_and_outlives_its_closing(
    conversation_log: ConversationLog,
) -> None:
    log = conversation_log
    first = await log.start_conversation("telegram", "7")
    handover = await log.open_handover(first, "human_requested")
    assert await log.latest_topic("telegram", "7") is None
    await log.assign_topic(handover, 55)
    found = await log.handover_for_topic(55)
    assert found is not None and found.id == handover
    await log.close_handover(handover, operator_id="9")
    assert await log.handover_for_topic(55) is None
    # A later conversation of the same customer still finds the topic to reuse.
    await log.start_conversation("telegram", "7")
    assert await log.latest_topic("telegram", "7") == 55
    assert await log.latest_topic("telegram", "8") is None


async def test_open_handovers_lists_customers_still_with_an_operator(
    conversation_log: ConversationLog,
) -> None:
    log = conversation_log
    ids = {user: await log.start_conversation("telegram", user) for user in ("1", "2", "3")}
    await log.start_conversation("terminal", "1")
    handovers = {user: await log.open_handover(ids[user], "negative_sentiment") for user in ids}
    await log.close_handover(handovers["2"])
    open_now = await log.open_handovers("telegram")
    assert [(user, h.id) for user, h in open_now] == [
        ("1", handovers["1"]),
        ("3", handovers["3"]),
    ]
    assert await log.open_handovers("terminal") == []


async def test_assigning_a_topic_to_an_unknown_handover_is_an_error(
    conversation_log: ConversationLog,
) -> None:
    with pytest.raises(ValueError, match="no handover 99"):
        await conversation_log.assign_topic(99, 1)
