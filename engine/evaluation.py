"""How well the whole engine answers: the right entry for in-scope questions, none otherwise."""

from __future__ import annotations

import inspect
import json
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.engine import Engine, EngineConfig, FinalReply
from engine.generators import GeneratorConfig, load_generator
from engine.log import LogConfig, open_store
from engine.sentiment import load_sentiment
from retrieval import KnowledgeBase, LabelledQuery


@asynccontextmanager
async def evaluation_engine(
    kb: KnowledgeBase, generator: GeneratorConfig, config: EngineConfig
) -> AsyncIterator[Engine]:
    """An engine over `kb` with the `generator` backend and `config`'s sentiment model, logging
    to a throw-away SQLite file, for the evaluation commands and studies.

    A generator that holds a model (vLLM's engine) is closed on the way out, so two evaluations
    in a row never keep two models resident.
    """
    with tempfile.TemporaryDirectory(prefix="eval-log-") as tmp:
        async with await open_store(LogConfig(path=Path(tmp) / "log.db")) as conversation_log:
            backend = load_generator(generator)
            try:
                sentiment = load_sentiment(config.sentiment, backend)
                yield Engine(kb, backend, sentiment, conversation_log, config)
            finally:
                await _close(backend)


async def _close(resource: object) -> None:
    """Call `resource.close()` when it has one, awaiting it when it is a coroutine."""
    close = getattr(resource, "close", None)
    if close is not None and (result := close()) is not None and inspect.isawaitable(result):
        await result


@dataclass(frozen=True, slots=True)
class AnswerMetrics:
    """The numbers `scripts/evaluate.py answers` reports."""

    n: int
    answer_correct: float | None
    handoff_recall: float | None
    # Questions answered from the right entry, at once or after the customer picked it from a
    # clarifying question, over all questions (the bot resolves no out-of-scope question).
    resolution_rate: float
    # Questions asked back, and questions answered from a wrong entry (out of scope included).
    asked_back: float
    answered_wrong: float
    p50_ms: float
    p95_ms: float


