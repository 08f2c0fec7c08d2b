"""The hand-over post: escaped, within one Telegram message, the newest turns kept."""

from __future__ import annotations

from aiogram.types import User

from bot.formatting import MESSAGE_LIMIT, utf16_len
from bot.operator_summary import summary, topic_name
from engine.log import Retrieved, Turn

ALICE = User(id=1234, is_bot=False, first_name="Alice", last_name="<b>", username="alice")


def turn(number: int, role: str, text: str) -> Turn:
    return Turn(number, 1, role, text, float(number))  # type: ignore[arg-type]


def test_topic_is_named_after_the_customer() -> None:
    assert topic_name(ALICE) == "Alice <b> · #1234"


def test_the_post_is_escaped_and_shows_transcript_sentiment_and_entries() -> None:
    turns = [
        Turn(1, 1, "customer", "where is <my> order?", 1.0, None, None, "negative", -0.7),
        Turn(
            2, 1, "bot", "Sorry", 2.0, "handoff", "out_of_scope", retrieved=(Retrieved("r1", 0.4),)
        ),
    ]
    post = summary(ALICE, "negative_sentiment", turns, None)
    assert "Alice &lt;b&gt; (@alice), id 1234" in post
    assert "where is &lt;my&gt; order?" in post
    assert "Sentiment: negative (-0.70)" in post
    assert "0.40 [r1]" in post


def test_a_long_transcript_drops_its_oldest_turns_to_fit_one_message() -> None:
    turns = [turn(n, "customer", f"turn {n} " + "字" * 380) for n in range(1, 30)]
    post = summary(ALICE, "human_requested", turns, None)
    assert utf16_len(post) <= MESSAGE_LIMIT
    assert "turn 29 " in post and "turn 1 " not in post
