"""Follow-up search: the previous question is embedded with a message only where it matters."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.memory import FollowUpSearch, Query, contextual_query, merge_follow_up
from retrieval import (
    Embedder,
    ImportConfig,
    KnowledgeBase,
    RetrievalConfig,
    SearchResult,
    import_paths,
)
from retrieval.embedders import CountingEmbedder
from retrieval.evaluation import tune_and_store_threshold
from tests.conftest import EXAMPLES

REPAIR_TIME = "warranty-repair-time"


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory, minilm: Embedder) -> Path:
    kb_dir: Path = tmp_path_factory.mktemp("memory") / "kb"
    config = RetrievalConfig(kb_dir=kb_dir)
    import_paths([EXAMPLES / "kb"], kb_dir, minilm, config, ImportConfig(), progress=False)
    tune_and_store_threshold(kb_dir, minilm, config, EXAMPLES / "queries.jsonl", keep=2)
    return kb_dir


@pytest.fixture
def counting(minilm: Embedder) -> CountingEmbedder:
    return CountingEmbedder(minilm)


@pytest.fixture
def kb(kb_dir: Path, counting: CountingEmbedder) -> KnowledgeBase:
    """The sample knowledge base, its queries embedded through `counting`."""
    return KnowledgeBase(kb_dir, counting, RetrievalConfig(kb_dir=kb_dir))


def ids(result: SearchResult) -> list[str]:
    return [h.entry.id for h in result.hits]


def test_a_standalone_question_with_a_pronoun_costs_one_sentence(
    kb: KnowledgeBase, counting: CountingEmbedder
) -> None:
    previous = "how long does delivery take?"
    text = "can i return earbuds if i already opened them"
    assert contextual_query(text, [previous]) is not None  # "them": a follow-up candidate
    search = FollowUpSearch(kb)
    search.search([Query(previous)])
    counting.sentences = counting.calls = 0

    (result,) = search.search([Query(text, previous)])

    assert (counting.calls, counting.sentences) == (1, 1)
    assert ids(result)[0] == kb.search(text).hits[0].entry.id == "returns-non-returnable"
    assert result.in_scope


def test_a_follow_up_that_changes_the_best_entry_is_searched_joined(
    kb: KnowledgeBase, counting: CountingEmbedder
) -> None:
    previous = "how long does a warranty repair take?"
    text = "and if it can't be repaired?"
    joined = contextual_query(text, [previous])
    assert joined is not None
    own = kb.search(text)
    assert own.hits[0].entry.id != REPAIR_TIME  # alone it finds another entry
    search = FollowUpSearch(kb)
    search.search([Query(previous)])
    counting.sentences = counting.calls = 0

    (result,) = search.search([Query(text, previous)])

    # The message, then the joined text once the estimate moved the best entry.
    assert (counting.calls, counting.sentences) == (2, 2)
    exact = merge_follow_up(own, kb.search(joined))
    assert ids(result) == ids(exact) and ids(result)[0] == REPAIR_TIME
    assert [h.score for h in result.hits] == pytest.approx([h.score for h in exact.hits], abs=1e-5)


def test_the_estimate_carries_a_short_follow_up_into_scope(
    kb: KnowledgeBase, counting: CountingEmbedder
) -> None:
    previous = "which countries do you deliver to?"
    text = "what about Switzerland?"
    own = kb.search(text)
    assert not own.in_scope  # too little to go on by itself
    search = FollowUpSearch(kb)
    search.search([Query(previous)])
    counting.sentences = 0

    (result,) = search.search([Query(text, previous)])

    assert counting.sentences == 1
    assert result.in_scope
    assert ids(result)[0] == "orders-and-delivery/which-countries-do-you-deliver-to"


def test_a_previous_question_not_remembered_is_embedded_in_the_same_call(
    kb: KnowledgeBase, counting: CountingEmbedder
) -> None:
    # After a restart the conversation's earlier question was never searched here.
    search = FollowUpSearch(kb, remembered=2)
    queries = [
        Query("what about Switzerland?", "which countries do you deliver to?"),
        Query("what about earbuds?", "which items can't be returned?"),
        Query("do you take paypal"),
    ]
    counting.sentences = counting.calls = 0

    results = search.search(queries)

    assert counting.calls == 1 and counting.sentences == 5
    assert [ids(r)[0] for r in results] == [
        "orders-and-delivery/which-countries-do-you-deliver-to",
        "returns-non-returnable",
        "help-centre-payments/which-payment-methods-do-you-accept",
    ]
    # Only the last two texts embedded are still remembered: the next follow-up on the
    # first previous question embeds it again, alongside the message.
    counting.sentences = 0
    search.search([Query("and Norway?", "which countries do you deliver to?")])
    assert counting.sentences == 2


def test_plain_queries_match_the_knowledge_base_search(
    kb: KnowledgeBase, counting: CountingEmbedder
) -> None:
    texts = ["do you take paypal", "tell me a joke", "how long do i have to send stuff back"]
    results = FollowUpSearch(kb).search([Query(t) for t in texts])
    for text, result in zip(texts, results, strict=True):
        alone = kb.search(text)
        assert ids(result) == ids(alone) and result.in_scope == alone.in_scope
