"""Proof that the loop learns from hand-overs: an incomplete FAQ, operators, drafts, the gate.

A share of a data set's entries is hidden from the starting knowledge base (the company's FAQ
is incomplete). Simulated customers ask questions of every entry through `Engine.reply`; a
scripted operator answers the hand-overs with the entries' answers, the hidden ones included
(`simulate.simulate_traffic`). One retrain follows: drafts proposed from the log, all approved as
they are, put through the importer and the gate. New customers then ask held-out questions of
every entry, before and after. A held-out question is resolved when it was answered from its
entry, or from a learned entry carrying the operator's answer to it; wrong when it was answered
from another one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import Engine, FinalReply
from engine.runtime import open_engine
from engine.settings import Settings
from retrieval.embedders import Embedder
from retrieval.entries import FaqEntry
from retrieval.evaluation import LabelledQuery
from retrieval.importer import edit_entries
from training.drafts import Draft, DraftConfig
from training.knowledge import KnowledgeOutcome, apply_drafts, propose_from_log
from training.simulate import (
    CustomerPolicy,
    Question,
    TrafficStats,
    operator_answer,
    simulate_traffic,
)


@dataclass(frozen=True, slots=True)
class Split:
    """Which entries the starting FAQ lacks, and who asks what."""

    visible: tuple[FaqEntry, ...]
    hidden: tuple[FaqEntry, ...]
    traffic: tuple[Question, ...]
    held_out: tuple[Question, ...]
    gate: tuple[Question, ...]


def with_answers(entries: Sequence[FaqEntry]) -> list[FaqEntry]:
    """Entries with an answer each: intent data sets have none, so one names the intent."""
    out = []
    for entry in entries:
        if entry.answer.strip():
            out.append(entry)
            continue
        topic = re.sub(r"[_\W]+", " ", entry.id).strip()
        out.append(dataclasses.replace(entry, answer=f"Here is our help on {topic}."))
    return out


def split(entries: Sequence[FaqEntry], questions: Sequence[Question], hide_share: float) -> Split:
    """Hide `hide_share` of the entries (spread over the file); per entry, the first half of
    its questions are traffic, the next 30% held out, the rest for the gate; out-of-scope
    questions alternate between traffic and the gate."""
    hidden_flags = [int((i + 1) * hide_share) > int(i * hide_share) for i in range(len(entries))]
    visible = tuple(e for e, h in zip(entries, hidden_flags, strict=True) if not h)
    hidden = tuple(e for e, h in zip(entries, hidden_flags, strict=True) if h)
    by_entry: dict[str | None, list[Question]] = {}
    for q in questions:
        by_entry.setdefault(q.faq_id, []).append(q)
    traffic: list[Question] = []
    held_out: list[Question] = []
    gate: list[Question] = []
    for faq_id, asked in by_entry.items():
        if faq_id is None:
            traffic += asked[0::2]
            gate += asked[1::2]
            continue
        n = len(asked)
        for position, q in enumerate(asked):
            share = position / n
            (traffic if share < 0.5 else held_out if share < 0.8 else gate).append(q)
    # Interleave entries so the traffic is not one intent after another.
    return Split(visible, hidden, _interleave(traffic), tuple(held_out), tuple(gate))


def _interleave(questions: Sequence[Question]) -> tuple[Question, ...]:
    groups: dict[str | None, list[Question]] = {}
    for q in questions:
        groups.setdefault(q.faq_id, []).append(q)
    out: list[Question] = []
    depth = max((len(g) for g in groups.values()), default=0)
    for i in range(depth):
        out += [g[i] for g in groups.values() if i < len(g)]
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CustomerScores:
    """Per held-out in-scope question: resolved (1.0/0.0) and answered wrong (1.0/0.0)."""

    resolved: tuple[float, ...]
    wrong: tuple[float, ...]

    @property
    def resolution(self) -> float:
        return round(sum(self.resolved) / max(len(self.resolved), 1), 4)

    @property
    def wrong_share(self) -> float:
        return round(sum(self.wrong) / max(len(self.wrong), 1), 4)


async def score_customers(
    engine: Engine,
    questions: Sequence[Question],
    answers: Mapping[str, str],
    *,
    prefix: str,
) -> CustomerScores:
    """New customers ask each in-scope question once; one picking the right option when asked
    back. `answers`: the answer text that counts as right per entry id (the operator's)."""
    resolved, wrong = [], []
    for number, question in enumerate(q for q in questions if q.faq_id is not None):
        conversation = await engine.conversation("held-out", f"{prefix}-{number}", new=True)
        final = await _ask(engine, conversation, question.text)
        expected = answers.get(str(question.faq_id))
        if final.action == "clarify":
            pick = [
                i
                for i, entry in enumerate(final.options)
                if entry.id == question.faq_id or entry.answer == expected
            ]
            if pick:
                final = await _ask(engine, conversation, str(pick[0] + 1))
        answered = final.action == "answer" and bool(final.hits)
        right = answered and (
            final.hits[0].entry.id == question.faq_id or final.hits[0].entry.answer == expected
        )
        resolved.append(float(right))
        wrong.append(float(answered and not right))
    return CustomerScores(tuple(resolved), tuple(wrong))


@dataclass(frozen=True, slots=True)
class HandoverProof:
    """Held-out customers before and after one retrain from the hand-overs."""

    split: Split
    traffic: TrafficStats
    drafts: tuple[Draft, ...]
    outcome: KnowledgeOutcome
    before: CustomerScores
    after: CustomerScores

    def summary(self) -> dict[str, object]:
        new = [d for d in self.drafts if d.kind == "new"]
        return {
            "entries": len(self.split.visible) + len(self.split.hidden),
            "hidden": len(self.split.hidden),
            "traffic": len(self.split.traffic),
            "held_out": len(self.before.resolved),
            "hand_overs": self.traffic.handed_over,
            "drafts_new": len(new),
            "drafts_alternatives": len(self.drafts) - len(new),
            "resolution_before": self.before.resolution,
            "resolution_after": self.after.resolution,
            "wrong_before": self.before.wrong_share,
            "wrong_after": self.after.wrong_share,
            "promoted": self.outcome.verdict.promote,
            "gate": self.outcome.verdict.reason,
            "kb_version": self.outcome.kb_version,
        }


async def prove_handover_loop(
    settings: Settings,
    embedder: Embedder,
    entries: Sequence[FaqEntry],
    questions: Sequence[Question],
    *,
    hide_share: float = 0.5,
    evaluation_log: Path,
    policy: CustomerPolicy | None = None,
    held_out_share: float = 0.2,
    draft_config: DraftConfig | None = None,
) -> HandoverProof:
    """The whole proof on an empty knowledge base at `settings.retrieval.kb_dir`."""
    entries = with_answers(entries)
    parts = split(entries, questions, hide_share)
    edit_entries(
        settings.retrieval.kb_dir,
        embedder,
        settings.retrieval,
        settings.importing,
        upsert=parts.visible,
    )
    # What the operator says about each entry is what counts as its right answer later.
    answers = {e.id: operator_answer(e) for e in entries}
    evaluation = dataclasses.replace(
        settings, log=dataclasses.replace(settings.log, url="", path=evaluation_log)
    )
    known = {e.id for e in parts.visible}
    gate = [
        LabelledQuery(q.text, q.faq_id) for q in parts.gate if q.faq_id is None or q.faq_id in known
    ]
    async with open_engine(settings) as engine, open_engine(evaluation) as evaluator:
        before = await score_customers(evaluator, parts.held_out, answers, prefix="before")
        stats = await simulate_traffic(engine, parts.traffic, {e.id: e for e in entries}, policy)
        drafts, held = propose_from_log(
            settings.log,
            parts.visible,
            embedder,
            held_out_share=held_out_share,
            config=draft_config,
        )
        approved = [dataclasses.replace(d, status="approved") for d in drafts]
        outcome = apply_drafts(settings, embedder, approved, gate, held)
        after = await score_customers(evaluator, parts.held_out, answers, prefix="after")
    return HandoverProof(parts, stats, tuple(approved), outcome, before, after)


async def _ask(engine: Engine, conversation: int, text: str) -> FinalReply:
    final = None
    async for event in engine.reply(conversation, text):
        if isinstance(event, FinalReply):
            final = event
    assert final is not None, "every reply ends with a FinalReply"
    return final
