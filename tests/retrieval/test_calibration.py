"""Weights and threshold chosen at import from the knowledge base's own questions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from retrieval import ImportConfig, KnowledgeBase, RetrievalConfig, import_paths
from retrieval.calibration import (
    FOLDS,
    OUT_OF_SCOPE_MARGIN,
    PLAIN,
    calibrate,
    choose_threshold,
    choose_weights,
    gather_evidence,
    hold_out,
    off_topic_ceiling,
)
from retrieval.entries import FaqEntry
from retrieval.languages import detect_languages, unread_languages
from retrieval.store import set_threshold
from tests.fakes import HashEmbedder

TOPICS = {
    "returns": ["return an item", "send a product back", "return period", "refund a return"],
    "delivery": ["delivery time", "when will my parcel arrive", "shipping days", "track parcel"],
    "payment": ["payment methods", "pay with paypal", "pay by card", "gift card payment"],
    "account": ["delete my account", "change my password", "reset password", "close account"],
    "warranty": ["warranty length", "broken product repair", "guarantee claim", "repair cost"],
}


def faq(tmp_path: Path, *, alternatives: bool = True) -> Path:
    rows = [
        {
            "id": topic,
            "question": f"How does {questions[0]} work?",
            "answer": f"All about {topic}.",
            "alt_questions": [f"question about {q}" for q in questions[1:]] if alternatives else [],
        }
        for topic, questions in TOPICS.items()
    ]
    path = tmp_path / "faq.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_import(path: Path, kb_dir: Path, config: RetrievalConfig) -> KnowledgeBase:
    embedder = HashEmbedder()
    import_paths([path], kb_dir, embedder, config, ImportConfig(), progress=False)
    return KnowledgeBase(kb_dir, embedder, config)


def test_hold_out_takes_every_alternative_once_reproducibly_and_within_the_limit() -> None:
    row_entry = np.repeat(np.arange(4, dtype=np.int32), [1, 2, 6, 11])
    folds = hold_out(row_entry, limit=100)
    firsts = np.searchsorted(row_entry, np.arange(4))
    held = np.concatenate([h for h, _ in folds])
    assert len(folds) == FOLDS
    for fold, keep in folds:
        assert sorted([*fold, *keep]) == list(range(len(row_entry)))
        # A fifth of each entry's alternatives: none of none, one of five, two of ten, and
        # the one of one in one fold only.
        taken = np.bincount(row_entry[fold], minlength=4).tolist()
        assert taken in ([0, 0, 1, 2], [0, 1, 1, 2])
    assert not set(held) & set(firsts)  # an entry's main question always stays
    # Every alternative question is held out once.
    assert sorted(held) == sorted(set(range(len(row_entry))) - set(firsts))
    again = hold_out(row_entry, limit=100)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(again, folds, strict=True))
    # A small limit takes as few folds as hold it.
    (small,) = hold_out(row_entry, limit=2)
    assert len(small[0]) == 2
    assert len(np.concatenate([h for h, _ in hold_out(row_entry, limit=6)])) == 6
    assert hold_out(np.zeros(1, dtype=np.int32), limit=100) == []


def test_import_calibrates_the_threshold_from_the_knowledge_base(tmp_path: Path) -> None:
    kb = run_import(faq(tmp_path), tmp_path / "kb", RetrievalConfig(kb_dir=tmp_path / "kb"))
    meta = kb.snapshot.meta
    assert meta.threshold_source.startswith("calibrated on 15 held-out alternative questions")
    assert meta.threshold >= RetrievalConfig().default_threshold
    assert (meta.centroid_weight, meta.lexical_weight) is not None
    assert kb.search("question about a guarantee claim for my product").in_scope
    assert not kb.search("what is the capital of mongolia").in_scope


def test_without_alternatives_scoring_is_plain_nearest_question(tmp_path: Path) -> None:
    kb = run_import(
        faq(tmp_path, alternatives=False), tmp_path / "kb", RetrievalConfig(kb_dir=tmp_path / "kb")
    )
    meta = kb.snapshot.meta
    assert meta.threshold_source.endswith("no alternative questions to calibrate on")
    assert meta.threshold == RetrievalConfig().default_threshold
    assert (meta.centroid_weight, meta.lexical_weight) == (PLAIN.centroid, PLAIN.lexical)


def test_calibration_off_keeps_the_configured_threshold_and_weights(tmp_path: Path) -> None:
    config = RetrievalConfig(kb_dir=tmp_path / "kb", calibrate=False, default_threshold=0.42)
    meta = run_import(faq(tmp_path), tmp_path / "kb", config).snapshot.meta
    assert (meta.threshold, meta.threshold_source) == (0.42, "default")
    assert (meta.centroid_weight, meta.lexical_weight) == (None, None)


def test_a_threshold_tuned_on_labelled_queries_survives_a_reimport(tmp_path: Path) -> None:
    config = RetrievalConfig(kb_dir=tmp_path / "kb")
    path = faq(tmp_path)
    run_import(path, tmp_path / "kb", config)
    set_threshold(tmp_path / "kb", 0.61, "tuned on queries.jsonl (9 queries)", config, keep=3)
    rows = path.read_text(encoding="utf-8").replace("All about returns.", "Returns: 30 days.")
    path.write_text(rows, encoding="utf-8")
    meta = run_import(path, tmp_path / "kb", config).snapshot.meta
    assert (meta.threshold, meta.threshold_source) == (0.61, "tuned on queries.jsonl (9 queries)")


def test_calibrate_measures_the_configured_and_the_plain_weights(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    questions = [q for qs in TOPICS.values() for q in qs]
    row_entry = np.repeat(np.arange(len(TOPICS), dtype=np.int32), 4)
    entries = [FaqEntry(topic, qs[0], "answer", tuple(qs[1:])) for topic, qs in TOPICS.items()]
    found = calibrate(entries, row_entry, embedder.encode(questions), embedder, RetrievalConfig())
    assert found.held_out_recall is not None and found.plain_recall is not None
    assert 0.5 <= found.threshold < 1.0
    vectors = embedder.encode(questions)
    lower = calibrate(entries, row_entry, vectors, embedder, RetrievalConfig(default_threshold=0))
    assert 0.0 < lower.threshold <= found.threshold


def test_languages_of_a_knowledge_base() -> None:
    assert detect_languages(["How do I pay?", "Where is my parcel?"]) == {"en"}
    assert detect_languages(["花呗怎么还款", "借呗额度", "How do I pay?"]) == {"zh", "en"}
    assert detect_languages(["花呗怎么还款"] * 9 + ["PayPal?"]) == {"zh"}
    assert detect_languages([]) == {"en"}
    assert unread_languages("all-MiniLM-L6-v2", frozenset({"zh", "en"})) == {"zh"}
    assert unread_languages("all-MiniLM-L6-v2+int8", frozenset({"zh"})) == {"zh"}
    assert unread_languages("multilingual-e5-small", frozenset({"zh", "en"})) == set()
    assert unread_languages("/models/my-own", frozenset({"zh"})) == set()


def test_the_threshold_is_halfway_between_held_out_scores_within_a_margin_of_out_of_scope() -> None:
    embedder = HashEmbedder()
    questions = [q for qs in TOPICS.values() for q in qs]
    row_entry = np.repeat(np.arange(len(TOPICS), dtype=np.int32), 4)
    entries = [FaqEntry(topic, qs[0], "answer", tuple(qs[1:])) for topic, qs in TOPICS.items()]
    vectors = embedder.encode(questions)
    config = RetrievalConfig(default_threshold=0.0)
    evidence = gather_evidence(entries, row_entry, vectors, embedder, config)
    weights, _ = choose_weights(evidence, config)
    own, other = [], []
    for found, gold in zip(evidence.held, evidence.gold, strict=True):
        scores = found.scores(weights)
        if int(found.entries[int(np.argmax(scores))]) == gold:
            own.append(float(scores.max()))
            other.append(float(scores[found.entries != gold].max()))
    median = float(np.percentile(other, 50))
    halfway = (median + float(np.percentile(own, 25))) / 2
    expected = round(min(halfway, median + OUT_OF_SCOPE_MARGIN), 4)

    ceiling = off_topic_ceiling(entries, row_entry, vectors, embedder, config, weights)

    assert choose_threshold(evidence, weights, floor=0.0) == expected
    assert calibrate(entries, row_entry, vectors, embedder, config).threshold == min(
        expected, ceiling
    )


def test_tight_paraphrases_hold_the_threshold_a_margin_above_the_other_entries() -> None:
    # Each entry's alternatives are its own question with one word added: halfway to their
    # own score (near 1) would refuse customers who word it differently.
    embedder = HashEmbedder()
    entries = [
        FaqEntry(topic, qs[0], "answer", (f"{qs[0]} now", f"so {qs[0]}", f"{qs[0]} today"))
        for topic, qs in TOPICS.items()
    ]
    row_entry = np.repeat(np.arange(len(entries), dtype=np.int32), 4)
    vectors = embedder.encode([q for e in entries for q in e.questions])
    config = RetrievalConfig(default_threshold=0.0)
    evidence = gather_evidence(entries, row_entry, vectors, embedder, config)
    weights, _ = choose_weights(evidence, config)
    other = [
        float(f.scores(weights)[f.entries != gold].max())
        for f, gold in zip(evidence.held, evidence.gold, strict=True)
    ]
    median = float(np.percentile(other, 50))
    assert median + OUT_OF_SCOPE_MARGIN < 0.9

    assert choose_threshold(evidence, weights, floor=0.0) == round(median + OUT_OF_SCOPE_MARGIN, 4)
    # The configured default raises the base the margin is added to.
    floor = median + 0.1
    assert choose_threshold(evidence, weights, floor) == round(floor + OUT_OF_SCOPE_MARGIN, 4)


def test_far_from_every_off_topic_message_the_ceiling_holds_the_threshold_down() -> None:
    embedder = HashEmbedder(dim=4096)  # wide, so that no off-topic word shares a bucket
    words = ["zorblax", "quintrel", "vampex", "glorphin", "brindlewop"]
    # A shared word puts the other entries near, so the held-out evidence asks for more than
    # the off-topic messages (none shares a word with them) need.
    entries = [
        FaqEntry(w, f"plonk {w} {w}", "answer", (f"plonk {w}", f"plonk {w} {w} {w}", f"{w}!"))
        for w in words
    ]
    row_entry = np.repeat(np.arange(len(entries), dtype=np.int32), 4)
    vectors = embedder.encode([q for e in entries for q in e.questions])
    config = RetrievalConfig(default_threshold=0.0)
    evidence = gather_evidence(entries, row_entry, vectors, embedder, config)
    weights, _ = choose_weights(evidence, config)
    ceiling = off_topic_ceiling(entries, row_entry, vectors, embedder, config, weights)

    found = calibrate(entries, row_entry, vectors, embedder, config)

    assert ceiling < choose_threshold(evidence, weights, floor=0.0)
    assert found.threshold == ceiling
