"""Draft knowledge from hand-overs: what operators answered that the knowledge base could not.

Questions the bot handed over and an operator answered are clustered (agglomerative, cosine
distance on the question and the answer together); a cluster whose answer is not a stock reply
becomes a draft entry (its most central question, the others as alternative questions, the
operators' answer). A question an operator answered with an existing entry's content becomes a
draft of new alternative questions for that entry. A person approves, edits or rejects each
draft (scripts/retrain.py review); drafts live in a JSON Lines file with their status.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal, cast, get_args

import numpy as np
import numpy.typing as npt

from engine.log import HandoverExchange
from engine.policy import asks_for_human
from retrieval.embedders import Embedder
from retrieval.entries import FaqEntry, derive_id, normalize_text

Status = Literal["pending", "approved", "rejected"]
STATUSES: tuple[str, ...] = get_args(Status)
DraftKind = Literal["new", "alternatives"]
# Approved drafts that make new entries get ids under this source: "learned/<question>".
LEARNED_SOURCE = "learned"

_PICK = re.compile(r"^\s*\d{1,2}\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Draft:
    """A proposed change to the knowledge base, waiting for a person's decision.

    `kind` "new": a new entry (question, alternatives, answer). "alternatives": new
    alternative questions for the existing entry `target`. `conversations` are the log's
    conversation ids the draft was learned from; `kb_version` the knowledge-base version that
    first carried it.
    """

    id: str
    kind: DraftKind
    question: str
    answer: str
    alt_questions: tuple[str, ...] = ()
    target: str | None = None
    status: Status = "pending"
    conversations: tuple[int, ...] = ()
    kb_version: str | None = None

    @property
    def questions(self) -> tuple[str, ...]:
        return (self.question, *self.alt_questions)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["alt_questions"] = list(self.alt_questions)
        data["conversations"] = list(self.conversations)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Draft:
        status = str(data.get("status", "pending"))
        if status not in STATUSES:
            raise ValueError(f"draft {data.get('id')}: status {status!r}; valid: {STATUSES}")
        kind = str(data.get("kind", "new"))
        if kind not in ("new", "alternatives"):
            raise ValueError(f"draft {data.get('id')}: kind {kind!r}; valid: new, alternatives")
        alts = data.get("alt_questions") or []
        conversations = data.get("conversations") or []
        assert isinstance(alts, list) and isinstance(conversations, list)
        target = data.get("target")
        version = data.get("kb_version")
        return cls(
            id=str(data["id"]),
            kind=cast(DraftKind, kind),
            question=str(data["question"]),
            answer=str(data.get("answer", "")),
            alt_questions=tuple(str(a) for a in alts),
            target=None if target is None else str(target),
            status=cast(Status, status),
            conversations=tuple(int(c) for c in conversations),
            kb_version=None if version is None else str(version),
        )


@dataclass(frozen=True, slots=True)
class DraftConfig:
    """How hand-overs are clustered into drafts."""

    # Cosine distance below which two (question, answer) pairs join one cluster (average link).
    distance: float = 0.35
    # A new entry needs at least this many distinct questions.
    min_questions: int = 2
    # An answer given to questions hardly more alike (mean cosine) than any two answered
    # questions are, by less than this, is a stock reply ("passed to the right team").
    stock_margin: float = 0.1
    # An operator answer this similar to an entry's answer (cosine) reuses that entry.
    reuse_similarity: float = 0.9


@dataclass(frozen=True, slots=True)
class _Answered:
    question: str
    answer: str
    conversation: int


def answered_questions(exchanges: Iterable[HandoverExchange]) -> list[tuple[str, str, int]]:
    """(question, operator answer, conversation id) per hand-over an operator answered.

    The question is the first customer message of the exchange that is neither a pick from
    a clarifying question ("2") nor a request for a person.
    """
    out = []
    for exchange in exchanges:
        answer = " ".join(t.text.strip() for t in exchange.answers if t.text.strip())
        question = next(
            (
                t.text.strip()
                for t in exchange.questions
                if t.text.strip() and not _PICK.match(t.text) and not asks_for_human(t.text)
            ),
            None,
        )
        if answer and question:
            out.append((question, answer, exchange.conversation_id))
    return out


def propose_drafts(
    exchanges: Iterable[HandoverExchange],
    entries: Sequence[FaqEntry],
    embedder: Embedder,
    config: DraftConfig | None = None,
) -> list[Draft]:
    """Drafts from the operators' answers to hand-overs (all pending)."""
    config = config or DraftConfig()
    rows = [_Answered(*row) for row in answered_questions(exchanges)]
    if not rows:
        return []
    questions = _unit(embedder.encode([r.question for r in rows]))
    answers = _unit(embedder.encode([r.answer for r in rows]))
    reused = _reused_entries(rows, answers, entries, embedder, config)
    drafts = _alternative_drafts(rows, reused, entries)
    fresh = [i for i in range(len(rows)) if i not in reused]
    if fresh:
        drafts += _new_entry_drafts(rows, fresh, questions, answers, config)
    return drafts


