"""The typed export API: training sets, reports and copies read the log through this only.

Each export is computed from the store's stream of whole conversations
(`ConversationStore.export_conversations`), so every store gives the same records and no SQL
lives outside the stores. The async functions take an open store; the plain functions take a
log (a `LogConfig`, a file path or a database URL), open it, read it and close it, for
synchronous callers such as training. Erased customers have no rows left, so they never appear.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from engine.log.config import LogConfig, log_config_for
from engine.log.port import ConversationStore, open_store
from engine.log.records import Action, Conversation, Handover, Role, Turn

_T = TypeVar("_T")

# A log as the plain functions take it: a config, an SQLite file, or a database URL.
LogTarget = LogConfig | Path | str


@dataclass(frozen=True, slots=True)
class AnswerPair:
    """A customer question, the knowledge-base entry the bot answered it from, and the verdict.

    The answered entry is the turn's top-ranked retrieved entry; `feedback` is +1, -1 or None.
    """

    turn_id: int
    question: str
    faq_id: str
    feedback: int | None
    conversation_id: int


@dataclass(frozen=True, slots=True)
class DialogueExample:
    """A bot or operator reply with the turns before it, for fine-tuning the generator.

    `context` holds (role, text) pairs oldest first; filter on `role`, `action` and `feedback`
    to pick the examples worth learning from. `handed_over` marks a bot reply given while, or
    right before, its conversation went to an operator.
    """

    conversation_id: int
    turn_id: int
    context: tuple[tuple[Role, str], ...]
    role: Role
    reply: str
    action: Action | None
    feedback: int | None
    faq_ids: tuple[str, ...]
    handed_over: bool = False


@dataclass(frozen=True, slots=True)
class LabelledSentiment:
    """A customer message with the sentiment the running model gave it.

    `escalated` marks the last message before a hand-over caused by negative sentiment.
    """

    turn_id: int
    text: str
    label: str
    score: float
    model: str | None
    conversation_id: int
    escalated: bool = False


@dataclass(frozen=True, slots=True)
class HandoverExchange:
    """A hand-over with the customer's questions that led to it and the operators' answers.

    `questions` are the customer turns since the conversation's previous hand-over (or its
    start) up to the operator's first answer; `answers` the operator turns while it was open.
    """

    conversation_id: int
    handover: Handover
    questions: tuple[Turn, ...]
    answers: tuple[Turn, ...]


@dataclass(frozen=True, slots=True)
class LogExports:
    """Every training export of one log, read in a single pass."""

    answer_pairs: tuple[AnswerPair, ...]
    dialogue_examples: tuple[DialogueExample, ...]
    sentiment_labels: tuple[LabelledSentiment, ...]
    handover_exchanges: tuple[HandoverExchange, ...]


# Per conversation: the pure functions every export is built from.


def conversation_answer_pairs(conversation: Conversation) -> Iterator[AnswerPair]:
    """Every bot answer grounded in an entry, with the question it answered.

    When the answer follows the customer's pick from a clarifying question ("2"), the question
    is the one that was clarified, not the pick.
    """
    customers: list[str] = []
    for turn in conversation.turns:
        if turn.role == "customer":
            customers.append(turn.text)
            continue
        if turn.role != "bot" or turn.action != "answer" or not turn.retrieved:
            continue
        back = 2 if turn.reason_code == "clarify_choice" else 1
        if len(customers) >= back:
            yield AnswerPair(
                turn.id,
                customers[-back],
                turn.retrieved[0].faq_id,
                turn.feedback,
                conversation.id,
            )


def conversation_dialogue_examples(
    conversation: Conversation, context_turns: int
) -> Iterator[DialogueExample]:
    """Every bot and operator reply that follows a customer message, with up to
    `context_turns` earlier turns as context."""
    handed_over = _handed_over_turns(conversation)
    context: deque[tuple[Role, str]] = deque(maxlen=context_turns)
    for turn in conversation.turns:
        if turn.role != "customer" and any(role == "customer" for role, _ in context):
            yield DialogueExample(
                conversation.id,
                turn.id,
                tuple(context),
                turn.role,
                turn.text,
                turn.action,
                turn.feedback,
                tuple(hit.faq_id for hit in turn.retrieved),
                turn.id in handed_over,
            )
        context.append((turn.role, turn.text))


def conversation_sentiment_labels(conversation: Conversation) -> Iterator[LabelledSentiment]:
    """Every customer message that was scored, with its label, score and scoring model."""
    escalated = {
        last.id
        for h in conversation.handovers
        if h.reason_code == "negative_sentiment"
        and (last := _last_customer_turn(conversation, h.opened_at)) is not None
    }
    for turn in conversation.turns:
        if turn.role != "customer" or turn.sentiment_label is None:
            continue
        assert turn.sentiment_score is not None, "label and score are stored together"
        yield LabelledSentiment(
            turn.id,
            turn.text,
            turn.sentiment_label,
            turn.sentiment_score,
            turn.models.get("sentiment"),
            conversation.id,
            turn.id in escalated,
        )


def conversation_handover_exchanges(conversation: Conversation) -> Iterator[HandoverExchange]:
    """Each hand-over of a conversation with the questions before it and the operators' answers."""
    since = float("-inf")
    for handover in conversation.handovers:
        until = handover.closed_at if handover.closed_at is not None else float("inf")
        answers = tuple(
            t
            for t in conversation.turns
            if t.role == "operator" and handover.opened_at <= t.created_at <= until
        )
        asked_until = answers[0].created_at if answers else until
        questions = tuple(
            t
            for t in conversation.turns
            if t.role == "customer" and since < t.created_at < asked_until
        )
        yield HandoverExchange(conversation.id, handover, questions, answers)
        since = until


