"""A web server over the sample knowledge base, embedded with the hash fake (HTTP is the point)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval import ImportConfig, RetrievalConfig, import_paths
from tests.conftest import EXAMPLES
from tests.fakes import HashEmbedder
from tests.web.server import WebServer, serve_web

HashKb = tuple[Path, HashEmbedder]


@pytest.fixture
def hash_kb(tmp_path: Path) -> HashKb:
    """The sample shop's entries in a fresh knowledge base, embedded with the hash fake."""
    embedder = HashEmbedder()
    kb_dir = tmp_path / "kb"
    report = import_paths(
        [EXAMPLES / "kb"],
        kb_dir,
        embedder,
        RetrievalConfig(kb_dir=kb_dir),
        ImportConfig(),
        progress=False,
    )
    assert not report.problems, report.problems
    return kb_dir, embedder


@pytest.fixture
def web(tmp_path: Path, hash_kb: HashKb) -> Iterator[WebServer]:
    kb_dir, embedder = hash_kb
    with serve_web(tmp_path, kb_dir, embedder) as server:
        yield server
