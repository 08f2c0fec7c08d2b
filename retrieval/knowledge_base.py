"""Search over the live knowledge base: per-entry scores and an in-scope decision."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from retrieval.config import RetrievalConfig
from retrieval.embedders import Embedder, Vectors, configured_embedder
from retrieval.entries import FaqEntry
from retrieval.languages import MULTILINGUAL
from retrieval.lexical import LexicalIndex
from retrieval.store import KbMeta, Snapshot, current_version, read_snapshot

log = logging.getLogger(__name__)


class EmbedderMismatch(ValueError):
    """The knowledge base was embedded with another model than the one configured."""


@dataclass(frozen=True, slots=True)
class Hit:
    """An entry found for a query, with its aggregated score and best-matching question."""

    entry: FaqEntry
    score: float
    matched_question: str


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The top entries for a query and whether the best one is close enough to answer from."""

    query: str
    hits: tuple[Hit, ...]
    in_scope: bool
    threshold: float
    kb_version: str
    # The embedder the searched version was embedded with (and the query with).
    embedder: str = ""

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


class SearchState:
    """A snapshot with what search derives from it: centroids, row texts, lexical index."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder) -> None:
        self.snapshot = snapshot
        self.embedder = embedder
        self.vectors = snapshot.vectors()
        n = len(snapshot.entries)
        sums = np.zeros((n, snapshot.meta.dim), dtype=np.float32)
        np.add.at(sums, snapshot.row_entry, self.vectors)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        self.centroids: Vectors = sums / np.maximum(norms, 1e-12)
        # Rows are stored entry by entry, so each entry owns one contiguous slice of rows.
        assert np.all(np.diff(snapshot.row_entry) >= 0), "rows must be grouped by entry"
        self.row_start = np.searchsorted(snapshot.row_entry, np.arange(n + 1)).astype(np.int64)
        self.row_text = [q for entry in snapshot.entries for q in entry.questions]
        assert len(self.row_text) == len(snapshot.row_entry), "rows out of step with entries"
        self.lexical = LexicalIndex(self.row_text)
        self.by_id = {entry.id: entry for entry in snapshot.entries}


class KnowledgeBase:
    """The FAQ knowledge base a bot answers from; `refresh` picks up a newer import.

    `other_embedders` loads the embedder a version names when it is not the current one (a
    retrained embedder and the knowledge base re-embedded with it); it returns None for a name
    it does not vouch for, which is then refused as a mismatch.
    """

    def __init__(
        self,
        kb_dir: Path,
        embedder: Embedder,
        config: RetrievalConfig,
        *,
        other_embedders: Callable[[str], Embedder | None] | None = None,
        embedder_dropped: Callable[[], None] | None = None,
    ) -> None:
        self._kb_dir = kb_dir
        self._config = config
        self._other_embedders = other_embedders
        # Called after a reload switched embedders, once the old one is no longer referenced here.
        self._embedder_dropped = embedder_dropped
        self._lock = threading.Lock()
        self._state = self._load(embedder)

    def _load(self, embedder: Embedder) -> SearchState:
        snapshot = read_snapshot(self._kb_dir, self._config)
        wanted = snapshot.meta.embedder
        if wanted != embedder.name:
            other = self._other_embedders(wanted) if self._other_embedders else None
            if other is None and wanted == MULTILINGUAL:
                # The importer chose it for the entries' languages (retrieval/languages.py).
                other = configured_embedder(self._config, wanted)
            if other is None or other.name != wanted:
                raise EmbedderMismatch(
                    f"knowledge base {self._kb_dir} was embedded with {wanted!r} "
                    f"but the configured embedder is {embedder.name!r}; re-import it with "
                    "scripts/import_faq.py --replace"
                )
            log.info("knowledge base kb=%s switches embedder to %s", self._kb_dir, wanted)
            embedder = other
        return SearchState(snapshot, embedder)

    @property
    def version(self) -> str:
        return self._state.snapshot.meta.version

    @property
    def threshold(self) -> float:
        return self._state.snapshot.meta.threshold

    @property
    def snapshot(self) -> Snapshot:
        return self._state.snapshot

    @property
    def embedder(self) -> Embedder:
        """The embedder the live version was embedded with; queries are encoded with it."""
        return self._state.embedder

    def refresh(self) -> bool:
        """Switch to the live version if an import replaced it; True when it changed."""
        with self._lock:
            if current_version(self._kb_dir) == self.version:
                return False
            old = self._state.embedder
            self._state = self._load(old)
            switched = self._state.embedder is not old
            del old
            log.info("knowledge base reloaded kb=%s version=%s", self._kb_dir, self.version)
        if switched and self._embedder_dropped is not None:
            self._embedder_dropped()
        return True

    def entry(self, faq_id: str) -> FaqEntry | None:
        """The live entry with this id, or None when the current version has no such entry."""
        return self._state.by_id.get(faq_id)

    def search(self, query: str, k: int | None = None) -> SearchResult:
        """The top `k` entries for one query."""
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int | None = None) -> list[SearchResult]:
        """Search several queries with one batched embedding call."""
        state = self._state  # one consistent version even if refresh() swaps it meanwhile
        return self._search(state, queries, state.embedder.encode(queries), k)

    def search_vectors(
        self, queries: Sequence[str], vectors: Vectors, k: int | None = None
    ) -> list[SearchResult]:
        """Search with query vectors already computed by this knowledge base's embedder."""
        return self._search(self._state, queries, vectors, k)

    def _search(
        self, state: SearchState, queries: Sequence[str], vectors: Vectors, k: int | None
    ) -> list[SearchResult]:
        meta = state.snapshot.meta
        name = state.embedder.name
        k = k or self._config.top_k
        weights = score_weights(meta, self._config)
        results = []
        found_all = candidates(state, queries, vectors, self._config, weights)
        for query, found in zip(queries, found_all, strict=True):
            scores = found.scores(weights)
            order = np.argsort(-scores, kind="stable")[:k]
            hits = tuple(
                Hit(
                    state.snapshot.entries[int(found.entries[j])],
                    float(scores[j]),
                    state.row_text[int(found.rows[j])],
                )
                for j in order
            )
            in_scope = bool(hits) and hits[0].score >= meta.threshold
            results.append(SearchResult(query, hits, in_scope, meta.threshold, meta.version, name))
        return results


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """How an entry's score mixes its evidence; see RetrievalConfig for the formula."""

    centroid: float
    lexical: float