def boilerplate(texts: Iterable[str], *, least: int = 3) -> frozenset[str]:
    """Sentences (normalized) found in at least `least` distinct texts: greetings and
    sign-offs ("Thanks for reaching out!"), which say nothing about what was answered."""
    counts: Counter[str] = Counter()
    for text in {normalize_text(t) for t in texts}:
        counts.update(set(_sentences(text)))
    return frozenset(sentence for sentence, n in counts.items() if n >= least)


def answered_from(
    answer: str, entries: Sequence[FaqEntry], common: frozenset[str] = frozenset()
) -> FaqEntry | None:
    """The entry whose answer's first sentence the operator's `answer` quotes, if any;
    sentences in `common` (see `boilerplate`) are skipped on both sides."""
    said = " ".join(s for s in _sentences(normalize_text(answer)) if s not in common)
    for entry in entries:
        own = [s for s in _sentences(normalize_text(entry.answer)) if s not in common]
        if own and len(own[0]) >= 12 and own[0] in said:
            return entry
    return None


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def _reused_entries(
    rows: Sequence[_Answered],
    answers: npt.NDArray[np.float32],
    entries: Sequence[FaqEntry],
    embedder: Embedder,
    config: DraftConfig,
) -> dict[int, FaqEntry]:
    """Row → the entry whose answer the operator gave (its first sentence quoted, or close)."""
    with_answers = [e for e in entries if e.answer.strip()]
    if not with_answers:
        return {}
    similarity = answers @ _unit(embedder.encode([e.answer for e in with_answers])).T
    common = boilerplate([*(r.answer for r in rows), *(e.answer for e in with_answers)])
    out = {}
    for i, row in enumerate(rows):
        quoted = answered_from(row.answer, with_answers, common)
        best = int(np.argmax(similarity[i]))
        if quoted is not None:
            out[i] = quoted
        elif similarity[i, best] >= config.reuse_similarity:
            out[i] = with_answers[best]
    return out


def _alternative_drafts(
    rows: Sequence[_Answered], reused: Mapping[int, FaqEntry], entries: Sequence[FaqEntry]
) -> list[Draft]:
    by_entry: dict[str, list[int]] = defaultdict(list)
    for i, entry in reused.items():
        by_entry[entry.id].append(i)
    known = {e.id: e for e in entries}
    drafts = []
    for entry_id, picked in by_entry.items():
        entry = known[entry_id]
        have = {normalize_text(q) for q in entry.questions}
        new = _distinct(rows[i].question for i in picked if normalize_text(rows[i].question))
        new = tuple(q for q in new if normalize_text(q) not in have)
        if not new:
            continue
        drafts.append(
            Draft(
                id=_draft_id("alternatives", entry_id, new),
                kind="alternatives",
                question=entry.question,
                answer=entry.answer,
                alt_questions=new,
                target=entry_id,
                conversations=tuple(sorted({rows[i].conversation for i in picked})),
            )
        )
    return drafts


def _new_entry_drafts(
    rows: Sequence[_Answered],
    fresh: Sequence[int],
    questions: npt.NDArray[np.float32],
    answers: npt.NDArray[np.float32],
    config: DraftConfig,
) -> list[Draft]:
    pairs = _unit(np.hstack([questions[fresh], answers[fresh]]))
    labels = _clusters(pairs, config.distance)
    stock = _stock_replies([rows[i] for i in fresh], questions[fresh], config.stock_margin)
    members: dict[int, list[int]] = defaultdict(list)
    for position, label in enumerate(labels):
        members[int(label)].append(position)
    # Per answer: the cluster members given it, or an answer as close as a rewording.
    by_answer: dict[str, tuple[str, list[int]]] = {}
    for positions in members.values():
        picked = [fresh[p] for p in positions]
        answer = Counter(rows[i].answer for i in picked).most_common(1)[0][0]
        if normalize_text(answer) in stock:
            continue
        model = answers[next(i for i in picked if rows[i].answer == answer)]
        agree = [p for p in positions if answers[fresh[p]] @ model >= config.reuse_similarity]
        by_answer.setdefault(normalize_text(answer), (answer, []))[1].extend(agree)
    drafts = []
    for answer, positions in by_answer.values():
        picked = [fresh[p] for p in positions]
        centre = pairs[positions].mean(axis=0)
        order = np.argsort(-(pairs[positions] @ centre), kind="stable")
        distinct = _distinct(rows[picked[int(k)]].question for k in order)
        if len(distinct) < config.min_questions:
            continue
        drafts.append(
            Draft(
                id=_draft_id("new", answer, distinct),
                kind="new",
                question=distinct[0],
                answer=answer,
                alt_questions=distinct[1:],
                conversations=tuple(sorted({rows[i].conversation for i in picked})),
            )
        )
    return drafts


