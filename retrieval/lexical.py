"""Word-level TF-IDF over the indexed questions, blended with the dense scores.

Dense embeddings miss rare product words and codes ("ortho mattress", "EMI", an order number
format) that a customer types verbatim; a little lexical evidence fixes many of those without
hurting paraphrase matching. Han characters are single tokens, so bigrams cover Chinese words
without a segmenter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

_TOKENS = (
    r"(?u)[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"
)


class LexicalIndex:
    """Cosine similarity of TF-IDF word uni- and bigrams between queries and indexed rows."""

    def __init__(self, rows: Sequence[str]) -> None:
        # Imported here: scikit-learn (with the SciPy and pandas it pulls in) is most of a
        # command's start-up, and commands that never search (an unchanged import) skip it.
        from sklearn.feature_extraction.text import TfidfVectorizer

        self._vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, token_pattern=_TOKENS, dtype=np.float32
        )
        if any(r.strip() for r in rows):
            self._rows: sp.csr_matrix | None = self._vectorizer.fit_transform(rows).T.tocsr()
        else:
            self._rows = None

    def scores(self, queries: Sequence[str]) -> sp.csr_matrix:
        """A sparse (queries x rows) matrix of similarities; absent entries are zero."""
        import scipy.sparse as sp

        if self._rows is None:
            return sp.csr_matrix((len(queries), 0))
        return sp.csr_matrix(self._vectorizer.transform(queries) @ self._rows)
