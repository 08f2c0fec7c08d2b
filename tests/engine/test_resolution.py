"""Resolution rate of logged conversations: the bot's last answer stood."""

from __future__ import annotations

from engine.resolution import LoggedTurn, conversation_resolved, resolution_rate

ASK = LoggedTurn("customer")


def answer(feedback: int | None = None) -> LoggedTurn:
    return LoggedTurn("bot", "answer", feedback)


def test_an_answer_the_customer_leaves_standing_resolves() -> None:
    assert conversation_resolved([ASK, answer()], handed_over=False)


def test_a_rating_decides_even_if_the_customer_writes_on() -> None:
    assert conversation_resolved([ASK, answer(1), ASK], handed_over=False)
    assert not conversation_resolved([ASK, answer(-1)], handed_over=False)


def test_a_question_left_without_an_answer_does_not_resolve() -> None:
    assert not conversation_resolved([ASK, answer(), ASK], handed_over=False)
    operator = LoggedTurn("operator")
    assert not conversation_resolved([ASK, answer(), ASK, operator], handed_over=False)


def test_the_bots_last_word_must_be_an_answer() -> None:
    clarify = LoggedTurn("bot", "clarify")
    handoff = LoggedTurn("bot", "handoff")
    assert not conversation_resolved([ASK, clarify], handed_over=False)
    assert not conversation_resolved([ASK, answer(), ASK, handoff], handed_over=False)
    # Asked back, the customer picked an option, the answer stood.
    assert conversation_resolved([ASK, clarify, ASK, answer()], handed_over=False)


def test_a_hand_over_never_resolves() -> None:
    assert not conversation_resolved([ASK, answer()], handed_over=True)


def test_the_rate_counts_conversations_in_which_a_customer_wrote() -> None:
    conversations = [
        ([ASK, answer()], False),
        ([ASK, answer(-1)], False),
        ([ASK, LoggedTurn("bot", "handoff")], True),
        ([ASK, answer(1)], False),
        ([], False),  # opened, nothing written: not counted
    ]
    assert resolution_rate(conversations) == 0.5
    assert resolution_rate([]) is None
