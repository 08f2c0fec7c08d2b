"""CSAT: the customer's rating of a resolved hand-over, asked for and read back on any channel.

When an operator resolves a hand-over (in the console or the Telegram desk) the customer is
asked `QUESTION`. Their next message, if it is a rating ("1" to "5", 👍 or 👎), is the
hand-over's rating: stored in the log and thanked for, never answered as a question. Anything
else, or a rating after the bot has spoken again, is an ordinary message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.log import ConversationStore

QUESTION = "Your question was handled by our team. How did we do? Reply with 1 (bad) to 5 (great)."
THANKS = "Thank you for your rating!"
# How long after the question an answer still counts as its rating.
WINDOW_S = 7 * 24 * 3600.0
_SCORES = {**{str(n): n for n in range(1, 6)}, "👍": 5, "👎": 1}


@dataclass(frozen=True, slots=True)
class Rating:
    """A rating taken from a customer's message, with the thank-you logged for it."""

    conversation_id: int
    handover_id: int
    score: int
    turn_id: int
    text: str = THANKS


def rating_key(handover_id: int) -> str:
    """The external id of a hand-over's rating question: logged, and so sent, once."""
    return f"rating:{handover_id}"


def score_of(text: str) -> int | None:
    """The score a message gives when it is a rating, else None."""
    return _SCORES.get(text.strip().rstrip(".!").strip().replace("\ufe0f", ""))


async def take_rating(
    log: ConversationStore,
    conversation_id: int,
    text: str,
    *,
    external_id: str | None = None,
    now: float | None = None,
) -> Rating | None:
    """Store `text` as the rating of the conversation's resolved hand-over when it is one.

    Logs the customer's message and the thank-you (a bot turn without an action, so analytics
    does not count it as an answer). None: not a rating, or no rating is awaited.
    """
    score = score_of(text)
    if score is None:
        return None
    since = (now if now is not None else time.time()) - WINDOW_S
    handover = await log.awaiting_rating(conversation_id, since=since)
    if handover is None:
        return None
    asked_at = handover.rating_asked_at or 0.0
    # A bot reply after the question: the customer moved on, and "2" may pick an option.
    turns = await log.recent_turns(conversation_id, 5)
    if any(t.role == "bot" and t.created_at > asked_at for t in turns):
        return None
    if not await log.rate_handover(handover.id, score):
        return None
    await log.add_turn(conversation_id, "customer", text, external_id=external_id)
    turn = await log.add_turn(conversation_id, "bot", THANKS, reason="csat rating")
    return Rating(conversation_id, handover.id, score, turn)
