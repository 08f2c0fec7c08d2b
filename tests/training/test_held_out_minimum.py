"""A kind with too few held-out items to gate on is not trained, and the report says why."""

from __future__ import annotations

from pathlib import Path

from engine.settings import Settings, TrainingConfig
from retrieval import RetrievalConfig
from tests.training.test_bad_training_set import BAD, GOOD, labelled, log_labelled
from training.loop import RunOptions, run_retraining
from training.registry import ModelRegistry


def settings_for(tmp_path: Path, validation_share: float) -> Settings:
    return Settings(
        retrieval=RetrievalConfig(kb_dir=tmp_path / "kb"),
        training=TrainingConfig(
            models_dir=tmp_path / "models",
            runs_dir=tmp_path / "runs",
            min_sentiment=5,
            validation_share=validation_share,
        ),
    )


async def test_sentiment_without_held_out_messages_is_not_trained(tmp_path: Path) -> None:
    log_db = tmp_path / "log.db"
    await log_labelled(log_db, labelled(GOOD, "positive") + labelled(BAD, "negative"))
    settings = settings_for(tmp_path, 0.0)

    for dry_run in (True, False):
        options = RunOptions(log_db=log_db, what=("sentiment",), dry_run=dry_run, progress=False)
        summary = run_retraining(settings, options)

        assert summary.counts["sentiment"]["validation"] == 0
        (outcome,) = summary.outcomes
        assert not outcome.trained and outcome.verdict is None and outcome.version is None
        assert outcome.note.startswith("not trained: no held-out messages"), outcome.note
        assert "needs 10, [training] min_held_out; 48 labelled messages" in outcome.note
        assert outcome.note.endswith("kept the current sentiment model")
        assert outcome.note in summary.report.read_text()
        assert ModelRegistry(tmp_path / "models").versions("sentiment") == []


async def test_sentiment_with_a_handful_of_held_out_messages_is_not_trained(
    tmp_path: Path,
) -> None:
    log_db = tmp_path / "log.db"
    # Twelve conversations, about a quarter held out: fewer than the ten the gate needs.
    await log_labelled(log_db, labelled(GOOD[:1], "positive") + labelled(BAD[:1], "negative")[:4])
    summary = run_retraining(
        settings_for(tmp_path, 0.25),
        RunOptions(log_db=log_db, what=("sentiment",), progress=False),
    )

    held_out = summary.counts["sentiment"]["validation"]
    assert 0 < held_out < 10
    (outcome,) = summary.outcomes
    assert not outcome.trained and outcome.verdict is None
    assert outcome.note.startswith(f"not trained: only {held_out} held-out messages"), outcome.note
