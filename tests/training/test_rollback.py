"""Rolling the embedder back re-embeds the knowledge base with the threshold tuned for it, and a
running engine follows it."""

from __future__ import annotations

import shutil
from pathlib import Path

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
from training.registry import ModelRegistry


def test_embedder_rollback_reembeds_the_knowledge_base(tmp_path: Path, minilm: Embedder) -> None:
    retrieval = RetrievalConfig(kb_dir=tmp_path / "kb")
    import_paths(
        [EXAMPLES / "kb"], retrieval.kb_dir, minilm, retrieval, ImportConfig(), progress=False
    )
    settings = Settings(retrieval=retrieval, training=TrainingConfig(models_dir=tmp_path / "m"))
    registry = ModelRegistry(settings.training.models_dir)
    copy = tmp_path / "minilm"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), copy)
    first, second = (registry.add("embedder", copy, {}) for _ in range(2))
    others = registry_embedders(settings.training.models_dir)
    kb = KnowledgeBase(retrieval.kb_dir, minilm, retrieval, other_embedders=others)
    # Each promotion re-embeds the knowledge base, then its threshold is tuned for the embedder.
    for version, tuned in ((first, 0.61), (second, 0.55)):
        registry.promote("embedder", version.version)
        reembed_knowledge_base(settings, load_embedder(str(version.path)))
        set_threshold(retrieval.kb_dir, tuned, f"tuned for {version.version}", retrieval, keep=3)
    assert kb.refresh() and kb.embedder.name == str(second.path.resolve())
    assert kb.threshold == 0.55

    done = roll_back(settings, "embedder")

    assert done.version.version == first.version
    assert kb.refresh() and kb.version == done.kb_version
    assert kb.embedder.name == str(first.path.resolve())
    assert kb.threshold == 0.61, "the threshold tuned for the restored embedder comes back"
    assert kb.snapshot.meta.threshold_source.startswith(f"tuned for {first.version}")
    assert "0.610 restored" in done.threshold_note
    assert kb.search("how long does delivery take?").in_scope


def test_embedder_rollback_tunes_the_threshold_on_queries(tmp_path: Path, minilm: Embedder) -> None:
    retrieval = RetrievalConfig(kb_dir=tmp_path / "kb")
    import_paths(
        [EXAMPLES / "kb"], retrieval.kb_dir, minilm, retrieval, ImportConfig(), progress=False
    )
    settings = Settings(retrieval=retrieval, training=TrainingConfig(models_dir=tmp_path / "m"))
    registry = ModelRegistry(settings.training.models_dir)
    copy = tmp_path / "minilm"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), copy)
    first, second = (registry.add("embedder", copy, {}) for _ in range(2))
    for version in (first, second):
        registry.promote("embedder", version.version)
        reembed_knowledge_base(settings, load_embedder(str(version.path)))
    # Nothing was tuned for the first embedder: without queries the note asks for them.
    set_threshold(retrieval.kb_dir, 0.99, "tuned for the second", retrieval, keep=3)

    done = roll_back(settings, "embedder", queries=EXAMPLES / "queries.jsonl")

    kb = KnowledgeBase(
        retrieval.kb_dir, minilm, retrieval, other_embedders=registry_embedders(tmp_path / "m")
    )
    assert kb.version == done.kb_version and kb.threshold != 0.99
    assert "re-tuned" in done.threshold_note
    assert "queries.jsonl" in kb.snapshot.meta.threshold_source
    assert kb.search("how long does delivery take?").in_scope
