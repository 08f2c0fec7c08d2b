"""FAISS indexes over question vectors: exact for small knowledge bases, HNSW for large ones."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from retrieval.config import RetrievalConfig
from retrieval.embedders import Vectors


def build_index(vectors: Vectors, config: RetrievalConfig) -> faiss.Index:
    """An inner-product index over normalised vectors (inner product = cosine similarity)."""
    assert vectors.dtype == np.float32 and vectors.ndim == 2, "vectors must be float32 rows"
    dim = vectors.shape[1]
    index: faiss.Index
    if len(vectors) >= config.hnsw_min_rows:
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(vectors)
    return index


def index_kind(index: faiss.Index) -> str:
    """A short name for the index type, for metadata and reports."""
    return "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat"


def write_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read_index(path: Path, config: RetrievalConfig) -> faiss.Index:
    """Read an index written by `write_index`, applying the configured search breadth."""
    index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = config.hnsw_ef_search
    return index
