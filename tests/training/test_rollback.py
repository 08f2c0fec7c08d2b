"""Rolling the embedder back re-embeds the knowledge base, and a running engine follows it."""

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
    for version in (first, second):
        registry.promote("embedder", version.version)
        reembed_knowledge_base(settings, load_embedder(str(version.path)))
    assert kb.refresh() and kb.embedder.name == str(second.path.resolve())

    restored, kb_version = roll_back(settings, "embedder")

    assert restored.version == first.version
    assert kb.refresh() and kb.version == kb_version
    assert kb.embedder.name == str(first.path.resolve())
    assert kb.search("how long does delivery take?").in_scope
