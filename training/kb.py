"""Re-embed the live knowledge base with a new embedder, as a new version swapped in atomically."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.settings import Settings
from retrieval.calibration import calibrate
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

    Scores move with the embedder, so the out-of-scope threshold and the score weights are
    calibrated again for the new vectors (retrieval/calibration.py), unless `threshold` (value,
    source) is given; with `[retrieval] calibrate = false` the old threshold is carried, marked
    as such. Tune it on labelled queries with scripts/import_faq.py --tune-queries.
    """
    kb_dir = settings.retrieval.kb_dir
    with import_lock(kb_dir):
        snapshot = read_snapshot(kb_dir, settings.retrieval)
        texts = [q for entry in snapshot.entries for q in entry.questions]
        vectors = np.asarray(document_embedder(embedder).encode(texts), dtype=np.float32)
        keys = np.array([row_key(embedder.name, t) for t in texts], dtype="S32")
        weights = (snapshot.meta.centroid_weight, snapshot.meta.lexical_weight)
        if threshold is not None:
            value, source = threshold
        elif settings.retrieval.calibrate:
            found = calibrate(
                snapshot.entries, snapshot.row_entry, vectors, embedder, settings.retrieval
            )
            value, source = found.threshold, f"{found.source}, after re-embedding"
            weights = (found.weights.centroid, found.weights.lexical)
        else:
            value = snapshot.meta.threshold
            source = f"{snapshot.meta.threshold_source}{BEFORE_REEMBEDDING}"
        meta = replace(
            snapshot.meta,
            embedder=embedder.name,
            dim=embedder.dim,
            threshold=value,
            threshold_source=source,
            centroid_weight=weights[0],
            lexical_weight=weights[1],
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
