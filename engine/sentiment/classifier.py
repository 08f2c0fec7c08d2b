"""A trained sentiment model: logistic regression on sentence embeddings and lexicon cues.

Saved as plain numpy arrays plus JSON metadata (no pickle), so loading runs no stored code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from engine.sentiment.base import LABELS, Label, Sentiment
from engine.sentiment.evaluation import LabelledText, classification_metrics
from engine.sentiment.lexicon import SIGNAL_WEIGHTS, LexiconSentiment, detect_signals

if TYPE_CHECKING:
    from retrieval.config import RetrievalConfig
    from retrieval.embedders import Embedder

log = logging.getLogger(__name__)

Matrix = npt.NDArray[np.float64]

FORMAT = "supportbot-sentiment-lr/1"
_META = "meta.json"
_COEF = "coef.npy"
_INTERCEPT = "intercept.npy"
# The cue flags a classifier's features hold. Cues added to the lexicon later ("anger") are not
# features: classifiers saved before them keep loading.
_SIGNALS = tuple(s for s in SIGNAL_WEIGHTS if s != "anger")


class ClassifierSentiment:
    """Scores messages with a linear model over embedder vectors, trained on labelled messages.

    With `lexicon_features` the lexicon's score and cue flags are appended to each vector: on
    airline tweets that measured slightly better than the embedding alone.
    """

    def __init__(
        self,
        embedder: Embedder,
        coef: Matrix,
        intercept: Matrix,
        labels: Sequence[Label],
        *,
        lexicon_features: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        width = embedder.dim + (1 + len(_SIGNALS) if lexicon_features else 0)
        rows = 1 if len(labels) == 2 else len(labels)
        if coef.shape != (rows, width) or intercept.shape != (rows,):
            raise ValueError(
                f"classifier weights {coef.shape}/{intercept.shape} do not fit {len(labels)} "
                f"labels and {width} features of embedder {embedder.name!r}; retrain it"
            )
        self._embedder = embedder
        self._coef = coef
        self._intercept = intercept
        self._labels: tuple[Label, ...] = tuple(labels)
        self._lexicon = LexiconSentiment() if lexicon_features else None
        self.metadata: dict[str, Any] = dict(metadata or {})

    @property
    def name(self) -> str:
        digest = str(self.metadata.get("data_sha256", "untracked"))[:10]
        return f"classifier-{self._embedder.name}-{digest}"

    @property
    def labels(self) -> tuple[Label, ...]:
        """The labels the model was trained on, in the order of its weights."""
        return self._labels

    def score(self, text: str) -> Sentiment:
        return self.score_batch([text])[0]

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        results: list[Sentiment | None] = [None] * len(texts)
        todo = [i for i, text in enumerate(texts) if text.strip()]
        probabilities = self.probabilities([texts[i] for i in todo])
        for i, probs in zip(todo, probabilities, strict=True):
            by_label = dict(zip(self._labels, probs.tolist(), strict=True))
            value = by_label.get("positive", 0.0) - by_label.get("negative", 0.0)
            best = self._labels[int(np.argmax(probs))]
            signals = detect_signals(texts[i])
            results[i] = Sentiment(best, round(max(-1.0, min(1.0, value)), 4), signals)
        return [r if r is not None else Sentiment("neutral", 0.0) for r in results]

    def probabilities(self, texts: Sequence[str]) -> Matrix:
        """One row per text of label probabilities, in the order of `labels`."""
        if not texts:
            return np.zeros((0, len(self._labels)))
        logits = _features(texts, self._embedder, self._lexicon) @ self._coef.T + self._intercept
        if len(self._labels) == 2:
            # scikit-learn's binary model keeps one row of weights, for the second label.
            positive = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - positive, positive], axis=1)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: Matrix = exp / exp.sum(axis=1, keepdims=True)
        return result

    def save(self, directory: Path) -> None:
        """Write the weights and metadata into `directory` (created if missing)."""
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / _COEF, self._coef, allow_pickle=False)
        np.save(directory / _INTERCEPT, self._intercept, allow_pickle=False)
        meta = {
            **self.metadata,
            "format": FORMAT,
            "embedder": self._embedder.name,
            "dim": self._embedder.dim,
            "labels": list(self._labels),
            "lexicon_features": self._lexicon is not None,
            "signals": list(_SIGNALS) if self._lexicon is not None else [],
        }
        (directory / _META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        log.info("saved sentiment classifier dir=%s name=%s", directory, self.name)

    @classmethod
    def load(
        cls,
        directory: Path,
        embedder: Embedder | None = None,
        *,
        retrieval: RetrievalConfig | None = None,
    ) -> ClassifierSentiment:
        """The classifier saved in `directory`, with its embedder unless given loaded by name
        through `classifier_embedder` (run as `retrieval` runs the knowledge base's)."""
        meta_path = directory / _META
        if not meta_path.exists():
            raise FileNotFoundError(
                f"no sentiment classifier at {directory}; train one with "
                f"scripts/evaluate.py sentiment --model classifier --train FILE --save {directory} "
                "or set the sentiment model to 'lexicon'"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: format {meta.get('format')!r} is not {FORMAT!r}")
        if meta["lexicon_features"] and meta["signals"] != list(_SIGNALS):
            raise ValueError(f"{meta_path}: trained with other lexicon cues; retrain it")
        if embedder is None:
            embedder = classifier_embedder(meta["embedder"], retrieval)
        elif embedder.name != meta["embedder"]:
            raise ValueError(
                f"{directory} was trained on embedder {meta['embedder']!r}, not {embedder.name!r}"
            )
        labels = [label for label in meta["labels"] if label in LABELS]
        return cls(
            embedder,
            np.load(directory / _COEF, allow_pickle=False),
            np.load(directory / _INTERCEPT, allow_pickle=False),
            labels,
            lexicon_features=bool(meta["lexicon_features"]),
            metadata=meta,
        )


def classifier_embedder(name: str, retrieval: RetrievalConfig | None = None) -> Embedder:
    """The embedder `name` a classifier scores with, run as `retrieval` runs the knowledge base's
    (backend, ONNX folder, batch size, threads; default: torch).

    Classifiers are trained on torch's vectors. fp32 ONNX reproduces them; int8's moved the
    accuracy of classifiers trained on halves of three dev sets by at most 0.002, so every
    backend scores as configured.
    """
    from retrieval.config import RetrievalConfig
    from retrieval.embedders import configured_embedder

    return configured_embedder(retrieval or RetrievalConfig(), name)


def train(
    rows: Sequence[LabelledText],
    embedder: Embedder,
    *,
    c: float = 1.0,
    lexicon_features: bool = True,
    cv_folds: int = 5,
) -> ClassifierSentiment:
    """Fit a classifier on labelled messages (two or three labels).

    Its metadata records the training data's hash and, when every label has `cv_folds` rows,
    cross-validated metrics on that data.
    """
    from sklearn import __version__ as sklearn_version
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    counts = Counter(row.label for row in rows)
    if len(counts) < 2:
        raise ValueError(f"need rows of at least two labels to train, got {dict(counts)}")
    lexicon = LexiconSentiment() if lexicon_features else None
    x = _features([row.text for row in rows], embedder, lexicon)
    y = np.array([row.label for row in rows])
    model = LogisticRegression(C=c, max_iter=2000)
    metrics: dict[str, float] = {}
    if cv_folds >= 2 and min(counts.values()) >= cv_folds:
        folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=0)
        predicted = cross_val_predict(LogisticRegression(C=c, max_iter=2000), x, y, cv=folds)
        metrics = classification_metrics(list(y), [str(p) for p in predicted])
    model.fit(x, y)
    metadata = {
        "data_sha256": _data_hash(rows),
        "label_counts": dict(sorted(counts.items())),
        "c": c,
        "cv_folds": cv_folds if metrics else 0,
        "cv_metrics": metrics,
        "sklearn": sklearn_version,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    labels: list[Label] = [label for label in LABELS if label in counts]
    assert [str(c) for c in model.classes_] == labels, "scikit-learn orders labels alphabetically"
    return ClassifierSentiment(
        embedder,
        np.asarray(model.coef_, dtype=np.float64),
        np.asarray(model.intercept_, dtype=np.float64),
        labels,
        lexicon_features=lexicon_features,
        metadata=metadata,
    )


def _features(texts: Sequence[str], embedder: Embedder, lexicon: LexiconSentiment | None) -> Matrix:
    vectors = np.asarray(embedder.encode(texts), dtype=np.float64)
    assert vectors.shape == (len(texts), embedder.dim), "embedder returned the wrong shape"
    if lexicon is None:
        return vectors
    extra = np.zeros((len(texts), 1 + len(_SIGNALS)))
    for i, sentiment in enumerate(lexicon.score_batch(texts)):
        extra[i, 0] = sentiment.score
        for signal in sentiment.signals:
            if signal in _SIGNALS:
                extra[i, 1 + _SIGNALS.index(signal)] = 1.0
    return np.hstack([vectors, extra])


def _data_hash(rows: Sequence[LabelledText]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        line = json.dumps({"text": row.text, "label": row.label}, ensure_ascii=False)
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()