def _last_customer_turn(conversation: Conversation, before: float) -> Turn | None:
    found = None
    for turn in conversation.turns:
        if turn.role == "customer" and turn.created_at <= before:
            found = turn
    return found


def _handed_over_turns(conversation: Conversation) -> set[int]:
    """Bot turns given while, or right before, the conversation went to an operator: no
    customer message came between them and the hand-over."""
    found: set[int] = set()
    for handover in conversation.handovers:
        last = _last_customer_turn_strictly(conversation, handover.opened_at)
        found |= {
            t.id
            for t in conversation.turns
            if t.role == "bot"
            and t.created_at <= handover.opened_at
            and (last is None or t.id > last.id)
        }
    return found


def _last_customer_turn_strictly(conversation: Conversation, before: float) -> Turn | None:
    found = None
    for turn in conversation.turns:
        if turn.role == "customer" and turn.created_at < before:
            found = turn
    return found


# Over a whole store.


async def export_answer_pairs(store: ConversationStore) -> AsyncIterator[AnswerPair]:
    """Every grounded bot answer of the log, in conversation order."""
    async for conversation in store.export_conversations():
        for pair in conversation_answer_pairs(conversation):
            yield pair


async def export_dialogue_examples(
    store: ConversationStore, *, context_turns: int = 6
) -> AsyncIterator[DialogueExample]:
    """Every bot and operator reply that follows a customer message, with its context."""
    _check_context(context_turns)
    async for conversation in store.export_conversations():
        for example in conversation_dialogue_examples(conversation, context_turns):
            yield example


async def export_sentiment_labels(store: ConversationStore) -> AsyncIterator[LabelledSentiment]:
    """Every scored customer message of the log."""
    async for conversation in store.export_conversations():
        for label in conversation_sentiment_labels(conversation):
            yield label


async def export_handover_exchanges(store: ConversationStore) -> AsyncIterator[HandoverExchange]:
    """Every hand-over of the log with the customer's questions and the operators' answers:
    what the learning loop learns operator answers from."""
    async for conversation in store.export_conversations():
        for exchange in conversation_handover_exchanges(conversation):
            yield exchange


async def export_all(store: ConversationStore, *, context_turns: int = 6) -> LogExports:
    """Every training export in one pass over the log."""
    _check_context(context_turns)
    pairs: list[AnswerPair] = []
    dialogues: list[DialogueExample] = []
    labels: list[LabelledSentiment] = []
    exchanges: list[HandoverExchange] = []
    async for conversation in store.export_conversations():
        pairs += conversation_answer_pairs(conversation)
        dialogues += conversation_dialogue_examples(conversation, context_turns)
        labels += conversation_sentiment_labels(conversation)
        exchanges += conversation_handover_exchanges(conversation)
    return LogExports(tuple(pairs), tuple(dialogues), tuple(labels), tuple(exchanges))


# Synchronous: open the log, read it, close it.


def read_log(target: LogTarget, read: Callable[[ConversationStore], Awaitable[_T]]) -> _T:
    """Open an existing log, run `read` on it and close it, from synchronous code.

    Runs its own event loop (in a helper thread when the caller already runs one). A missing
    SQLite file is a FileNotFoundError: readers never create a log.
    """

    async def run() -> _T:
        async with await open_store(_config(target), create=False) as store:
            return await read(store)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    with ThreadPoolExecutor(1, thread_name_prefix="log-export") as pool:
        return pool.submit(asyncio.run, run()).result()


def read_exports(target: LogTarget, *, context_turns: int = 6) -> LogExports:
    """Every training export of the log at `target`, in one pass."""
    return read_log(target, lambda store: export_all(store, context_turns=context_turns))


def answer_pairs(target: LogTarget) -> Iterator[AnswerPair]:
    """Every grounded bot answer of the log at `target`: the question, the entry, the feedback."""
    return iter(read_log(target, lambda store: _collect(export_answer_pairs(store))))


def dialogue_examples(target: LogTarget, *, context_turns: int = 6) -> Iterator[DialogueExample]:
    """Every bot and operator reply of the log at `target` that follows a customer message."""
    _check_context(context_turns)
    return iter(
        read_log(
            target,
            lambda store: _collect(export_dialogue_examples(store, context_turns=context_turns)),
        )
    )


def sentiment_labels(target: LogTarget) -> Iterator[LabelledSentiment]:
    """Every scored customer message of the log at `target`."""
    return iter(read_log(target, lambda store: _collect(export_sentiment_labels(store))))


def handover_exchanges(target: LogTarget) -> Iterator[HandoverExchange]:
    """Every hand-over of the log at `target` with its questions and operator answers."""
    return iter(read_log(target, lambda store: _collect(export_handover_exchanges(store))))


async def _collect(items: AsyncIterator[_T]) -> list[_T]:
    return [item async for item in items]


def _config(target: LogTarget) -> LogConfig:
    return target if isinstance(target, LogConfig) else log_config_for(target)


def _check_context(context_turns: int) -> None:
    if context_turns < 1:
        raise ValueError(f"context_turns must be at least 1, got {context_turns}")
