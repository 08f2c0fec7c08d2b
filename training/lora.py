"""LoRA fine-tuning of the answering model on logged dialogues, with TRL's SFTTrainer.

Each example is the exact chat the generators send (`engine.generators.prompt.build_messages`:
rules, retrieved entries, recent turns, question) as the prompt and the operator's or 👍 answer
as the completion; the loss covers the completion only. The adapter targets attention
projections, has no `modules_to_save` and a rank within vLLM's default `max_lora_rank`, so both
the transformers and the vLLM generator load it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.generators.base import GenerationRequest
from engine.generators.prompt import build_messages
from retrieval.entries import FaqEntry
from training.data import DialogueRecord

log = logging.getLogger(__name__)

LOSSES_FILE = "losses.json"


@dataclass(frozen=True, slots=True)
class LoraTrainingConfig:
    """How the adapter is trained; the defaults fit a few hundred examples on CPU in minutes."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    epochs: float = 2.0
    max_steps: int = -1
    batch_size: int = 4
    learning_rate: float = 2e-4
    max_length: int = 768
    # Entries per prompt, as the engine's context_entries.
    context_entries: int = 3
    # Validation questions answered by base and adapter to compare with the reference answers.
    sample_answers: int = 8
    # Validation-loss measurements during training, for the loss plot (0: before and after only).
    evals_during_training: int = 4
    max_new_tokens: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.rank <= 16:
            raise ValueError(f"LoRA rank must be 1-16 (vLLM's max_lora_rank), got {self.rank}")


@dataclass(slots=True)
class LoraResult:
    """What a run produced: the adapter folder and its numbers."""

    out: Path
    base_model: str
    train_examples: int
    validation_examples: int
    base_validation_loss: float
    validation_loss: float
    base_train_loss: float
    train_loss: float
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    eval_losses: list[tuple[int, float]] = field(default_factory=list)
    answer_overlap_base: float | None = None
    answer_overlap: float | None = None
    # The live adapter's validation loss on the same held-out examples, when one was given.
    current_validation_loss: float | None = None
    # Per held-out example, in order: the mean loss per answer token of the base model, of the
    # new adapter and of the live one (when given); the gate compares them pair by pair.
    base_item_losses: list[float] = field(default_factory=list)
    item_losses: list[float] = field(default_factory=list)
    current_item_losses: list[float] | None = None

    def metrics(self) -> dict[str, float | None]:
        return {
            "validation_loss": self.validation_loss,
            "base_validation_loss": self.base_validation_loss,
            "train_loss": self.train_loss,
            "base_train_loss": self.base_train_loss,
            "answer_overlap": self.answer_overlap,
            "answer_overlap_base": self.answer_overlap_base,
        }


def to_chat_example(
    record: DialogueRecord, entries: Mapping[str, FaqEntry], context_entries: int = 3
) -> dict[str, list[dict[str, str]]]:
    """A prompt/completion pair in chat form, the prompt built exactly as at inference."""
    sources = tuple(entries[i] for i in record.faq_ids if i in entries)[:context_entries]
    history = tuple((role, text) for role, text in record.history)
    request = GenerationRequest(record.question, sources, history)  # type: ignore[arg-type]
    return {
        "prompt": build_messages(request),
        "completion": [{"role": "assistant", "content": record.answer}],
    }


