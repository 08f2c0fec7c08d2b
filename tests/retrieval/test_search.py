"""Search over the sample shop's knowledge base with the real packaged model."""

from __future__ import annotations

import pytest

from retrieval import KnowledgeBase, read_queries, score, search_all
from tests.conftest import EXAMPLES


def test_sample_kb_holds_every_file(sample_kb: KnowledgeBase) -> None:
    sources = {e.source for e in sample_kb.snapshot.entries}
    assert sources == {
        "orders-and-delivery.md",
        "returns-refunds.csv",
        "help-centre-payments.html",
        "warranty.jsonl",
    }
    assert len(sample_kb.snapshot.entries) >= 40
    assert sample_kb.snapshot.meta.threshold_source.startswith("tuned on queries.jsonl")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "ordered the wrong lamp, how do I cancel it",
            "orders-and-delivery/how-do-i-cancel-my-order",
        ),
        ("when will my money come back after returning", "refunds-how-long"),
        ("do you take paypal", "help-centre-payments/which-payment-methods-do-you-accept"),
    ],
)
def test_customer_phrasings_find_the_right_entry(
    sample_kb: KnowledgeBase, query: str, expected: str
) -> None:
    result = sample_kb.search(query)
    assert result.hits[0].entry.id == expected, [(h.entry.id, h.score) for h in result.hits]


def test_confident_matches_are_in_scope(sample_kb: KnowledgeBase) -> None:
    for query in ("how do I cancel my order", "how long does a refund take"):
        assert sample_kb.search(query).in_scope, query


@pytest.mark.parametrize(
    "query", ["what's the weather in Paris tomorrow", "tell me a joke", "best lasagne recipe"]
)
def test_unrelated_questions_are_out_of_scope(sample_kb: KnowledgeBase, query: str) -> None:
    result = sample_kb.search(query)
    assert not result.in_scope, (result.hits[0].entry.id, result.hits[0].score, result.threshold)
    assert result.hits  # the nearest entries are still reported, just not accepted


def test_sample_queries_meet_a_quality_floor(sample_kb: KnowledgeBase) -> None:
    queries = read_queries(EXAMPLES / "queries.jsonl")
    results, latencies = search_all(sample_kb, queries)
    metrics = score(results, [q.faq_id for q in queries], sample_kb.threshold, latencies)
    assert metrics.recall_at_5 is not None and metrics.recall_at_5 >= 0.9
    assert metrics.recall_at_1 is not None and metrics.recall_at_1 >= 0.75
    assert metrics.oos_recall is not None and metrics.oos_recall >= 0.7


def test_hits_are_sorted_unique_and_explain_the_match(sample_kb: KnowledgeBase) -> None:
    result = sample_kb.search("how long is the warranty", k=5)
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True) and len(result.hits) == 5
    assert len({h.entry.id for h in result.hits}) == 5
    assert all(h.matched_question in h.entry.questions for h in result.hits)


def test_batch_search_equals_single_search(sample_kb: KnowledgeBase) -> None:
    queries = ["can I pay with klarna", "my parcel is broken", "reset password"]
    batch = sample_kb.search_batch(queries)
    for query, result in zip(queries, batch, strict=True):
        single = sample_kb.search(query)
        assert [h.entry.id for h in single.hits] == [h.entry.id for h in result.hits]
        assert single.hits[0].score == pytest.approx(result.hits[0].score, abs=1e-5)
