"""The knowledge base: document import, embeddings, FAISS search and its evaluation."""

from retrieval.config import ImportConfig, RetrievalConfig
from retrieval.embedders import (
    BACKENDS,
    EMBEDDERS,
    PACKAGED_MODELS,
    E5Embedder,
    Embedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    configured_embedder,
    load_embedder,
    resolve_model,
)
from retrieval.entries import FaqEntry
from retrieval.evaluation import (
    FaqEvaluation,
    LabelledQuery,
    RetrievalMetrics,
    evaluate_faq,
    evaluation_kb,
    read_queries,
    score,
    search_all,
    tune_and_store_threshold,
    tune_kb_threshold,
    tune_threshold,
)
from retrieval.importer import ImportReport, NothingToImport, import_paths
from retrieval.knowledge_base import EmbedderMismatch, Hit, KnowledgeBase, SearchResult
from retrieval.loaders import LoadError, Problem
from retrieval.store import ImportBusy, IndexMissing, KbMeta, current_version, set_threshold

__all__ = [
    "BACKENDS",
    "EMBEDDERS",
    "PACKAGED_MODELS",
    "E5Embedder",
    "Embedder",
    "EmbedderMismatch",
    "FaqEntry",
    "FaqEvaluation",
    "Hit",
    "ImportBusy",
    "ImportConfig",
    "ImportReport",
    "IndexMissing",
    "KbMeta",
    "KnowledgeBase",
    "LabelledQuery",
    "LoadError",
    "NothingToImport",
    "OnnxEmbedder",
    "Problem",
    "RetrievalConfig",
    "RetrievalMetrics",
    "SearchResult",
    "SentenceTransformerEmbedder",
    "configured_embedder",
    "current_version",
    "evaluate_faq",
    "evaluation_kb",
    "import_paths",
    "load_embedder",
    "read_queries",
    "resolve_model",
    "score",
    "search_all",
    "set_threshold",
    "tune_and_store_threshold",
    "tune_kb_threshold",
    "tune_threshold",
]
