"""How well the whole engine answers: the right entry for in-scope questions, none otherwise."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from engine.engine import Engine, FinalReply
from retrieval import LabelledQuery


@dataclass(frozen=True, slots=True)
class AnswerMetrics:
    """The numbers `scripts/evaluate.py answers` reports."""

    n: int
    answer_correct: float | None
    handoff_recall: float | None
    p50_ms: float
    p95_ms: float


async def evaluate_answers(
    engine: Engine, queries: Sequence[LabelledQuery], *, progress: bool = False
) -> AnswerMetrics:
    """Ask every query as the first message of a new conversation and score the replies.

    `answer_correct`: in-scope queries answered (action "answer") from the right entry.
    `handoff_recall`: out-of-scope queries not answered from any entry.
    """
    right = in_scope = declined = out_of_scope = 0
    latencies = []
    for i, query in enumerate(tqdm(queries, desc="answering", unit="q", disable=not progress)):
        conversation = await engine.conversation("evaluation", f"q{i}", new=True)
        start = time.perf_counter()
        final = None
        async for event in engine.reply(conversation, query.query):
            if isinstance(event, FinalReply):
                final = event
        latencies.append((time.perf_counter() - start) * 1000)
        assert final is not None, "a reply always ends with a FinalReply"
        answered = final.action == "answer"
        if query.faq_id is None:
            out_of_scope += 1
            declined += not answered
        else:
            in_scope += 1
            right += answered and final.hits[0].entry.id == query.faq_id
    lat = np.array(latencies or [0.0])
    return AnswerMetrics(
        n=len(queries),
        answer_correct=round(right / in_scope, 4) if in_scope else None,
        handoff_recall=round(declined / out_of_scope, 4) if out_of_scope else None,
        p50_ms=round(float(np.percentile(lat, 50)), 2),
        p95_ms=round(float(np.percentile(lat, 95)), 2),
    )
