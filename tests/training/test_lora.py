"""A tiny LoRA run on the packaged SmolLM2: it learns its data and loads back with PEFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data import DialogueRecord
from training.lora import LoraTrainingConfig, to_chat_example, train_lora, word_f1
from training.report import KindOutcome, write_report

EXAMPLES = [
    ("how do I return an item?", "Start a return under Orders, then Return; the label is free."),
    ("can I change my address?", "Yes, until it ships: open the order and choose Edit address."),
    ("where is my refund?", "Refunds reach your card three to five working days after return."),
]


def _records() -> list[DialogueRecord]:
    return [
        DialogueRecord(f"turn-{i}", i, q, (), (), a, "operator")
        for i, (q, a) in enumerate(EXAMPLES)
    ]


def test_the_prompt_is_the_generators_prompt() -> None:
    record = DialogueRecord("t", 1, "hi?", (("customer", "hello"), ("bot", "hey")), (), "ok", "bot")
    example = to_chat_example(record, {})
    assert [m["role"] for m in example["prompt"]] == ["system", "user", "assistant", "user"]
    assert example["completion"] == [{"role": "assistant", "content": "ok"}]


def test_word_f1() -> None:
    assert word_f1("Refunds take 5 days", "refunds take 5 days") == 1.0
    assert word_f1("no", "yes") == 0.0


def tiny(rank: int, steps: int) -> LoraTrainingConfig:
    """A few steps at a high learning rate: enough to move the loss, in seconds on a CPU."""
    return LoraTrainingConfig(
        rank=rank,
        max_steps=steps,
        batch_size=3,
        learning_rate=2e-3,
        max_length=256,
        evals_during_training=0,
        sample_answers=0,
    )


@pytest.mark.slow
def test_tiny_lora_run_lowers_loss_and_loads(tmp_path: Path, smollm_dir: Path) -> None:
    config = tiny(rank=8, steps=3)
    records = _records()
    result = train_lora(
        smollm_dir, records, [], out=tmp_path / "adapter", entries={}, config=config, progress=False
    )
    assert result.train_loss < result.base_train_loss
    # Per held-out example (the training examples stand in): the set's loss weighs them by
    # answer tokens, so it lies within their range.
    assert len(result.item_losses) == len(result.base_item_losses) == len(records)
    assert min(result.item_losses) <= result.validation_loss <= max(result.item_losses)
    assert sum(result.item_losses) < sum(result.base_item_losses)
    adapter = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] <= 16 and not adapter.get("modules_to_save")
    assert set(adapter["target_modules"]) <= {"q_proj", "k_proj", "v_proj", "o_proj"}
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(smollm_dir)), str(tmp_path / "adapter")
    )
    assert model.active_adapter == "default"
    report = write_report(
        tmp_path / "run",
        {"dialogues": {"train": 3, "validation": 0}},
        [
            KindOutcome(
                "lora",
                True,
                "",
                {"validation_loss": result.base_validation_loss},
                result.metrics(),
                None,
                None,
                result.losses,
                result.eval_losses,
            )
        ],
    )
    assert "validation_loss" in report.read_text()
    assert (tmp_path / "run" / "lora-loss.png").stat().st_size > 1000


@pytest.mark.slow
def test_the_live_adapter_is_measured_on_the_same_examples(
    tmp_path: Path, smollm_dir: Path
) -> None:
    config = tiny(rank=4, steps=2)
    records = _records()
    first = train_lora(
        smollm_dir, records, records, out=tmp_path / "a", entries={}, config=config, progress=False
    )
    assert first.current_validation_loss is None
    second = train_lora(
        smollm_dir,
        records[:2],
        records,
        out=tmp_path / "b",
        entries={},
        config=config,
        progress=False,
        current_adapter=tmp_path / "a",
    )
    # The live adapter, loaded back from its folder, scores what it scored when it was trained.
    assert second.current_validation_loss == pytest.approx(first.validation_loss, abs=2e-3)
    assert second.current_validation_loss != pytest.approx(second.base_validation_loss, abs=1e-3)
    # So does each example, in the same order: the gate compares them pair by pair.
    assert second.current_item_losses == pytest.approx(first.item_losses, abs=2e-3)
    assert second.base_item_losses == pytest.approx(first.base_item_losses, abs=1e-3)
    assert len(second.item_losses) == len(records)
