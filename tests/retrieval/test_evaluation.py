"""Metrics and threshold tuning on hand-made search results."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval import (
    Embedder,
    FaqEntry,
    Hit,
    RetrievalConfig,
    SearchResult,
    evaluate_faq,
    read_queries,
    score,
    tune_threshold,
)
from retrieval.knowledge_base import ScoreWeights
from tests.conftest import EXAMPLES


def result(top_id: str, top_score: float, second: str = "other") -> SearchResult:
    hits = (
        Hit(FaqEntry(top_id, "q", "a"), top_score, "q"),
        Hit(FaqEntry(second, "q2", "a"), top_score - 0.1, "q2"),
    )
    return SearchResult("query", hits, top_score >= 0.5, 0.5, "v1")


def test_score_follows_the_definitions() -> None:
    results = [
        result("a", 0.9),  # right, accepted
        result("x", 0.8, second="b"),  # wrong at 1, right at 2, accepted
        result("c", 0.3),  # right but rejected
        result("d", 0.2),  # out of scope, rejected
        result("e", 0.7),  # out of scope, wrongly accepted
    ]
    gold = ["a", "b", "c", None, None]
    m = score(results, gold, 0.5, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert (m.n, m.recall_at_5) == (5, 1.0)
    assert m.recall_at_1 == pytest.approx(2 / 3, abs=1e-4)
    assert m.mrr == pytest.approx((1 + 0.5 + 1) / 3, abs=1e-4)
    assert m.in_scope_accuracy == pytest.approx(1 / 3, abs=1e-4)
    assert m.oos_recall == 0.5
    assert m.oos_precision == 0.5  # two rejections, one out of scope
    assert (m.threshold, m.p50_ms) == (0.5, 3.0)


def test_no_out_of_scope_queries_gives_null_oos_recall() -> None:
    m = score([result("a", 0.9)], ["a"], 0.5, [1.0])
    assert m.oos_recall is None and m.oos_precision is None


def test_tuned_threshold_separates_in_scope_from_out_of_scope() -> None:
    results = [result("a", 0.9), result("b", 0.8), result("c", 0.7), result("x", 0.4)]
    cut = tune_threshold(results, ["a", "b", "c", None])
    assert cut is not None and 0.4 < cut < 0.7
    assert tune_threshold(results[:3], ["a", "b", "c"]) is None


def test_read_queries_rejects_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"query": "hi", "faq_id": None}) + "\n{broken\n")
    with pytest.raises(ValueError, match="line 2"):
        read_queries(path)
    path.write_text(json.dumps({"query": "hi", "faq_id": 7}) + "\n")
    assert read_queries(path)[0].faq_id == "7"


def test_nearest_recall_is_the_recall_of_plain_scoring(tmp_path: Path, minilm: Embedder) -> None:
    faq, queries = EXAMPLES / "kb", EXAMPLES / "queries.jsonl"
    mixed = RetrievalConfig(kb_dir=tmp_path / "kb", centroid_weight=0.45, lexical_weight=0.3)
    compared = evaluate_faq(
        faq, queries, minilm, replace(mixed, calibrate=False), compare_nearest=True
    )
    plain = replace(mixed, centroid_weight=0.0, lexical_weight=0.0, calibrate=False)

    alone = evaluate_faq(faq, queries, minilm, plain)

    assert compared.weights == ScoreWeights(0.45, 0.3)
    assert compared.nearest_recall_at_1 == alone.metrics.recall_at_1
    assert alone.nearest_recall_at_1 is None  # only when asked for