def score_weights(meta: KbMeta, config: RetrievalConfig) -> ScoreWeights:
    """The weights chosen for this version at import, else the configured ones."""
    return ScoreWeights(
        config.centroid_weight if meta.centroid_weight is None else meta.centroid_weight,
        config.lexical_weight if meta.lexical_weight is None else meta.lexical_weight,
    )


@dataclass(frozen=True, slots=True)
class Candidates:
    """The entries one query may match, each with its evidence: best question similarity
    (and that question's row), similarity to the entry's centroid, TF-IDF word similarity."""

    entries: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]
    dense: npt.NDArray[np.float32]
    centroid: npt.NDArray[np.float32]
    lexical: npt.NDArray[np.float32]

    def scores(self, weights: ScoreWeights) -> npt.NDArray[np.float32]:
        """Each candidate's score under `weights`, in candidate order."""
        w, b = weights.centroid, weights.lexical
        mixed = (1 - b) * ((1 - w) * self.dense + w * self.centroid) + b * self.lexical
        return mixed.astype(np.float32, copy=False)


def candidates(
    state: SearchState,
    queries: Sequence[str],
    vectors: Vectors,
    config: RetrievalConfig,
    weights: ScoreWeights | None = None,
) -> list[Candidates]:
    """The candidate entries of each query: the entries of its nearest `candidate_rows`
    questions, plus those its words point at (when lexical evidence is used)."""
    rows = min(config.candidate_rows, state.snapshot.index.ntotal)
    if rows == 0:
        return [_no_candidates() for _ in queries]
    sims, ids = state.snapshot.index.search(vectors, rows)
    use_lexical = weights is None or weights.lexical > 0
    lexical = state.lexical.scores(queries) if use_lexical else None
    found = []
    for qi in range(len(queries)):
        if lexical is not None:
            lo, hi = lexical.indptr[qi], lexical.indptr[qi + 1]
            lex_rows = (lexical.indices[lo:hi], lexical.data[lo:hi])
        else:
            lex_rows = None
        found.append(_candidates(state, vectors[qi], sims[qi], ids[qi], lex_rows, config))
    return found


def _no_candidates() -> Candidates:
    empty = np.zeros(0, dtype=np.float32)
    return Candidates(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), empty, empty, empty)


def _candidates(
    state: SearchState,
    vector: Vectors,
    sims: Vectors,
    ids: npt.NDArray[np.int64],
    lexical: tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]] | None,
    config: RetrievalConfig,
) -> Candidates:
    snap = state.snapshot
    best: dict[int, tuple[float, int]] = {}  # entry -> (best question similarity, its row)
    for sim, row in zip(sims, ids, strict=True):
        if row >= 0:
            best.setdefault(int(snap.row_entry[row]), (float(sim), int(row)))  # best first
    lex = np.zeros(len(snap.entries), dtype=np.float32)
    if lexical is not None and len(lexical[0]):
        rows, row_scores = lexical
        np.maximum.at(lex, snap.row_entry[rows], row_scores)
        # Entries the words point at but the dense search did not reach: score them exactly.
        wanted = config.lexical_candidates
        near = np.argpartition(-lex, wanted)[:wanted] if len(lex) > wanted else range(len(lex))
        for entry in near:
            entry = int(entry)
            if lex[entry] > 0 and entry not in best:
                lo, hi = state.row_start[entry], state.row_start[entry + 1]
                row_sims = state.vectors[lo:hi] @ vector
                best[entry] = (float(row_sims.max()), int(lo + row_sims.argmax()))
    cands = np.fromiter(best, dtype=np.int64, count=len(best))
    return Candidates(
        entries=cands,
        rows=np.fromiter((r for _, r in best.values()), dtype=np.int64, count=len(best)),
        dense=np.fromiter((s for s, _ in best.values()), dtype=np.float32, count=len(best)),
        centroid=(state.centroids[cands] @ vector).astype(np.float32),
        lexical=lex[cands],
    )
