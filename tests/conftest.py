"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval import Embedder, load_embedder
from tests.fakes import HashEmbedder

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