def _stock_replies(
    rows: Sequence[_Answered], questions: npt.NDArray[np.float32], margin: float
) -> set[str]:
    """Answers given to questions that are no more alike than any two questions are."""
    similarity = questions @ questions.T
    everyone = _mean_off_diagonal(similarity)
    by_answer: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_answer[normalize_text(row.answer)].append(i)
    return {
        answer
        for answer, picked in by_answer.items()
        if len(picked) >= 3
        and _mean_off_diagonal(similarity[np.ix_(picked, picked)]) < everyone + margin
    }


def _mean_off_diagonal(similarity: npt.NDArray[np.float32]) -> float:
    n = len(similarity)
    return float((similarity.sum() - np.trace(similarity)) / max(n * (n - 1), 1))


def _clusters(vectors: npt.NDArray[np.float32], distance: float) -> npt.NDArray[np.int64]:
    if len(vectors) == 1:
        return np.zeros(1, dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance
    )
    return np.asarray(model.fit_predict(vectors), dtype=np.int64)


def _unit(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.asarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def _distinct(texts: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out = []
    for text in texts:
        key = normalize_text(text)
        if key and key not in seen:
            seen.add(key)
            out.append(text)
    return tuple(out)


def _draft_id(kind: str, anchor: str, questions: Sequence[str]) -> str:
    payload = "\x1f".join([kind, normalize_text(anchor), *sorted(map(normalize_text, questions))])
    return "d-" + hashlib.sha1(payload.encode("utf-8")).hexdigest()[:10]


# The drafts file.


def read_drafts(path: Path) -> list[Draft]:
    """The drafts at `path` (JSON Lines), oldest first; none when the file does not exist."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [Draft.from_json(json.loads(line)) for line in fh if line.strip()]


def write_drafts(path: Path, drafts: Sequence[Draft]) -> None:
    """Replace the drafts file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for draft in drafts:
            fh.write(json.dumps(draft.to_json(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def merge_drafts(existing: Sequence[Draft], proposed: Sequence[Draft]) -> list[Draft]:
    """The existing drafts (their decisions kept) and the proposed ones not yet among them.

    A proposed draft is skipped when every one of its questions is already in a draft.
    """
    seen = {normalize_text(q) for d in existing for q in d.questions if d.kind == "new"}
    seen |= {normalize_text(q) for d in existing for q in d.alt_questions}
    ids = {d.id for d in existing}
    out = list(existing)
    for draft in proposed:
        asked = draft.questions if draft.kind == "new" else draft.alt_questions
        if draft.id in ids or all(normalize_text(q) in seen for q in asked):
            continue
        out.append(draft)
        ids.add(draft.id)
        seen |= {normalize_text(q) for q in asked}
    return out


def decide(
    drafts: Sequence[Draft],
    draft_id: str,
    status: Status,
    *,
    question: str | None = None,
    answer: str | None = None,
) -> list[Draft]:
    """The drafts with `draft_id` set to `status`, its question or answer edited when given."""
    if draft_id not in {d.id for d in drafts}:
        raise KeyError(f"no draft {draft_id!r}; list them with scripts/retrain.py review")
    out = []
    for draft in drafts:
        if draft.id == draft_id:
            draft = replace(
                draft,
                status=status,
                question=draft.question if question is None else question,
                answer=draft.answer if answer is None else answer,
            )
        out.append(draft)
    return out


def draft_entries(drafts: Iterable[Draft], entries: Sequence[FaqEntry]) -> list[FaqEntry]:
    """The entries the approved `drafts` add or change, ready for `edit_entries`."""
    current = {e.id: e for e in entries}
    out: dict[str, FaqEntry] = {}
    for draft in drafts:
        if draft.status != "approved":
            continue
        if draft.kind == "new":
            entry_id = derive_id(LEARNED_SOURCE, draft.question)
            out[entry_id] = FaqEntry(
                id=entry_id,
                question=draft.question,
                answer=draft.answer,
                alt_questions=draft.alt_questions,
                source=LEARNED_SOURCE,
                location=draft.id,
            )
            continue
        assert draft.target is not None, "an alternatives draft names its entry"
        entry = out.get(draft.target) or current.get(draft.target)
        if entry is None:
            raise KeyError(
                f"draft {draft.id}: entry {draft.target!r} is no longer in the knowledge base; "
                "reject the draft"
            )
        out[entry.id] = replace(entry, alt_questions=entry.alt_questions + draft.alt_questions)
    return list(out.values())
