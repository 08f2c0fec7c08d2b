"""The embedder gate on real rankings, and the threshold after re-embedding.

A deliberately bad embedder (hashed words, no meaning) is refused against the packaged MiniLM
on the sample shop's labelled questions; MiniLM against itself is a tie, "not enough
evidence"; re-embedding the knowledge base calibrates the threshold for the new vectors.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from engine.settings import Settings, TrainingConfig
from retrieval import Embedder, ImportConfig, RetrievalConfig, import_paths, load_embedder
from retrieval.calibration import calibrate
from retrieval.embedders import resolve_model
from retrieval.store import read_snapshot, set_threshold
from tests.conftest import EXAMPLES
from tests.fakes import HashEmbedder
from training.data import QueryPair
from training.kb import BEFORE_REEMBEDDING, reembed_knowledge_base
from training.loop import judge_embedders
from training.simulate import read_questions


def held_out_pairs() -> list[QueryPair]:
    return [
        QueryPair(f"q{i}", None, q.text, q.faq_id, "queries")
        for i, q in enumerate(read_questions(EXAMPLES / "queries.jsonl"))
        if q.faq_id is not None
    ]


def sample_entries(tmp_path: Path, embedder: Embedder) -> RetrievalConfig:
    config = RetrievalConfig(kb_dir=tmp_path / "kb")
    import_paths([EXAMPLES / "kb"], config.kb_dir, embedder, config, ImportConfig(), progress=False)
    return config


def test_a_deliberately_bad_embedder_is_refused(tmp_path: Path, minilm: Embedder) -> None:
    entries = read_snapshot(sample_entries(tmp_path, minilm).kb_dir, RetrievalConfig()).entries

    before, after, verdict = judge_embedders(
        minilm, HashEmbedder(dim=64), entries, held_out_pairs()
    )

    assert not verdict.promote
    assert verdict.reason.startswith("worse") and "kept the current embedder" in verdict.reason
    assert after["recall_at_1"] is not None and before["recall_at_1"] is not None
    assert after["recall_at_1"] < before["recall_at_1"]


def test_the_same_embedder_again_is_not_enough_evidence(tmp_path: Path, minilm: Embedder) -> None:
    entries = read_snapshot(sample_entries(tmp_path, minilm).kb_dir, RetrievalConfig()).entries

    before, after, verdict = judge_embedders(minilm, minilm, entries, held_out_pairs())

    assert before == after
    assert not verdict.promote and verdict.reason.startswith("not enough evidence")
    # An operator who accepts a loss of up to 0.05 on purpose gets the tie promoted.
    assert judge_embedders(minilm, minilm, entries, held_out_pairs(), tolerance=0.05)[2].promote


def test_reembedding_calibrates_the_threshold_again(tmp_path: Path, minilm: Embedder) -> None:
    config = sample_entries(tmp_path, minilm)
    set_threshold(config.kb_dir, 0.93, "tuned on old.jsonl (10 queries)", config, keep=3)
    copy = tmp_path / "retrained"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), copy)
    retrained = load_embedder(str(copy))
    settings = Settings(retrieval=config, training=TrainingConfig(models_dir=tmp_path / "m"))

    reembed_knowledge_base(settings, retrained)

    snapshot = read_snapshot(config.kb_dir, config)
    expected = calibrate(
        snapshot.entries, snapshot.row_entry, snapshot.vectors(), retrained, config
    )
    assert snapshot.meta.embedder == retrained.name
    assert snapshot.meta.threshold == expected.threshold != 0.93
    assert snapshot.meta.threshold_source.endswith("after re-embedding")
    # With calibration off the old threshold is carried, and marked as not fitted.
    off = replace(settings, retrieval=replace(config, calibrate=False))
    set_threshold(config.kb_dir, 0.93, "tuned on old.jsonl (10 queries)", config, keep=3)
    reembed_knowledge_base(off, minilm)
    carried = read_snapshot(config.kb_dir, config).meta
    assert carried.threshold == 0.93 and carried.threshold_source.endswith(BEFORE_REEMBEDDING)
