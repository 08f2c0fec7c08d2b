"""Approved drafts become a new knowledge-base version, through the gate.

The candidate is built in a copy of the live knowledge base (the importer's `edit_entries`),
then the live and the candidate knowledge bases answer the same held-out items: the labelled
queries, and the hand-overs kept out of drafting (`held_out`), labelled by what the operator
answered. Each item
is correct (answered from its entry, or handed over when out of scope) or wrong (answered from
another entry) for each; the candidate goes live only when the paired-bootstrap interval of the
correct share's difference lies above zero and the wrong share did not rise at that confidence.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from engine.log import LogTarget, handover_exchanges
from engine.settings import Settings
from retrieval.embedders import Embedder
from retrieval.entries import FaqEntry, normalize_text
from retrieval.evaluation import LabelledQuery
from retrieval.importer import edit_entries
from retrieval.knowledge_base import KnowledgeBase
from retrieval.store import current_version, read_snapshot
from training.drafts import (
    Draft,
    DraftConfig,
    answered_from,
    answered_questions,
    boilerplate,
    draft_entries,
    propose_drafts,
)
from training.gate import Difference, Verdict, judge_paired, paired_bootstrap


@dataclass(frozen=True, slots=True)
class GateItem:
    """A question the gate asks both knowledge bases, and what answers it.

    `faq_id` None: out of scope. `answer`: the answer text that also counts as right (a draft's
    operator answer, whatever id its entry gets).
    """

    query: str
    faq_id: str | None
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class KnowledgeOutcome:
    """What the gate decided about the approved drafts, and the version that went live."""

    verdict: Verdict
    differences: tuple[Difference, ...]
    applied: tuple[str, ...]
    kb_version: str | None
    drafts: tuple[Draft, ...]


def score_items(kb: KnowledgeBase, items: Sequence[GateItem]) -> tuple[list[float], list[float]]:
    """Per item: 1.0 when `kb` got it right (correct), 1.0 when it answered wrong (wrong)."""
    correct, wrong = [], []
    for item, result in zip(items, kb.search_batch([i.query for i in items]), strict=True):
        best = result.best
        answered = result.in_scope and best is not None
        right = (
            best is not None
            and answered
            and (
                best.entry.id == item.faq_id
                or (item.answer is not None and best.entry.answer == item.answer)
            )
        )
        if item.faq_id is None and item.answer is None:
            correct.append(float(not answered))
            wrong.append(float(answered))
        else:
            correct.append(float(right))
            wrong.append(float(answered and not right))
    return correct, wrong


def held_out(conversation_id: int, share: float) -> bool:
    """Whether a conversation's hand-over is kept for the gate rather than drafted from
    (the same answer every time, for any process)."""
    digest = hashlib.sha1(str(conversation_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") < share * 2**32


def gate_items(
    answered: Sequence[tuple[str, str, int]],
    drafts: Sequence[Draft],
    entries: Sequence[FaqEntry],
    queries: Sequence[LabelledQuery] = (),
) -> list[GateItem]:
    """The labelled queries about known entries, and held-out hand-overs labelled by what the
    operator answered: an entry's content (that entry), an approved draft's answer (that
    answer), anything else (still for a person: out of scope)."""
    known = {e.id for e in entries}
    items = [GateItem(q.query, q.faq_id) for q in queries if q.faq_id is None or q.faq_id in known]
    answers = {normalize_text(d.answer): d.answer for d in drafts if d.kind == "new"}
    common = boilerplate([*(said for _, said, _ in answered), *(e.answer for e in entries)])
    for question, said, _ in answered:
        entry = answered_from(said, entries, common)
        if entry is not None:
            items.append(GateItem(question, entry.id))
        else:
            items.append(GateItem(question, None, answers.get(normalize_text(said))))
    return items


def apply_drafts(
    settings: Settings,
    embedder: Embedder,
    drafts: Sequence[Draft],
    queries: Sequence[LabelledQuery] = (),
    held_out_answers: Sequence[tuple[str, str, int]] = (),
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    force: bool = False,
) -> KnowledgeOutcome:
    """Put the approved drafts not yet live through the gate, and live when it lets them.

    The gate asks the labelled `queries` and the `held_out_answers` (question, operator
    answer, conversation) of hand-overs no draft was learned from.

    `force` publishes whatever the gate says (the verdict is still reported). Returns the
    drafts with `kb_version` set on those that went live.
    """
    config = settings.retrieval
    kb_dir = config.kb_dir
    live = read_snapshot(kb_dir, config)
    todo = [d for d in drafts if d.status == "approved" and d.kb_version is None]
    if not todo:
        return KnowledgeOutcome(
            Verdict(False, "no approved drafts to apply"), (), (), None, tuple(drafts)
        )
    items = gate_items(held_out_answers, todo, live.entries, queries)
    if not items:
        raise ValueError(
            "nothing to gate on: give labelled queries or keep a share of hand-overs held out"
        )
    with tempfile.TemporaryDirectory(prefix="kb-candidate-") as tmp:
        candidate_dir = Path(tmp) / "kb"
        shutil.copytree(kb_dir, candidate_dir)
        edit_entries(
            candidate_dir,
            embedder,
            config,
            settings.importing,
            upsert=draft_entries(todo, live.entries),
        )
        old = score_items(KnowledgeBase(kb_dir, embedder, config), items)
        new = score_items(KnowledgeBase(candidate_dir, embedder, config), items)
    correct, wrong = (
        paired_bootstrap(name, before, after, resamples=resamples, confidence=confidence, seed=seed)
        for name, before, after in (("correct", old[0], new[0]), ("wrong", old[1], new[1]))
    )
    verdict = judge_paired(correct, [wrong])
    if not (verdict.promote or force):
        return KnowledgeOutcome(verdict, (correct, wrong), (), None, tuple(drafts))
    edit_entries(
        kb_dir, embedder, config, settings.importing, upsert=draft_entries(todo, live.entries)
    )
    version = current_version(kb_dir)
    done = {d.id for d in todo}
    out = tuple(replace(d, kb_version=version) if d.id in done else d for d in drafts)
    return KnowledgeOutcome(verdict, (correct, wrong), tuple(sorted(done)), version, out)


def propose_from_log(
    log: LogTarget,
    entries: Sequence[FaqEntry],
    embedder: Embedder,
    *,
    held_out_share: float = 0.2,
    config: DraftConfig | None = None,
) -> tuple[list[Draft], list[tuple[str, str, int]]]:
    """Drafts from the log's answered hand-overs, and the held-out ones the gate asks."""
    exchanges = list(handover_exchanges(log))
    kept = [e for e in exchanges if held_out(e.conversation_id, held_out_share)]
    drafts = propose_drafts(
        [e for e in exchanges if not held_out(e.conversation_id, held_out_share)],
        entries,
        embedder,
        config,
    )
    return drafts, answered_questions(kept)
