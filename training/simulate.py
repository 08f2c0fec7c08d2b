"""Simulated traffic through the running engine, to prove the retraining loop end to end.

Synthetic customers ask questions through `Engine.reply`, exactly as the bot's customers do. A
scripted policy plays them and the operators: it rates answers 👍/👎 through the conversation
log's feedback API, picks the right option when the bot asks which entry was meant, asks for a
person after a wrong answer or a miss, and answers hand-overs as an operator in the company's own
style (logged as operator turns, the hand-over closed, as the operator desk does). The log it
leaves is what `run_retraining` learns from; `held_out_accuracy` measures an engine on questions
the traffic never asked.

Unlike the rest of training/ this is async: the engine is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import Engine, FinalReply
from engine.runtime import open_engine
from engine.settings import Settings
from retrieval.embedders import Embedder, load_embedder
from retrieval.entries import FaqEntry
from retrieval.store import read_snapshot
from training.loop import RunOptions, RunSummary, run_retraining

OPERATOR_ID = "operator-sim"
COMPLAINTS = (
    "This is ridiculous, I am furious and nobody helps me!",
    "Terrible service, I'm angry and fed up.",
    "Worst shop ever, this is a disgrace.",
)
WRONG_ANSWER = "That doesn't answer my question, can I talk to a person?"
MISSED = "Can I talk to a person please?"
OUT_OF_SCOPE_REPLY = (
    "Thanks for reaching out! I've passed this to the right team and they will e-mail you today. "
    "Anything else I can help you with?"
)


@dataclass(frozen=True, slots=True)
class Question:
    """What a simulated customer asks, and the entry that answers it (None: out of scope)."""

    text: str
    faq_id: str | None


@dataclass(frozen=True, slots=True)
class CustomerPolicy:
    """How the simulated customers and operators behave; shares are probabilities."""

    # Customers who rate an answer at all; the others leave it unrated.
    vote_share: float = 1.0
    # Customers who open with a complaint before their question.
    upset_share: float = 0.1
    # Hand-overs an operator answers; the rest are closed unanswered.
    operator_share: float = 1.0
    seed: int = 0


@dataclass(slots=True)
class TrafficStats:
    """What the simulated traffic did, for the demo's printout."""

    conversations: int = 0
    answered_right: int = 0
    answered_wrong: int = 0
    clarified: int = 0
    liked: int = 0
    disliked: int = 0
    handed_over: int = 0
    operator_turns: int = 0
    versions: set[str] = field(default_factory=set)


def read_questions(path: Path) -> list[Question]:
    """Labelled queries, JSON Lines `{"query", "faq_id"}` (`faq_id` null: out of scope)."""
    with path.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [Question(str(row["query"]), row.get("faq_id")) for row in rows]


def operator_answer(entry: FaqEntry | None) -> str:
    """How the simulated operator answers a question about `entry` (None: not in the FAQ)."""
    if entry is None or not entry.answer.strip():
        return OUT_OF_SCOPE_REPLY
    first = re.split(r"(?<=[.!?])\s+", entry.answer.strip().replace("\n", " "))[0]
    return f"Thanks for reaching out! {first} Anything else I can help you with?"


async def simulate_traffic(
    engine: Engine,
    questions: Sequence[Question],
    entries: Mapping[str, FaqEntry],
    policy: CustomerPolicy | None = None,
    *,
    channel: str = "simulation",
) -> TrafficStats:
    """One new conversation per question, each played through `engine.reply` to its end."""
    policy = policy or CustomerPolicy()
    rng = random.Random(policy.seed)
    stats = TrafficStats()
    log = engine.conversation_log
    for number, question in enumerate(questions):
        conversation = await engine.conversation(channel, f"customer-{number}", new=True)
        stats.conversations += 1
        text = question.text
        if rng.random() < policy.upset_share:
            text = f"{rng.choice(COMPLAINTS)} {text}"
        final = await _ask(engine, conversation, text, stats)
        if final.action == "clarify":
            offered = [entry.id for entry in final.options]
            if question.faq_id in offered:
                stats.clarified += 1
                choice = str(offered.index(question.faq_id) + 1)
                final = await _ask(engine, conversation, choice, stats)
            else:
                final = await _ask(engine, conversation, MISSED, stats)
        if final.action == "answer":
            right = bool(final.hits) and final.hits[0].entry.id == question.faq_id
            stats.answered_right += right
            stats.answered_wrong += not right
            if rng.random() < policy.vote_share:
                await log.add_feedback(final.turn_id, 1 if right else -1)
                stats.liked += right
                stats.disliked += not right
            if not right:
                final = await _ask(engine, conversation, WRONG_ANSWER, stats)
        elif not final.escalate and question.faq_id is not None:
            final = await _ask(engine, conversation, MISSED, stats)
        if final.escalate:
            stats.handed_over += 1
            handover = await log.open_handover_for(conversation)
            assert handover is not None, "an escalating reply opens a hand-over"
            if rng.random() < policy.operator_share:
                entry = entries.get(question.faq_id) if question.faq_id else None
                await log.add_turn(conversation, "operator", operator_answer(entry))
                stats.operator_turns += 1
            await log.close_handover(handover.id, operator_id=OPERATOR_ID)
    return stats


