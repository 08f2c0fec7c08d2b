"""Settings of the knowledge base: where it lives, which embedder, how search scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RetrievalConfig:
    """How the knowledge base is built and searched; every field has a working default."""

    kb_dir: Path = Path("var/kb")
    # A name known to `retrieval.embedders` (resolved to a packaged copy) or a model directory.
    embedder: str = "all-MiniLM-L6-v2"
    # How a sentence-transformers embedder runs: "torch", "onnx" or "onnx-int8"
    # (retrieval.embedders.BACKENDS; multilingual-e5-small always runs on its own engine).
    backend: str = "torch"
    # Where the ONNX backends keep the files they export once per model (must be writable).
    onnx_dir: Path = Path("var/models/onnx")
    batch_size: int = 64
    # Threads the query encoder computes with (torch's thread team, or ONNX Runtime's
    # intra-op threads): N uses N. 0 is auto: where the engine serves (engine.runtime.open_engine,
    # retrieval.embedders.serving_threads) one fewer than the CPUs the process may use, at least
    # 1 and at most the library's own team (one per physical core, or OMP_NUM_THREADS), so the
    # event loop keeps a core; batch jobs (import, evaluation) keep the library's team. On 2
    # shared cores scripts/bench_bot.py --chats 64 --messages 8 --phases engine,load measured
    # the bot at 38-43 replies/s (21-26 ms CPU a reply) with both cores' team, 108-150 (6.5-6.7 ms)
    # with one thread (README, "Configuration").
    # torch's setting is per process, so the last embedder loaded with N > 0 sets it.
    # multilingual-e5-small runs on its own engine, which neither this nor `backend` sets.
    # A sentiment classifier's embedder runs with the same backend and threads.
    threads: int = 0
    top_k: int = 5
    # Nearest question rows read per query before scores are aggregated per entry.
    candidate_rows: int = 64
    # Entry score = (1 - w) * best matching question + w * similarity to the entry's centroid.
    centroid_weight: float = 0.3
    # Final score = (1 - l) * dense score + l * TF-IDF word similarity (0 turns it off).
    lexical_weight: float = 0.2
    # Entries with the most shared words that are scored even if dense search missed them.
    lexical_candidates: int = 10
    # Used when calibration is off and no threshold was tuned on labelled queries.
    default_threshold: float = 0.5
    # At import, choose the score weights and the threshold for the knowledge base from its own
    # held-out alternative questions (retrieval/calibration.py); weights and threshold then
    # come from the knowledge base, not from the fields above.
    calibrate: bool = True
    # At most this many alternative questions are held out to calibrate on.
    calibration_questions: int = 2000
    # Exact search below this many indexed questions, HNSW above (scripts/bench_retrieval.py).
    hnsw_min_rows: int = 20_000
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    hnsw_ef_construction: int = 80

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ValueError(f"[retrieval] threads must be 0 (auto) or more, got {self.threads}")


@dataclass(frozen=True, slots=True)
class ImportConfig:
    """Limits and shaping of imported documents."""

    max_file_mb: float = 25.0
    chunk_chars: int = 800
    keep_versions: int = 3
