"""Training data read from the conversation log: plain synchronous iterators, no event loop.

Each iterator opens the file itself, streams rows in conversation order, and closes the file
when exhausted or closed. Erased customers have no rows left, so they never appear.
"""

from __future__ import annotations

import json
import sqlite3
from collections import deque
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from engine.log.records import Action, Role
from engine.log.schema import open_database

# The reason the engine gives an answer to the customer's pick after a clarifying question.
_CLARIFY_CHOICE = "clarify choice:"


@dataclass(frozen=True, slots=True)
class AnswerPair:
    """A customer question, the knowledge-base entry the bot answered it from, and the verdict.

    The answered entry is the turn's top-ranked retrieved entry; `feedback` is +1, -1 or None.
    """

    turn_id: int
    question: str
    faq_id: str
    feedback: int | None


@dataclass(frozen=True, slots=True)
class DialogueExample:
    """A bot or operator reply with the turns before it, for fine-tuning the generator.

    `context` holds (role, text) pairs oldest first; filter on `role`, `action` and `feedback`
    to pick the examples worth learning from.
    """

    conversation_id: int
    turn_id: int
    context: tuple[tuple[Role, str], ...]
    role: Role
    reply: str
    action: Action | None
    feedback: int | None
    faq_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LabelledSentiment:
    """A customer message with the sentiment the running model gave it."""

    turn_id: int
    text: str
    label: str
    score: float
    model: str | None


def open_for_reading(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing log, migrated first if it is older than the code."""
    conn = open_database(path, create=False)
    conn.execute("PRAGMA query_only = ON")
    return conn


def answer_pairs(path: Path) -> Iterator[AnswerPair]:
    """Every bot answer that was grounded in an entry: the question, the entry, the feedback.

    When the answer follows the customer's pick from a clarifying question ("2"), the question
    is the one that was clarified, not the pick.
    """
    customer = (
        "(SELECT q.text FROM turns q WHERE q.conversation_id = t.conversation_id "
        "AND q.id < t.id AND q.role = 'customer' ORDER BY q.id DESC LIMIT 1 OFFSET {})"
    )
    with closing(open_for_reading(path)) as conn:
        rows = conn.execute(
            f"SELECT t.id, {customer.format(0)}, {customer.format(1)}, t.reason, "
            "r.faq_id, f.value FROM turns t JOIN retrieved r ON r.turn_id = t.id AND r.rank = 1 "
            "LEFT JOIN feedback f ON f.turn_id = t.id "
            "WHERE t.role = 'bot' AND t.action = 'answer' ORDER BY t.id"
        )
        for turn_id, question, clarified, reason, faq_id, feedback in rows:
            if (reason or "").startswith(_CLARIFY_CHOICE):
                question = clarified
            if question is not None:
                yield AnswerPair(turn_id, question, faq_id, feedback)


def dialogue_examples(path: Path, *, context_turns: int = 6) -> Iterator[DialogueExample]:
    """Every bot and operator reply that follows a customer message, with up to `context_turns`
    earlier turns of its conversation as context."""
    if context_turns < 1:
        raise ValueError(f"context_turns must be at least 1, got {context_turns}")
    with closing(open_for_reading(path)) as conn:
        rows = conn.execute(
            "SELECT t.conversation_id, t.id, t.role, t.text, t.action, f.value, r.faq_id "
            "FROM turns t LEFT JOIN feedback f ON f.turn_id = t.id "
            "LEFT JOIN retrieved r ON r.turn_id = t.id ORDER BY t.conversation_id, t.id, r.rank"
        )
        context: deque[tuple[Role, str]] = deque(maxlen=context_turns)
        current = None
        for (conversation_id, turn_id, role, text, action, feedback), group in groupby(
            rows, key=lambda row: row[:6]
        ):
            if conversation_id != current:
                current = conversation_id
                context.clear()
            if role != "customer" and any(turn[0] == "customer" for turn in context):
                faq_ids = tuple(row[6] for row in group if row[6] is not None)
                yield DialogueExample(
                    conversation_id, turn_id, tuple(context), role, text, action, feedback, faq_ids
                )
            context.append((role, text))


def sentiment_labels(path: Path) -> Iterator[LabelledSentiment]:
    """Every customer message that was scored, with its label, score and the scoring model."""
    with closing(open_for_reading(path)) as conn:
        rows = conn.execute(
            "SELECT id, text, sentiment_label, sentiment_score, models FROM turns "
            "WHERE role = 'customer' AND sentiment_label IS NOT NULL ORDER BY id"
        )
        for turn_id, text, label, score, models in rows:
            model = json.loads(models).get("sentiment")
            yield LabelledSentiment(turn_id, text, label, score, model)
