"""The sample shop's knowledge base, imported once with the real embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval import Embedder, ImportConfig, KnowledgeBase, RetrievalConfig, import_paths
from retrieval.evaluation import tune_and_store_threshold
from tests.conftest import EXAMPLES


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory: pytest.TempPathFactory, minilm: Embedder) -> KnowledgeBase:
    kb_dir: Path = tmp_path_factory.mktemp("sample") / "kb"
    config = RetrievalConfig(kb_dir=kb_dir)
    report = import_paths([EXAMPLES / "kb"], kb_dir, minilm, config, ImportConfig(), progress=False)
    assert not report.problems, report.problems
    tune_and_store_threshold(kb_dir, minilm, config, EXAMPLES / "queries.jsonl", keep=3)
    return KnowledgeBase(kb_dir, minilm, config)
