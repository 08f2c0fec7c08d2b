"""Simulate logged traffic on an FAQ, then retrain from it and print the report.

demo_retrain.py [--faq examples/kb] [--conversations 60] [--work var/demo] [--what lora]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

from _cli import add_common, setup

from retrieval import ImportConfig, import_paths, load_embedder
from training.loop import RunOptions, run_retraining
from training.simulate import simulate_log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common(parser)
    parser.add_argument("--faq", type=Path, default=Path("examples/kb"), help="FAQ to simulate on")
    parser.add_argument("--conversations", type=int, default=60, help="simulated conversations")
    parser.add_argument("--work", type=Path, default=Path("var/demo"), help="fresh work folder")
    parser.add_argument("--what", default="lora,sentiment", help="kinds to retrain")
    parser.add_argument("--epochs", type=float, default=1.0, help="LoRA epochs")
    args = parser.parse_args(argv)
    settings = setup(args)
    shutil.rmtree(args.work, ignore_errors=True)
    retrieval = dataclasses.replace(settings.retrieval, kb_dir=args.work / "kb")
    training = dataclasses.replace(
        settings.training,
        models_dir=args.work / "models",
        runs_dir=args.work / "runs",
        lora_epochs=args.epochs,
        min_dialogues=10,
        min_sentiment=10,
    )
    settings = dataclasses.replace(settings, retrieval=retrieval, training=training)
    embedder = load_embedder(retrieval.embedder, batch_size=retrieval.batch_size)
    import_paths([args.faq], retrieval.kb_dir, embedder, retrieval, ImportConfig(), progress=False)
    from retrieval.store import read_snapshot

    entries = read_snapshot(retrieval.kb_dir, retrieval).entries
    log_db = args.work / "conversations.db"
    written = simulate_log(log_db, entries, conversations=args.conversations)
    print(f"simulated {written} conversations in {log_db}")
    what = tuple(k.strip() for k in args.what.split(",") if k.strip())
    summary = run_retraining(settings, RunOptions(log_db=log_db, what=what))
    print(summary.report.read_text(encoding="utf-8"))
    print(f"report: {summary.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
