"""Rolling the embedder back re-embeds the knowledge base with the threshold tuned for it, and a
running engine follows it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.pickup import registry_embedders
from engine.settings import Settings, TrainingConfig
from retrieval import (
    Embedder,
    ImportConfig,
    KnowledgeBase,
    RetrievalConfig,
    import_paths,
    load_embedder,
    resolve_model,
    set_threshold,
)
from tests.conftest import EXAMPLES
from training.kb import reembed_knowledge_base
from training.loop import roll_back
from training.registry import ModelRegistry, ModelVersion


def promoted_twice(
    tmp_path: Path, minilm: Embedder, thresholds: tuple[float | None, float]
) -> tuple[Settings, ModelVersion, ModelVersion]:
    """A knowledge base re-embedded by two promoted embedders in turn, each threshold stored
    after its promotion (None: not tuned for that one)."""
    retrieval = RetrievalConfig(kb_dir=tmp_path / "kb")
    import_paths(
        [EXAMPLES / "kb"], retrieval.kb_dir, minilm, retrieval, ImportConfig(), progress=False
    )
    settings = Settings(retrieval=retrieval, training=TrainingConfig(models_dir=tmp_path / "m"))
    registry = ModelRegistry(settings.training.models_dir)
    copy = tmp_path / "minilm"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), copy)
    first, second = (registry.add("embedder", copy, {}) for _ in range(2))
    for version, tuned in zip((first, second), thresholds, strict=True):
        registry.promote("embedder", version.version)
        reembed_knowledge_base(settings, load_embedder(str(version.path)))
        if tuned is not None:
            source = f"tuned for {version.version}"
            set_threshold(retrieval.kb_dir, tuned, source, retrieval, keep=3)
    return settings, first, second


def live_kb(settings: Settings, minilm: Embedder) -> KnowledgeBase:
    others = registry_embedders(settings.training.models_dir)
    return KnowledgeBase(
        settings.retrieval.kb_dir, minilm, settings.retrieval, other_embedders=others
    )


def test_embedder_rollback_reembeds_the_knowledge_base(tmp_path: Path, minilm: Embedder) -> None:
    settings, first, second = promoted_twice(tmp_path, minilm, (0.61, 0.55))
    kb = live_kb(settings, minilm)
    assert kb.embedder.name == str(second.path.resolve()) and kb.threshold == 0.55

    done = roll_back(settings, "embedder")

    assert done.version.version == first.version
    assert kb.refresh() and kb.version == done.kb_version
    assert kb.embedder.name == str(first.path.resolve())
    assert kb.threshold == 0.61, "the threshold tuned for the restored embedder comes back"
    assert kb.snapshot.meta.threshold_source.startswith(f"tuned for {first.version}")
    assert "0.610 restored" in done.threshold_note
    assert kb.search("how long does delivery take?").in_scope


@pytest.mark.parametrize("with_queries", [True, False])
def test_without_a_threshold_for_the_restored_embedder_one_is_tuned_or_asked_for(
    tmp_path: Path, minilm: Embedder, with_queries: bool
) -> None:
    settings, first, _ = promoted_twice(tmp_path, minilm, (None, 0.99))
    queries = EXAMPLES / "queries.jsonl" if with_queries else None

    done = roll_back(settings, "embedder", queries=queries)

    kb = live_kb(settings, minilm)
    assert kb.version == done.kb_version and kb.embedder.name == str(first.path.resolve())
    if with_queries:
        assert kb.threshold != 0.99 and "re-tuned" in done.threshold_note
        assert "queries.jsonl" in kb.snapshot.meta.threshold_source
        assert kb.search("how long does delivery take?").in_scope
    else:
        # Not the threshold of the other embedder: one calibrated for the restored vectors.
        assert kb.threshold != 0.99 and "--queries" in done.threshold_note
        assert "after re-embedding" in kb.snapshot.meta.threshold_source
