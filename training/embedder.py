"""Fine-tune the sentence embedder on the FAQ's paraphrases and on logged questions.

    python -m training.embedder --faq FAQ.jsonl [--pairs PAIRS.jsonl] --out DIR \\
        [--base NAME_OR_DIR] [--epochs N] [--batch-size B] [--max-pairs N]

Trains with sentence-transformers' own trainer, starting from the base (or current) embedder,
and writes a sentence-transformers model folder that `load_embedder(DIR)` and
`scripts/evaluate.py retrieval --embedder DIR` accept, with `training.json` beside the weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.embedders import resolve_model
from retrieval.entries import FaqEntry
from training.paraphrases import (
    LoggedQuery,
    TrainingPair,
    build_pairs,
    pairs_hash,
    read_faq,
    read_logged_queries,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

log = logging.getLogger(__name__)

METADATA_FILE = "training.json"


def _mnrl(model: SentenceTransformer, scale: float) -> nn.Module:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(model, scale=scale)


def _mnrl_both_ways(model: SentenceTransformer, scale: float) -> nn.Module:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(
        model, scale=scale, directions=("query_to_doc", "query_to_query")
    )


def _cached_mnrl(model: SentenceTransformer, scale: float) -> nn.Module:
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
    )

    return CachedMultipleNegativesRankingLoss(model, scale=scale, mini_batch_size=32)


# Losses by the name a config may use; all take in-batch negatives from (anchor, positive) pairs.
LOSSES: dict[str, Callable[[SentenceTransformer, float], nn.Module]] = {
    "mnrl": _mnrl,
    "mnrl-both-ways": _mnrl_both_ways,
    "cached-mnrl": _cached_mnrl,
}


@dataclass(frozen=True, slots=True)
class EmbedderTrainingConfig:
    """How the embedder is fine-tuned; the defaults fit 10-20k paraphrases in minutes on 2 cores."""

    epochs: float = 1.0
    batch_size: int = 64
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    # Questions are short; truncating while training only saves time, the saved model keeps
    # the base's limit for longer texts.
    max_seq_length: int = 64
    # Pairs are taken evenly from every entry up to this many (None: all).
    max_pairs: int | None = 20_000
    loss: str = "mnrl"
    # Inverse temperature of the in-batch softmax.
    scale: float = 20.0
    # Never put two pairs of one entry in the same batch: each would be the other's negative.
    no_duplicates: bool = True
    seed: int = 0


@dataclass(frozen=True, slots=True)
class EmbedderTrainingResult:
    """What a training run produced and from what."""

    out: Path
    base: str
    entries: int
    faq_pairs: int
    log_pairs: int
    data_hash: str
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        return self.faq_pairs + self.log_pairs


def train_embedder(
    base: str | Path,
    faq_entries: Sequence[FaqEntry],
    pairs: Iterable[LoggedQuery] = (),
    *,
    out: Path,
    config: EmbedderTrainingConfig | None = None,
    progress: bool = True,
) -> EmbedderTrainingResult:
    """Fine-tune `base` so that paraphrases and logged queries land near their entry's question.

    `base` is a packaged embedder name or a sentence-transformers folder (the current embedder);
    the result is saved as a sentence-transformers folder at `out`, which must not hold files.
    """
    config = config or EmbedderTrainingConfig()
    if config.loss not in LOSSES:
        raise ValueError(f"unknown loss {config.loss!r}; use one of {', '.join(sorted(LOSSES))}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already exists and is not empty; choose a new output folder")
    training_pairs = build_pairs(faq_entries, pairs, max_pairs=config.max_pairs, seed=config.seed)
    if len(training_pairs) < 2:
        raise ValueError(
            "too few training pairs: the FAQ needs entries with alt_questions "
            "(or --pairs with logged questions)"
        )
    base_path = resolve_model(str(base))
    log_pairs = sum(pair.from_log for pair in training_pairs)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    model = _load(base_path)
    losses = _fit(model, training_pairs, config, progress)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    seconds = round(time.perf_counter() - clock, 1)
    result = EmbedderTrainingResult(
        out=out,
        base=str(base),
        entries=len(faq_entries),
        faq_pairs=len(training_pairs) - log_pairs,
        log_pairs=log_pairs,
        data_hash=pairs_hash(training_pairs),
        seconds=seconds,
        losses=losses,
    )
    _write_metadata(result, base_path, config, started)
    log.info("trained embedder out=%s pairs=%d seconds=%.0f", out, result.pairs, result.seconds)
    return result


def _load(path: str) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, local_files_only=True)


def _fit(
    model: SentenceTransformer,
    pairs: Sequence[TrainingPair],
    config: EmbedderTrainingConfig,
    progress: bool,
) -> list[tuple[int, float]]:
    """Run sentence-transformers' trainer over the pairs; returns the logged (step, loss)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    dataset = Dataset.from_dict(
        {"anchor": [p.anchor for p in pairs], "positive": [p.positive for p in pairs]}
    )
    steps = max(1, int(len(pairs) / config.batch_size * config.epochs))
    saved_length = model.max_seq_length
    model.max_seq_length = min(config.max_seq_length, saved_length or config.max_seq_length)
    with tempfile.TemporaryDirectory(prefix="embedder-train-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_steps=config.warmup_ratio,
            batch_sampler=BatchSamplers.NO_DUPLICATES
            if config.no_duplicates
            else BatchSamplers.BATCH_SAMPLER,
            seed=config.seed,
            data_seed=config.seed,
            logging_steps=max(1, steps // 20),
            save_strategy="no",
            report_to="none",
            disable_tqdm=not progress,
            dataloader_pin_memory=False,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            loss=LOSSES[config.loss](model, config.scale),
        )
        trainer.train()
    model.max_seq_length = saved_length
    return [
        (int(entry["step"]), round(float(entry["loss"]), 4))
        for entry in trainer.state.log_history
        if "loss" in entry
    ]


def _write_metadata(
    result: EmbedderTrainingResult,
    base_path: str,
    config: EmbedderTrainingConfig,
    started: datetime,
) -> None:
    import sentence_transformers
    import torch

    metadata: dict[str, Any] = {
        "base": result.base,
        "base_path": base_path,
        "data_hash": result.data_hash,
        "counts": {
            "entries": result.entries,
            "pairs": result.pairs,
            "faq_pairs": result.faq_pairs,
            "log_pairs": result.log_pairs,
        },
        "config": asdict(config),
        "started": started.isoformat(timespec="seconds"),
        "seconds": result.seconds,
        "losses": result.losses,
        "versions": {
            "sentence_transformers": sentence_transformers.__version__,
            "torch": torch.__version__,
        },
    }
    (result.out / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", "utf-8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line flags of embedder training, for this module and `scripts/retrain.py`."""
    defaults = EmbedderTrainingConfig()
    parser.add_argument("--faq", type=Path, required=True, help="FAQ file or folder to train on")
    parser.add_argument(
        "--pairs", type=Path, help='logged questions, JSON Lines {"query", "faq_id"}'
    )
    parser.add_argument("--out", type=Path, required=True, help="new model folder to write")
    parser.add_argument(
        "--base",
        default="all-MiniLM-L6-v2",
        help="embedder to start from: packaged name or model folder (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=float, default=defaults.epochs, help="passes over the pairs"
    )
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="pairs per training step"
    )
    parser.add_argument(
        "--max-pairs",
        type=int,
        default=defaults.max_pairs,
        help="train on at most this many pairs, taken evenly from every entry "
        "(default: %(default)s; 0 for all)",
    )


def run(args: argparse.Namespace) -> int:
    """Train from parsed `add_arguments` flags; prints a summary, returns the exit status."""
    if args.epochs <= 0 or args.batch_size < 2 or args.max_pairs < 0:
        print("error: --epochs must be > 0, --batch-size >= 2, --max-pairs >= 0", file=sys.stderr)
        return 2
    config = EmbedderTrainingConfig(
        epochs=args.epochs, batch_size=args.batch_size, max_pairs=args.max_pairs or None
    )
    try:
        entries, problems = read_faq(args.faq)
        for problem in problems:
            print(f"warning: skipped {problem}", file=sys.stderr)
        logged = read_logged_queries(args.pairs) if args.pairs else []
        result = train_embedder(
            args.base,
            entries,
            logged,
            out=args.out,
            config=config,
            progress=sys.stderr.isatty(),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"trained {result.out} from {result.base}: {result.entries} entries, "
        f"{result.faq_pairs} paraphrase pairs + {result.log_pairs} logged pairs, "
        f"{result.seconds:.0f} s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Models come from local folders only; never wait on a hub that is not reachable.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
