"""A deliberately bad training set through the whole loop: the worse model is never promoted.

The log holds correctly labelled customer messages (its validation slice is the yardstick); a
labelled file handed to the run flips every label. The model trained on it is stored for
inspection but the live one stays, and rolling back afterwards still works.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.log import ConversationLog
from engine.sentiment import LabelledText, train
from engine.settings import Settings, TrainingConfig
from retrieval import Embedder, RetrievalConfig
from training.loop import RunOptions, run_retraining
from training.registry import ModelRegistry

THINGS = ("parcel", "refund", "order", "lamp", "sofa", "delivery", "invoice", "support team")
GOOD = ("I love the {}, thank you so much!", "Great {}, really happy with it", "the {} is perfect")
BAD = ("the {} is awful, I'm furious", "terrible {}, worst ever", "I hate this {}, so angry")
FLIP = {"positive": "negative", "negative": "positive"}


def labelled(templates: tuple[str, ...], label: str) -> list[LabelledText]:
    return [LabelledText(t.format(thing), label) for t in templates for thing in THINGS]  # type: ignore[arg-type]


async def log_labelled(log_db: Path, rows: list[LabelledText]) -> None:
    """One conversation per row: a customer message carrying the row's label."""
    async with await ConversationLog.open(log_db) as log:
        for number, row in enumerate(rows):
            conversation = await log.start_conversation("test", f"customer-{number}")
            await log.add_turn(
                conversation,
                "customer",
                row.text,
                sentiment_label=row.label,
                sentiment_score=0.8 if row.label == "positive" else -0.8,
            )


async def test_a_model_trained_on_flipped_labels_is_kept_out(
    tmp_path: Path, minilm: Embedder
) -> None:
    rows = labelled(GOOD, "positive") + labelled(BAD, "negative")
    log_db = tmp_path / "log.db"
    await log_labelled(log_db, rows)
    poisoned = tmp_path / "poisoned.jsonl"
    # Other wording than the log's, each row three times, every label flipped.
    wording = [r.text.replace("the ", "this ").upper() for r in rows]
    poisoned.write_text(
        "".join(
            json.dumps({"text": f"{text} {n}", "label": FLIP[r.label]}) + "\n"
            for text, r in zip(wording, rows, strict=True)
            for n in range(3)
        )
    )
    registry = ModelRegistry(tmp_path / "models")
    live_folder = tmp_path / "live"
    train(rows[::2], minilm, cv_folds=0).save(live_folder)
    live = registry.add("sentiment", live_folder, {})
    registry.promote("sentiment", live.version)
    settings = Settings(
        retrieval=RetrievalConfig(kb_dir=tmp_path / "kb"),
        training=TrainingConfig(
            models_dir=registry.root,
            runs_dir=tmp_path / "runs",
            min_sentiment=5,
            validation_share=0.5,
        ),
    )

    options = RunOptions(log_db=log_db, what=("sentiment",), labels=(poisoned,), progress=False)
    summary = run_retraining(settings, options)

    (outcome,) = summary.outcomes
    assert outcome.trained and outcome.verdict is not None
    assert not outcome.verdict.promote, outcome.verdict.reason
    assert "kept the current sentiment model" in outcome.verdict.reason
    assert outcome.after["macro_f1"] is not None and outcome.before["macro_f1"] is not None
    assert outcome.after["macro_f1"] < outcome.before["macro_f1"]
    current = registry.current("sentiment")
    assert current is not None and current.version == live.version
    stored = [v.version for v in registry.versions("sentiment")]
    assert outcome.version in stored and len(stored) == 2, "the worse model is kept, not live"
    assert "not promoted" in summary.report.read_text(encoding="utf-8")

    # The kept-out version can still be promoted by hand and rolled back to the good one.
    assert outcome.version is not None
    registry.promote("sentiment", outcome.version)
    assert registry.rollback("sentiment").version == live.version
    current = registry.current("sentiment")
    assert current is not None and current.version == live.version
