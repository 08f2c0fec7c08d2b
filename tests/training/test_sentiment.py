"""Retraining the classifier sentiment model, measured before and after on held-out rows."""

from __future__ import annotations

import json
from pathlib import Path

from engine.sentiment import LexiconSentiment
from engine.sentiment.evaluation import LabelledText
from tests.fakes import HashEmbedder
from training.data import SentimentRecord
from training.sentiment import labelled_rows, retrain_sentiment

NEGATIVE = ["awful slow service", "terrible broken parcel", "angry about the refund delay"]
POSITIVE = ["great fast delivery", "lovely helpful staff", "happy with the quick refund"]


def _rows(words: list[str], label: str, n: int) -> list[LabelledText]:
    return [LabelledText(f"{w} {i}", label) for i in range(n) for w in words]  # type: ignore[arg-type]


def test_retrain_reports_metrics_before_and_after(tmp_path: Path) -> None:
    extra = tmp_path / "labels.jsonl"
    extra.write_text(json.dumps({"text": "horrible awful", "label": "negative"}) + "\n")
    records = [
        SentimentRecord(f"t{i}", i, row.text, row.label, "model")
        for i, row in enumerate(_rows(NEGATIVE, "negative", 6) + _rows(POSITIVE, "positive", 6))
    ]
    train = labelled_rows(records, [extra])
    assert len(train) == len(records) + 1
    validation = _rows(NEGATIVE, "negative", 2) + _rows(POSITIVE, "positive", 2)
    result = retrain_sentiment(train, validation, HashEmbedder(), current=LexiconSentiment())
    assert result.before is not None
    assert result.after["macro_f1"] >= 0.9
    assert {"macro_f1", "negative_f1"} <= set(result.before)
    result.model.save(tmp_path / "model")
    assert (tmp_path / "model" / "meta.json").is_file()