@dataclass(slots=True)
class Misses:
    """Why queries were not handled right: counts per kind of miss and a few queries of each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, query: str, keep: int = 3) -> None:
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < keep:
            shown.append(query)


def miss_kind(final: FinalReply, faq_id: str | None) -> str | None:
    """How the reply to a query labelled `faq_id` (None: out of scope) went wrong, or None."""
    if faq_id is None:
        return "out-of-scope query answered" if final.action == "answer" else None
    if final.action == "answer":
        return None if final.hits[0].entry.id == faq_id else "answered from another entry"
    if final.action == "clarify":
        return "asked back" if faq_id in {e.id for e in final.options} else "asked back, not listed"
    return f"handed over: {final.reason_code}"


async def evaluate_answers(
    engine: Engine,
    queries: Sequence[LabelledQuery],
    *,
    progress: bool = False,
    misses: Misses | None = None,
) -> AnswerMetrics:
    """Ask every query as the first message of a new conversation and score the replies.

    `answer_correct`: in-scope queries answered (action "answer") from the right entry.
    `handoff_recall`: out-of-scope queries not answered from any entry. When the engine asks
    back and lists the right entry, the customer picks it by number, and the question counts
    resolved if the answer then comes from it. `misses`, when given, collects why the others
    went wrong.
    """
    right = in_scope = declined = out_of_scope = resolved = asked = wrong = 0
    latencies = []
    for i, query in enumerate(tqdm(queries, desc="answering", unit="q", disable=not progress)):
        conversation = await engine.conversation("evaluation", f"q{i}", new=True)
        start = time.perf_counter()
        final = await _final(engine, conversation, query.query)
        latencies.append((time.perf_counter() - start) * 1000)
        if misses is not None and (kind := miss_kind(final, query.faq_id)) is not None:
            misses.add(kind, query.query)
        answered = final.action == "answer"
        asked += final.action == "clarify"
        if answered and final.hits[0].entry.id != query.faq_id:
            wrong += 1
        if query.faq_id is None:
            out_of_scope += 1
            declined += not answered
            continue
        in_scope += 1
        first_right = answered and final.hits[0].entry.id == query.faq_id
        right += first_right
        listed = [e.id for e in final.options]
        if final.action == "clarify" and query.faq_id in listed:
            pick = await _final(engine, conversation, str(listed.index(query.faq_id) + 1))
            first_right = pick.action == "answer" and pick.hits[0].entry.id == query.faq_id
        resolved += first_right
    lat = np.array(latencies or [0.0])
    n = len(queries)
    return AnswerMetrics(
        n=n,
        answer_correct=round(right / in_scope, 4) if in_scope else None,
        handoff_recall=round(declined / out_of_scope, 4) if out_of_scope else None,
        resolution_rate=round(resolved / n, 4) if n else 0.0,
        asked_back=round(asked / n, 4) if n else 0.0,
        answered_wrong=round(wrong / n, 4) if n else 0.0,
        p50_ms=round(float(np.percentile(lat, 50)), 2),
        p95_ms=round(float(np.percentile(lat, 95)), 2),
    )


async def _final(engine: Engine, conversation: int, text: str) -> FinalReply:
    final = None
    async for event in engine.reply(conversation, text):
        if isinstance(event, FinalReply):
            final = event
    assert final is not None, "a reply always ends with a FinalReply"
    return final


@dataclass(frozen=True, slots=True)
class Dialogue:
    """Customer messages in order, and the entry the last one should be answered from.

    `standalone` marks a last message that is a new question of its own, not a follow-up.
    """

    turns: tuple[str, ...]
    faq_id: str
    standalone: bool = False


@dataclass(frozen=True, slots=True)
class FollowUpMetrics:
    """How well the last message of each dialogue is resolved.

    `top1`: the best entry is the expected one; `answered`: the engine also answered from it
    (not a clarifying question). The `_followups` and `_standalone` variants split the dialogues.
    """

    n: int
    top1: float
    answered: float
    top1_followups: float | None
    top1_standalone: float | None
    p50_ms: float


def read_dialogues(path: Path) -> list[Dialogue]:
    """Dialogues from JSON Lines `{"turns": [...], "faq_id": ..., "standalone": false}`."""
    dialogues = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            turns = row.get("turns")
            if not turns or not all(isinstance(t, str) for t in turns) or not row.get("faq_id"):
                raise ValueError(f"{path}:{number}: needs non-empty 'turns' and a 'faq_id'")
            dialogues.append(Dialogue(tuple(turns), row["faq_id"], bool(row.get("standalone"))))
    return dialogues


async def evaluate_followups(
    engine: Engine, dialogues: Sequence[Dialogue], *, progress: bool = False
) -> FollowUpMetrics:
    """Play every dialogue as a new conversation and score the reply to its last message."""
    right: list[bool] = []
    answered = 0
    latencies = []
    for i, dialogue in enumerate(tqdm(dialogues, desc="dialogues", unit="d", disable=not progress)):
        conversation = await engine.conversation("evaluation", f"d{i}", new=True)
        final = None
        for text in dialogue.turns:
            start = time.perf_counter()
            async for event in engine.reply(conversation, text):
                if isinstance(event, FinalReply):
                    final = event
        latencies.append((time.perf_counter() - start) * 1000)
        assert final is not None, "a reply always ends with a FinalReply"
        top = final.hits[0].entry.id if final.hits else None
        right.append(top == dialogue.faq_id)
        answered += right[-1] and final.action == "answer"

    def share(picked: list[bool]) -> float | None:
        return round(sum(picked) / len(picked), 4) if picked else None

    n = len(dialogues)
    return FollowUpMetrics(
        n=n,
        top1=share(right) or 0.0,
        answered=round(answered / n, 4) if n else 0.0,
        top1_followups=share(
            [r for r, d in zip(right, dialogues, strict=True) if not d.standalone]
        ),
        top1_standalone=share([r for r, d in zip(right, dialogues, strict=True) if d.standalone]),
        p50_ms=round(float(np.percentile(np.array(latencies or [0.0]), 50)), 2),
    )
