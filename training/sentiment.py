"""Retrain the engine's classifier sentiment model from exported labels and labelled files."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.sentiment.base import SentimentModel
from engine.sentiment.classifier import ClassifierSentiment, train
from engine.sentiment.evaluation import (
    LabelledText,
    binary_label,
    evaluate_sentiment,
    read_labelled,
)
from retrieval.embedders import Embedder
from training.data import SentimentRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SentimentResult:
    """The retrained model and its metrics next to the current model's on the held-out slice."""

    model: ClassifierSentiment
    train_rows: int
    validation_rows: int
    before: dict[str, float] | None
    after: dict[str, float]
    # Per held-out row, 1.0 where the model's label is right: what the gate bootstraps.
    before_correct: list[float] | None = None
    after_correct: list[float] = field(default_factory=list)


def correct_rows(model: SentimentModel, rows: Sequence[LabelledText]) -> list[float]:
    """1.0 for each row `model` labels right, else 0.0 (binary where the gold labels are)."""
    predicted = model.score_batch([row.text for row in rows])
    binary = all(row.label != "neutral" for row in rows)
    return [
        float((binary_label(s) if binary else s.label) == row.label)
        for s, row in zip(predicted, rows, strict=True)
    ]


def labelled_rows(
    records: Sequence[SentimentRecord], files: Sequence[Path] = ()
) -> list[LabelledText]:
    """Exported records plus every row of the labelled JSON Lines `files`."""
    rows = [LabelledText(r.text, r.label) for r in records]
    for path in files:
        rows.extend(read_labelled(path))
    return rows


def retrain_sentiment(
    train_rows: Sequence[LabelledText],
    validation_rows: Sequence[LabelledText],
    embedder: Embedder,
    *,
    current: SentimentModel | None = None,
) -> SentimentResult:
    """Fit a classifier on `train_rows`; score it and `current` (if given) on `validation_rows`."""
    if not validation_rows:
        raise ValueError("no held-out sentiment rows to evaluate on; log more conversations")
    model = train(train_rows, embedder)
    after = evaluate_sentiment(model, validation_rows)
    before = evaluate_sentiment(current, validation_rows) if current is not None else None
    log.info(
        "retrained sentiment rows=%d macro_f1=%.4f before=%s",
        len(train_rows),
        after["macro_f1"],
        before["macro_f1"] if before else None,
    )
    return SentimentResult(
        model,
        len(train_rows),
        len(validation_rows),
        before,
        after,
        correct_rows(current, validation_rows) if current is not None else None,
        correct_rows(model, validation_rows),
    )
