"""Sentiment quality on labelled messages, and reading and splitting those messages."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.sentiment.base import LABELS, Label, Sentiment, SentimentModel


@dataclass(frozen=True, slots=True)
class LabelledText:
    """A message and its gold sentiment label."""

    text: str
    label: Label


def read_labelled(path: Path) -> list[LabelledText]:
    """Labelled messages from JSON Lines `{"text", "label"}`, with errors naming the line."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                text, label = data["text"], data["label"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{path}: line {number}: expected {{'text', 'label'}}: {exc}"
                ) from exc
            if not isinstance(text, str) or label not in LABELS:
                raise ValueError(f"{path}: line {number}: label must be one of {LABELS}")
            rows.append(LabelledText(text, label))
    if not rows:
        raise ValueError(f"{path}: no labelled rows")
    return rows


def split_half(
    rows: Sequence[LabelledText], seed: int = 0
) -> tuple[list[LabelledText], list[LabelledText]]:
    """A reproducible 50/50 split that keeps each label's share; the first half gets the floor."""
    by_label: dict[str, list[LabelledText]] = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    rng = random.Random(seed)
    first: list[LabelledText] = []
    second: list[LabelledText] = []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        half = len(group) // 2
        first += group[:half]
        second += group[half:]
    return first, second


def binary_label(sentiment: Sentiment) -> Label:
    """A prediction read against a gold set with no neutral class: neutral goes by its score's sign.

    A score of exactly 0 (no cue at all) counts as positive: nothing said the customer is upset.
    """
    if sentiment.label != "neutral":
        return sentiment.label
    return "negative" if sentiment.score < 0 else "positive"


def evaluate_sentiment(model: SentimentModel, rows: Sequence[LabelledText]) -> dict[str, float]:
    """Accuracy, macro F1 and the negative class's F1, precision and recall of `model` on rows.

    When the gold labels hold no "neutral" (the binary Chinese sets), predictions are made
    binary with `binary_label` first.
    """
    if not rows:
        raise ValueError("no labelled rows to evaluate on")
    gold = [row.label for row in rows]
    predicted = model.score_batch([row.text for row in rows])
    binary = "neutral" not in gold
    return classification_metrics(gold, [binary_label(s) if binary else s.label for s in predicted])


def classification_metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """The metrics of `evaluate_sentiment` for labels already predicted."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    labels = sorted(set(gold) | set(predicted))
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, predicted, labels=["negative"], average=None, zero_division=0
    )
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(
            f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "negative_f1": float(f1[0]),
        "negative_precision": float(precision[0]),
        "negative_recall": float(recall[0]),
    }
