"""Re-embed the live knowledge base with a new embedder, as a new version swapped in atomically."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.settings import Settings
from retrieval.embedders import Embedder, document_embedder
from retrieval.importer import row_key
from retrieval.index import build_index
from retrieval.store import import_lock, read_snapshot, write_snapshot

# Marks a threshold carried over from another embedder, not tuned for the one it is stored with.
BEFORE_REEMBEDDING = " (before re-embedding)"


def reembed_knowledge_base(
    settings: Settings, embedder: Embedder, *, threshold: tuple[float, str] | None = None
) -> str:
    """Write the live entries again with vectors from `embedder`; returns the new version name.

    The out-of-scope threshold is kept unless `threshold` (value, source) says otherwise; tune
    it again for the new embedder with scripts/import_faq.py --tune-queries.
    """
    kb_dir = settings.retrieval.kb_dir
    with import_lock(kb_dir):
        snapshot = read_snapshot(kb_dir, settings.retrieval)
        texts = [q for entry in snapshot.entries for q in entry.questions]
        vectors = np.asarray(document_embedder(embedder).encode(texts), dtype=np.float32)
        keys = np.array([row_key(embedder.name, t) for t in texts], dtype="S32")
        value, source = threshold or (
            snapshot.meta.threshold,
            f"{snapshot.meta.threshold_source}{BEFORE_REEMBEDDING}",
        )
        meta = replace(
            snapshot.meta,
            embedder=embedder.name,
            dim=embedder.dim,
            threshold=value,
            threshold_source=source,
        )
        written = write_snapshot(
            kb_dir,
            snapshot.entries,
            snapshot.row_entry,
            keys,
            build_index(vectors, settings.retrieval),
            meta,
            keep_versions=settings.importing.keep_versions,
        )
    return written.version
