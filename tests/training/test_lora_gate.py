"""The LoRA gate's bar is the live adapter, measured on the run's own held-out dialogues.

A deliberately bad adapter (random LoRA weights that garble the model) is live; the run trains
a new one from the log and scores both, and the base model, on the same examples.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.generators.base import GenerationRequest, GeneratorConfig
from engine.log import ConversationLog, Retrieved
from engine.settings import Settings, TrainingConfig
from retrieval import FaqEntry, RetrievalConfig
from tests.training.conftest import fill_log
from training.loop import RunOptions, live_adapter_for, run_retraining
from training.registry import ModelRegistry

ANSWERS = {
    "shipping-time": ("how long does shipping take?", "Shipping takes 3-5 working days."),
    "returns": ("can I return my order?", "Yes, within 30 days of delivery."),
    "payment": ("which cards do you take?", "We take Visa, Mastercard and PayPal."),
    "hours": ("when are you open?", "We answer from 9 to 17, Monday to Friday."),
    "tracking": ("where is my parcel?", "Your tracking link is in the shipping e-mail."),
    "invoice": ("can I get an invoice?", "Every order's invoice is in your account."),
    "warranty": ("how long is the warranty?", "Two years on every product."),
    "cancel": ("can I cancel my order?", "Yes, until it has been shipped."),
    "address": ("can I change my address?", "Yes, in your account before shipping."),
    "gift": ("do you wrap gifts?", "Yes, tick gift wrap at checkout."),
}


async def log_liked_answers(path: Path) -> None:
    """A liked answer to each question of ANSWERS, one conversation each."""
    async with await ConversationLog.open(path) as log:
        for faq_id, (question, answer) in ANSWERS.items():
            c = await log.start_conversation("telegram", faq_id)
            await log.add_turn(
                c, "customer", question, sentiment_label="neutral", sentiment_score=0.0
            )
            t = await log.add_turn(
                c, "bot", answer, action="answer", retrieved=[Retrieved(faq_id, 0.9)]
            )
            await log.add_feedback(t, 1)


async def test_a_new_adapter_is_measured_against_the_live_one(
    tmp_path: Path, smollm_dir: Path, lora_adapter: Path
) -> None:
    log_db = tmp_path / "log.db"
    await fill_log(log_db)
    # Enough conversations to hold out the fewest dialogues the gate judges on (kept small:
    # every held-out dialogue is scored under three models on the CPU).
    await log_liked_answers(log_db)
    registry = ModelRegistry(tmp_path / "models")
    live = registry.add("lora", lora_adapter, {})
    registry.promote("lora", live.version)
    settings = Settings(
        retrieval=RetrievalConfig(kb_dir=tmp_path / "kb"),
        generator=GeneratorConfig(backend="transformers", model_path=smollm_dir, device="cpu"),
        training=TrainingConfig(
            models_dir=registry.root,
            runs_dir=tmp_path / "runs",
            validation_share=0.7,
            min_dialogues=1,
            min_held_out=6,
            lora_rank=4,
            lora_epochs=1.0,
        ),
    )

    summary = run_retraining(settings, RunOptions(log_db=log_db, what=("lora",), progress=False))

    assert summary.counts["dialogues"]["validation"] >= settings.training.min_held_out
    (outcome,) = summary.outcomes
    assert outcome.trained and outcome.verdict is not None, outcome.note
    assert outcome.note.startswith(f"current = live adapter {live.version}")
    live_loss, new_loss = outcome.before["validation_loss"], outcome.after["validation_loss"]
    base_loss = outcome.after["base_validation_loss"]
    assert live_loss is not None and new_loss is not None and base_loss is not None
    # The garbling adapter scores far worse than the base model; the new one beats it.
    assert live_loss > base_loss + 1.0, (live_loss, base_loss)
    assert outcome.verdict.promote and new_loss < live_loss
    # Decided by the paired bootstrap over the held-out dialogues, its interval in the report.
    assert outcome.verdict.reason.startswith("better: answer_log_likelihood"), outcome.verdict
    assert "95% CI [" in outcome.verdict.reason
    assert outcome.verdict.reason in summary.report.read_text()
    current = registry.current("lora")
    assert current is not None and current.version == outcome.version

    # The adapter trained from the log answers through the transformers generator.
    from engine.generators.transformers import TransformersGenerator

    generator = TransformersGenerator(replace(settings.generator, adapter_path=current.path))
    assert generator.name.endswith(f"+{current.path.name}")
    source = FaqEntry("shipping-time", "How long does shipping take?", "Two to four days.")
    request = GenerationRequest("how long does shipping take?", (source,), max_tokens=12)
    assert "".join([piece async for piece in generator.stream(request)]).strip()


def test_an_adapter_for_another_base_model_is_not_the_bar(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    base, other = tmp_path / "base", tmp_path / "other-base"
    for name, trained_on in (("old", other), ("unknown", None), ("fits", base)):
        folder = tmp_path / name
        folder.mkdir()
        metadata = {} if trained_on is None else {"base_model": str(trained_on)}
        version = registry.add("lora", folder, metadata)
        registry.promote("lora", version.version)
        current, why = live_adapter_for(registry, base)
        if name == "old":
            assert current is None
            assert version.version in why and str(other) in why and str(base) in why
        else:  # trained on this base, or stored without saying (measured as before)
            assert current is not None and current.version == version.version and why == ""


async def test_without_held_out_dialogues_no_adapter_is_trained_or_promoted(
    tmp_path: Path,
) -> None:
    # No conversation falls in a validation share of 0: every dialogue is a training one, and
    # scored on those the new adapter would look better almost surely.
    log_db = tmp_path / "log.db"
    await fill_log(log_db)
    registry = ModelRegistry(tmp_path / "models")
    folder = tmp_path / "live-adapter"
    folder.mkdir()
    live = registry.add("lora", folder, {})
    registry.promote("lora", live.version)
    settings = Settings(
        retrieval=RetrievalConfig(kb_dir=tmp_path / "kb"),
        generator=GeneratorConfig(backend="transformers", model_path=tmp_path / "no-model"),
        training=TrainingConfig(
            models_dir=registry.root,
            runs_dir=tmp_path / "runs",
            validation_share=0.0,
            min_dialogues=1,
        ),
    )

    for dry_run in (True, False):
        options = RunOptions(log_db=log_db, what=("lora",), dry_run=dry_run, progress=False)
        summary = run_retraining(settings, options)

        assert summary.counts["dialogues"]["validation"] == 0
        assert summary.counts["dialogues"]["train"] >= 1
        (outcome,) = summary.outcomes
        assert not outcome.trained and outcome.verdict is None and outcome.version is None
        assert outcome.note.startswith("not trained: no held-out dialogues"), outcome.note
        assert outcome.note.endswith("kept the current lora model")
        assert outcome.note in summary.report.read_text()
        current = registry.current("lora")
        assert current is not None and current.version == live.version
        assert [v.version for v in registry.versions("lora")] == [live.version]
