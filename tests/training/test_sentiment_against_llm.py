"""With `[sentiment] model = "llm"` live, a retrained classifier is measured against the LLM.

The llm sentiment asks the configured generator (here the packaged SmolLM2 through the
transformers backend), so the run has to load that generator to score the current model.
"""

from __future__ import annotations

from pathlib import Path

from engine.generators.base import GeneratorConfig
from engine.sentiment import SentimentConfig
from engine.settings import Settings, TrainingConfig
from retrieval import Embedder, RetrievalConfig
from tests.services import need_module
from tests.training.test_bad_training_set import BAD, GOOD, labelled, log_labelled
from training.loop import RunOptions, run_retraining


async def test_the_live_llm_sentiment_is_the_baseline(
    tmp_path: Path, minilm: Embedder, smollm_dir: Path
) -> None:
    need_module("transformers", "bash scripts/setup.sh llm")
    log_db = tmp_path / "log.db"
    await log_labelled(log_db, labelled(GOOD, "positive") + labelled(BAD, "negative"))
    settings = Settings(
        retrieval=RetrievalConfig(kb_dir=tmp_path / "kb"),
        sentiment=SentimentConfig(model="llm"),
        generator=GeneratorConfig(backend="transformers", model_path=smollm_dir, device="cpu"),
        training=TrainingConfig(
            models_dir=tmp_path / "models",
            runs_dir=tmp_path / "runs",
            min_sentiment=5,
            validation_share=0.5,
        ),
    )

    summary = run_retraining(
        settings, RunOptions(log_db=log_db, what=("sentiment",), progress=False)
    )

    (outcome,) = summary.outcomes
    assert outcome.trained and outcome.verdict is not None, outcome.note
    assert outcome.note.startswith("current = llm:"), outcome.note
    assert outcome.before["macro_f1"] is not None and outcome.after["macro_f1"] is not None
    # Clear-cut messages: the classifier trained on the log's own labels is at least as good.
    assert outcome.verdict.promote, outcome.verdict.reason
