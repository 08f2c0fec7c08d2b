"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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
from retrieval.locks import file_lock
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
# With parallel test processes (scripts/check.sh, CHECK_TEST_WORKERS; pytest-xdist), the files
# that start vLLM (in process, or `vllm serve`) run in one process: each engine starts once per
# run, and only one process holds vLLM's memory (about 2 GB per engine). xdist's own xdist_group
# mark is not used: pytest 9 ignores the node id suffix it relies on.
VLLM_TEST_FILES = {
    "tests/engine/test_generators.py",
    "tests/engine/test_openai.py",
    "tests/engine/test_pickup.py",
    "tests/engine/test_vllm.py",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's `loadscope` scheduling with each test its own unit, but the vLLM files one unit."""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class VllmTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return "vllm" if nodeid.split("::")[0] in VLLM_TEST_FILES else nodeid

    return VllmTogether(config, log)


def run_tmp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary folder shared by every process of this test run (xdist workers included)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    """The real packaged all-MiniLM-L6-v2, loaded once per test session."""
    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory: pytest.TempPathFactory, minilm: Embedder) -> KnowledgeBase:
    """The sample shop's knowledge base, imported once per run with the real embedder and tuned.

    The first process to ask builds it; the run's other processes wait for it and read it.
    """
    shared = run_tmp_dir(tmp_path_factory) / "sample"
    shared.mkdir(exist_ok=True)
    kb_dir = shared / "kb"
    config = RetrievalConfig(kb_dir=kb_dir)
    with file_lock(shared / ".lock"):
        if not (shared / "built").exists():
            report = import_paths(
                [EXAMPLES / "kb"], kb_dir, minilm, config, ImportConfig(), progress=False
            )
            assert not report.problems, report.problems
            tune_and_store_threshold(kb_dir, minilm, config, EXAMPLES / "queries.jsonl", keep=3)
            (shared / "built").touch()
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