@dataclass(frozen=True, slots=True)
class HeldOutScore:
    """How an engine did on in-scope questions the traffic never asked.

    `top1`: share whose best hit was the right entry; `answered`: share answered at once from
    it (not clarified, not handed over). The versions are those of the last reply.
    """

    top1: float
    answered: float
    questions: int
    versions: Mapping[str, str]


async def held_out_accuracy(
    engine: Engine, questions: Sequence[Question], *, channel: str = "evaluation"
) -> HeldOutScore:
    """Ask each in-scope question through `engine.reply` in a new conversation and score it.

    The turns land in the engine's log, so give it a log of its own when the score must not
    become training data.
    """
    in_scope = [q for q in questions if q.faq_id is not None]
    top1 = answered = 0
    versions: dict[str, str] = {}
    for number, question in enumerate(in_scope):
        conversation = await engine.conversation(channel, f"held-out-{number}", new=True)
        final = await _ask(engine, conversation, question.text, None)
        versions = dict(final.versions)
        right = bool(final.hits) and final.hits[0].entry.id == question.faq_id
        top1 += right
        answered += right and final.action == "answer"
    n = max(len(in_scope), 1)
    return HeldOutScore(round(top1 / n, 4), round(answered / n, 4), len(in_scope), versions)


def ranking_scores(
    embedder: Embedder, entries: Sequence[FaqEntry], questions: Sequence[Question]
) -> dict[str, float]:
    """How `embedder` alone ranks the right entry for in-scope `questions` (nearest question).

    recall_at_1, mean reciprocal rank, and the mean margin between the right entry's
    similarity and the best wrong entry's: the last moves before a ranking flips, so it shows
    an improvement that a few dozen questions are too few to show in recall.
    """
    asked = [q for q in questions if q.faq_id is not None]
    texts = [text for entry in entries for text in entry.questions]
    owner = np.array([i for i, entry in enumerate(entries) for _ in entry.questions])
    similarity = embedder.encode([q.text for q in asked]) @ embedder.encode(texts).T
    per_entry = np.full((len(asked), len(entries)), -np.inf, dtype=np.float32)
    for i in range(len(entries)):
        per_entry[:, i] = similarity[:, owner == i].max(axis=1)
    position = {entry.id: i for i, entry in enumerate(entries)}
    ranks, margins = [], []
    for row, question in zip(per_entry, asked, strict=True):
        right = position[str(question.faq_id)]
        ranks.append(1 + int((row > row[right]).sum()))
        margins.append(float(row[right] - np.delete(row, right).max()))
    n = max(len(asked), 1)
    return {
        "recall_at_1": round(sum(r == 1 for r in ranks) / n, 4),
        "mrr": round(sum(1 / r for r in ranks) / n, 4),
        "margin": round(sum(margins) / n, 4),
    }


@dataclass(frozen=True, slots=True)
class LoopProof:
    """Held-out scores before and after one round of traffic and retraining."""

    traffic: TrafficStats
    summary: RunSummary
    before: HeldOutScore
    after: HeldOutScore
    # ranking_scores of the embedder the engine searched with, before and after.
    ranking_before: dict[str, float]
    ranking_after: dict[str, float]


async def prove_loop(
    settings: Settings,
    traffic: Sequence[Question],
    held_out: Sequence[Question],
    *,
    what: tuple[str, ...],
    evaluation_log: Path,
    policy: CustomerPolicy | None = None,
    gate_queries: Path | None = None,
) -> LoopProof:
    """Traffic through one running engine, retraining, and a held-out score before and after.

    The held-out questions go to a second running engine with a log of its own (`evaluation_log`)
    so they never become training data; it is not restarted, so its score after retraining also
    shows that it picked up the promoted models. `gate_queries` (labelled, disjoint from both
    question sets) are scored by the embedder gate too.
    """
    entries = read_snapshot(settings.retrieval.kb_dir, settings.retrieval).entries
    evaluation = dataclasses.replace(
        settings, log=dataclasses.replace(settings.log, url="", path=evaluation_log)
    )
    async with open_engine(settings) as engine, open_engine(evaluation) as evaluator:
        before = await held_out_accuracy(evaluator, held_out)
        stats = await simulate_traffic(engine, traffic, {e.id: e for e in entries}, policy)
        options = RunOptions(log_db=settings.log, what=what, progress=False, queries=gate_queries)
        summary = await asyncio.to_thread(run_retraining, settings, options)
        after = await held_out_accuracy(evaluator, held_out)
    batch = settings.retrieval.batch_size
    ranking = [
        ranking_scores(
            load_embedder(score.versions["embedder"], batch_size=batch), entries, held_out
        )
        for score in (before, after)
    ]
    return LoopProof(stats, summary, before, after, ranking[0], ranking[1])


async def _ask(
    engine: Engine, conversation: int, text: str, stats: TrafficStats | None
) -> FinalReply:
    final = None
    async for event in engine.reply(conversation, text):
        if isinstance(event, FinalReply):
            final = event
    assert final is not None, "every reply ends with a FinalReply"
    if stats is not None:
        stats.versions.add(json.dumps(final.versions, sort_keys=True))
    return final
