"""Resolution rate of logged conversations: the share in which the bot's last answer stood.

The definition Intercom uses for Fin: a conversation is resolved when the bot's last reply was
an answer and the customer rated it up, or went quiet after it without asking for a person.
A rating down, a question after the answer that the bot did not answer, a clarifying question
or a hand-over as the bot's last word, and any hand-over at all leave it unresolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from engine.log.records import Action


@dataclass(frozen=True, slots=True)
class LoggedTurn:
    """What resolution needs of one turn: who spoke, the bot's action, the rating it got."""

    role: Literal["customer", "bot", "operator"]
    action: Action | None = None
    feedback: int | None = None


def conversation_resolved(turns: Sequence[LoggedTurn], *, handed_over: bool) -> bool:
    """Whether the bot's last answer in a conversation (turns in order) stood."""
    if handed_over:
        return False
    last_bot = max((i for i, t in enumerate(turns) if t.role == "bot"), default=None)
    if last_bot is None or turns[last_bot].action != "answer":
        return False
    answer = turns[last_bot]
    if answer.feedback is not None:
        return answer.feedback > 0
    return all(t.role == "bot" for t in turns[last_bot + 1 :])


def resolution_rate(conversations: Iterable[tuple[Sequence[LoggedTurn], bool]]) -> float | None:
    """Resolved share of the conversations in which a customer wrote; None when there are none.

    Each item is a conversation's turns in order and whether a hand-over was opened in it.
    """
    resolved = total = 0
    for turns, handed_over in conversations:
        if not any(t.role == "customer" for t in turns):
            continue
        total += 1
        resolved += conversation_resolved(turns, handed_over=handed_over)
    return round(resolved / total, 4) if total else None
