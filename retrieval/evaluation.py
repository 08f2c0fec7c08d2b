"""Retrieval quality on labelled queries, and tuning of the out-of-scope threshold."""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retrieval.config import ImportConfig, RetrievalConfig
from retrieval.embedders import Embedder
from retrieval.importer import ImportReport, import_paths
from retrieval.knowledge_base import (
    KnowledgeBase,
    ScoreWeights,
    SearchResult,
    SearchState,
    candidates,
    score_weights,
)
from retrieval.store import set_threshold


@dataclass(frozen=True, slots=True)
class LabelledQuery:
    """A query and the id of the entry that answers it (None: out of scope)."""

    query: str
    faq_id: str | None


@dataclass(frozen=True, slots=True)
class RetrievalMetrics:
    """The numbers `scripts/evaluate.py retrieval` reports; see the README for definitions."""

    n: int
    recall_at_1: float | None
    recall_at_5: float | None
    mrr: float | None
    in_scope_accuracy: float | None
    oos_recall: float | None
    oos_precision: float | None
    threshold: float
    p50_ms: float
    p95_ms: float


def read_queries(path: Path) -> list[LabelledQuery]:
    """Labelled queries from JSON Lines `{"query", "faq_id"}`, with errors naming the line."""
    queries = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                query, faq_id = row["query"], row.get("faq_id")
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{path}: line {number}: expected {{'query', 'faq_id'}}: {exc}"
                ) from None
            if not isinstance(query, str) or not query.strip():
                raise ValueError(f"{path}: line {number}: empty query")
            queries.append(LabelledQuery(query, None if faq_id is None else str(faq_id)))
    if not queries:
        raise ValueError(f"{path}: no queries")
    return queries


def tune_threshold(results: Sequence[SearchResult], gold: Sequence[str | None]) -> float | None:
    """The score cut that maximises in-scope accuracy plus out-of-scope recall.

    Returns None when the queries hold no out-of-scope examples (nothing to tune against).
    The cut lies halfway between neighbouring top scores so it does not sit on a data point.
    """
    top = np.array([r.best.score if r.best else -1.0 for r in results])
    right = np.array(
        [r.best is not None and r.best.entry.id == g for r, g in zip(results, gold, strict=True)]
    )
    oos = np.array([g is None for g in gold])
    if not oos.any():
        return None
    cuts = np.unique(top)
    cuts = np.concatenate([[cuts[0] - 1e-3], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + 1e-3]])
    accepted = top[None, :] >= cuts[:, None]
    acc = (accepted & right[None, :])[:, ~oos].mean(axis=1) if (~oos).any() else 0.0
    rec = (~accepted)[:, oos].mean(axis=1)
    return float(cuts[int(np.argmax(acc + rec))])


def tune_kb_threshold(
    kb: KnowledgeBase, queries: Sequence[LabelledQuery], origin: Path
) -> tuple[float, str] | None:
    """A threshold tuned for `kb` on labelled queries, with a note of where it came from."""
    results = kb.search_batch([q.query for q in queries])
    tuned = tune_threshold(results, [q.faq_id for q in queries])
    if tuned is None:
        return None
    return tuned, f"tuned on {origin.name} ({len(queries)} queries)"


def search_all(
    kb: KnowledgeBase, queries: Iterable[LabelledQuery], *, progress: bool = False
) -> tuple[list[SearchResult], list[float]]:
    """Search queries one at a time (encoding included), as a customer's message would be."""
    results, latencies = [], []
    for q in tqdm(list(queries), desc="searching", unit="q", disable=not progress):
        start = time.perf_counter()
        results.append(kb.search(q.query, k=5))
        latencies.append((time.perf_counter() - start) * 1000)
    return results, latencies


def score(
    results: Sequence[SearchResult],
    gold: Sequence[str | None],
    threshold: float,
    latencies_ms: Sequence[float],
) -> RetrievalMetrics:
    """Metrics of search results against gold ids, with `threshold` deciding scope."""
    ranks, accepted_right, rejected, rejected_oos, oos_total = [], 0, 0, 0, 0
    for result, faq_id in zip(results, gold, strict=True):
        accepted = result.best is not None and result.best.score >= threshold
        if faq_id is None:
            oos_total += 1
        else:
            ids = [h.entry.id for h in result.hits]
            ranks.append(ids.index(faq_id) + 1 if faq_id in ids else None)
            accepted_right += accepted and ids[:1] == [faq_id]
        if not accepted:
            rejected += 1
            rejected_oos += faq_id is None
    n_in = len(ranks)

    def share(hits: float, total: int) -> float | None:
        return round(hits / total, 4) if total else None

    lat = np.array(latencies_ms) if latencies_ms else np.zeros(1)
    return RetrievalMetrics(
        n=len(results),
        recall_at_1=share(sum(r == 1 for r in ranks), n_in),
        recall_at_5=share(sum(r is not None and r <= 5 for r in ranks), n_in),
        mrr=share(sum(1 / r for r in ranks if r), n_in),
        in_scope_accuracy=share(accepted_right, n_in),
        oos_recall=share(rejected_oos, oos_total),
        oos_precision=share(rejected_oos, rejected),
        threshold=round(threshold, 4),
        p50_ms=round(float(np.percentile(lat, 50)), 2),
        p95_ms=round(float(np.percentile(lat, 95)), 2),
    )


