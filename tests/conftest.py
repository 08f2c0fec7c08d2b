"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from retrieval import (
    Embedder,
    ImportConfig,
    KnowledgeBase,
    RetrievalConfig,
    import_paths,
    load_embedder,
)
from retrieval.evaluation import tune_and_store_threshold
from tests.fakes import HashEmbedder
from tests.services import (
    RedisNamespace,
    fresh_postgres_database,
    fresh_redis_namespace,
)

# One torch (OpenMP) thread per test process, inherited by the bots and commands tests start:
# on a shared 2-core runner a team of two keeps waiting on its descheduled second thread.
# Measured at load average 23: 3.0 s per single-query encode with two threads, 0.2 s with one.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    """The real packaged all-MiniLM-L6-v2, loaded once per test session."""
    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory: pytest.TempPathFactory, minilm: Embedder) -> KnowledgeBase:
    """The sample shop's knowledge base, imported once with the real embedder and tuned."""
    kb_dir: Path = tmp_path_factory.mktemp("sample") / "kb"
    config = RetrievalConfig(kb_dir=kb_dir)
    report = import_paths([EXAMPLES / "kb"], kb_dir, minilm, config, ImportConfig(), progress=False)
    assert not report.problems, report.problems
    tune_and_store_threshold(kb_dir, minilm, config, EXAMPLES / "queries.jsonl", keep=3)
    return KnowledgeBase(kb_dir, minilm, config)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this test (dropped afterwards)."""
    async for url in fresh_postgres_database():
        yield url


@pytest.fixture
async def redis_namespace() -> AsyncIterator[RedisNamespace]:
    """A Redis key prefix for this test (its keys deleted afterwards)."""
    async for namespace in fresh_redis_namespace():
        yield namespace