def train_lora(
    base_model: Path,
    train: Sequence[DialogueRecord],
    validation: Sequence[DialogueRecord],
    *,
    out: Path,
    entries: Mapping[str, FaqEntry],
    config: LoraTrainingConfig | None = None,
    progress: bool = True,
    current_adapter: Path | None = None,
) -> LoraResult:
    """Train an adapter on `train`, measure base and adapter on `validation`, save to `out`.

    With no validation examples the training examples stand in (a measurement of the fit only:
    the retraining loop never trains, let alone promotes, an adapter without held-out dialogues).
    `current_adapter` (the live one) is measured on the same examples, so the gate can compare.
    """
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    config = config or LoraTrainingConfig()
    if not train:
        raise ValueError("no dialogue examples to train the adapter on")
    held_out = list(validation) or list(train)
    torch.manual_seed(config.seed)
    clock = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)

    def dataset(rows: Sequence[DialogueRecord]) -> Dataset:
        return Dataset.from_list(
            [to_chat_example(r, entries, config.context_entries) for r in rows]
        )

    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = config.max_steps if config.max_steps > 0 else math.ceil(steps_per_epoch * config.epochs)
    with tempfile.TemporaryDirectory(prefix="lora-train-") as scratch:
        args = SFTConfig(
            output_dir=scratch,
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            lr_scheduler_type="constant",
            max_length=config.max_length,
            completion_only_loss=True,
            packing=False,
            logging_steps=max(1, total // 20),
            eval_strategy="steps" if config.evals_during_training > 0 else "no",
            eval_steps=max(1, total // max(1, config.evals_during_training)),
            save_strategy="no",
            report_to="none",
            disable_tqdm=not progress,
            use_cpu=not torch.cuda.is_available(),
            bf16=False,
            seed=config.seed,
            data_seed=config.seed,
            dataloader_pin_memory=False,
        )
        peft_config = LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=list(config.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        train_set = dataset(train)
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=train_set,
            eval_dataset={"validation": dataset(held_out)},
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        current_loss = current_items = None
        if current_adapter is not None:
            current_loss, current_items = _adapter_loss(
                base_model, current_adapter, tokenizer, args, dataset(held_out)
            )
        # LoRA starts with B = 0, so the untrained adapter is exactly the base model.
        separate = train_set if validation else None
        before = _evaluate(trainer, separate)
        base_items = _item_losses(trainer)
        trainer.train()
        after = _evaluate(trainer, separate)
        items = _item_losses(trainer)
        overlap_base = overlap = None
        if config.sample_answers > 0:
            overlap_base, overlap = _answer_overlap(
                trainer.model, tokenizer, held_out[: config.sample_answers], entries, config
            )
        out.mkdir(parents=True, exist_ok=True)
        adapter: Any = trainer.model
        adapter.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
    history = trainer.state.log_history
    result = LoraResult(
        out=out,
        base_model=str(base_model),
        train_examples=len(train),
        validation_examples=len(validation),
        base_validation_loss=round(float(before["eval_validation_loss"]), 4),
        validation_loss=round(float(after["eval_validation_loss"]), 4),
        base_train_loss=round(float(before["eval_train_loss"]), 4),
        train_loss=round(float(after["eval_train_loss"]), 4),
        seconds=round(time.perf_counter() - clock, 1),
        losses=[(int(h["step"]), round(float(h["loss"]), 4)) for h in history if "loss" in h],
        eval_losses=[
            (int(h["step"]), round(float(h["eval_validation_loss"]), 4))
            for h in history
            if "eval_validation_loss" in h
        ],
        answer_overlap_base=overlap_base,
        answer_overlap=overlap,
        current_validation_loss=current_loss,
        base_item_losses=base_items,
        item_losses=items,
        current_item_losses=current_items,
    )
    (out / LOSSES_FILE).write_text(
        json.dumps({**asdict(result), "out": str(out), "config": asdict(config)}, indent=2) + "\n",
        encoding="utf-8",
    )
    log.info(
        "trained lora out=%s examples=%d val_loss=%.4f base=%.4f seconds=%.0f",
        out,
        len(train),
        result.validation_loss,
        result.base_validation_loss,
        result.seconds,
    )
    return result


def _adapter_loss(
    base_model: Path, adapter: Path, tokenizer: Any, args: Any, held_out: Any
) -> tuple[float, list[float]]:
    """Validation loss of an existing adapter on `held_out`, computed as for the new one, and
    its loss on each example."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer  # type: ignore[attr-defined]

    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
    trainer = SFTTrainer(
        model=PeftModel.from_pretrained(model, str(adapter)),
        args=args,
        train_dataset=held_out,
        eval_dataset={"validation": held_out},
        processing_class=tokenizer,
    )
    return round(float(trainer.evaluate()["eval_validation_loss"]), 4), _item_losses(trainer)


def _item_losses(trainer: Any) -> list[float]:
    """Mean loss per answer token of each held-out example, in order, under the trainer's model.

    The same tokens and labels as the trainer's validation loss, which weighs all answer tokens
    of the set together; per example, two models can be compared pair by pair.
    """
    import torch
    import torch.nn.functional as F

    model = trainer.model
    model.eval()
    losses: list[float] = []
    with torch.no_grad():
        for batch in trainer.get_eval_dataloader("validation"):
            ids = batch["input_ids"].to(model.device)
            mask = batch["attention_mask"].to(model.device)
            target = batch["labels"].to(model.device)[:, 1:]
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            nll = F.cross_entropy(
                logits.float().transpose(1, 2), target, ignore_index=-100, reduction="none"
            )
            answer = target != -100
            per_example = (nll * answer).sum(dim=1) / answer.sum(dim=1).clamp(min=1)
            losses += [round(float(x), 4) for x in per_example]
    return losses


def _evaluate(trainer: Any, train_set: Any | None) -> dict[str, float]:
    """Validation loss and loss on the training examples (None: they are the validation set)."""
    scores: dict[str, float] = dict(trainer.evaluate())
    if train_set is None:
        scores["eval_train_loss"] = scores["eval_validation_loss"]
    else:
        scores.update(trainer.evaluate(eval_dataset=train_set, metric_key_prefix="eval_train"))
    return scores


def _answer_overlap(
    model: Any,
    tokenizer: Any,
    rows: Sequence[DialogueRecord],
    entries: Mapping[str, FaqEntry],
    config: LoraTrainingConfig,
) -> tuple[float | None, float | None]:
    """Mean word-overlap F1 of greedy answers with the reference answers: base, then adapter."""
    import torch

    if not rows:
        return None, None
    model.eval()

    def answer(row: DialogueRecord) -> str:
        prompt = to_chat_example(row, entries, config.context_entries)["prompt"]
        ids = tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(model.device)
        with torch.no_grad():
            output = model.generate(
                **ids,
                max_new_tokens=config.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        return str(
            tokenizer.decode(output[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        )

    def mean(generate: Callable[[DialogueRecord], str]) -> float:
        scores = [word_f1(generate(row), row.answer) for row in rows]
        return round(sum(scores) / len(scores), 4)

    with model.disable_adapter():
        base = mean(answer)
    return base, mean(answer)


def word_f1(answer: str, reference: str) -> float:
    """Word-overlap F1 between an answer and a reference answer (SQuAD-style, lower-cased)."""
    a, r = _words(answer), _words(reference)
    if not a or not r:
        return float(a == r)
    common = sum(min(a.count(w), r.count(w)) for w in set(a))
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())