@dataclass(frozen=True, slots=True)
class FaqEvaluation:
    """The metrics of one evaluation run and how its knowledge base was built."""

    metrics: RetrievalMetrics
    threshold_source: str
    import_report: ImportReport
    index: str
    # The embedder the knowledge base was built with: the importer may have chosen another.
    embedder: str
    # Recall@1 of plain nearest-question scoring on the same index, when asked for.
    nearest_recall_at_1: float | None = None
    weights: ScoreWeights | None = None


@contextlib.contextmanager
def evaluation_kb(
    faq: Path,
    embedder: Embedder,
    config: RetrievalConfig,
    *,
    tune_queries: Path | None = None,
    progress: bool = False,
) -> Iterator[tuple[KnowledgeBase, ImportReport]]:
    """A throw-away knowledge base from `faq`, its threshold tuned on `tune_queries` if given.

    Entries may have empty answers here: intent data sets have questions only.
    """
    tune = read_queries(tune_queries) if tune_queries else None
    with tempfile.TemporaryDirectory(prefix="eval-kb-") as tmp:
        kb_dir = Path(tmp)
        report = import_paths(
            [faq],
            kb_dir,
            embedder,
            config,
            ImportConfig(max_file_mb=512),
            replace=True,
            allow_empty_answers=True,
            progress=progress,
        )
        kb = KnowledgeBase(kb_dir, embedder, config)
        if tune is not None and tune_queries is not None:
            tuned = tune_kb_threshold(kb, tune, tune_queries)
            if tuned is not None:
                set_threshold(kb_dir, tuned[0], tuned[1], config, keep=2)
                kb.refresh()
        yield kb, report


def evaluate_faq(
    faq: Path,
    queries: Path,
    embedder: Embedder,
    config: RetrievalConfig,
    *,
    tune_queries: Path | None = None,
    progress: bool = False,
    compare_nearest: bool = False,
) -> FaqEvaluation:
    """Build a throw-away knowledge base from `faq`, tune the threshold, score `queries`;
    with `compare_nearest`, also the recall@1 of plain nearest-question scoring."""
    labelled = read_queries(queries)
    with evaluation_kb(faq, embedder, config, tune_queries=tune_queries, progress=progress) as (
        kb,
        report,
    ):
        results, latencies = search_all(kb, labelled, progress=progress)
        metrics = score(results, [q.faq_id for q in labelled], kb.threshold, latencies)
        meta = kb.snapshot.meta
        nearest = nearest_recall_at_1(kb, labelled, config) if compare_nearest else None
        return FaqEvaluation(
            metrics,
            meta.threshold_source,
            report,
            meta.index,
            meta.embedder,
            nearest,
            score_weights(meta, config),
        )


NEAREST = ScoreWeights(0.0, 0.0)


def nearest_recall_at_1(
    kb: KnowledgeBase, labelled: Sequence[LabelledQuery], config: RetrievalConfig
) -> float | None:
    """Recall@1 of the in-scope `labelled` queries when an entry scores its best matching
    question alone (no centroid, no lexical evidence): the baseline the scoring must not lose to."""
    in_scope = [q for q in labelled if q.faq_id is not None]
    if not in_scope:
        return None
    state = SearchState(kb.snapshot, kb.embedder)
    texts = [q.query for q in in_scope]
    found = candidates(state, texts, state.embedder.encode(texts), config, NEAREST)
    ids = [e.id for e in kb.snapshot.entries]
    hits = sum(
        len(f.entries) > 0 and ids[int(f.entries[int(np.argmax(f.scores(NEAREST)))])] == q.faq_id
        for f, q in zip(found, in_scope, strict=True)
    )
    return round(hits / len(in_scope), 4)


def tune_and_store_threshold(
    kb_dir: Path, embedder: Embedder, config: RetrievalConfig, queries: Path, *, keep: int
) -> tuple[float, str] | None:
    """Tune the live knowledge base's threshold on labelled queries and store it with it.

    Writes a new version only when the threshold changed; None when the queries hold no
    out-of-scope examples to tune against.
    """
    kb = KnowledgeBase(kb_dir, embedder, config)
    tuned = tune_kb_threshold(kb, read_queries(queries), queries)
    if tuned is not None and abs(tuned[0] - kb.threshold) > 1e-6:
        set_threshold(kb_dir, tuned[0], tuned[1], config, keep=keep)
    return tuned
