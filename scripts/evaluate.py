"""Measure how well the bot finds the right FAQ entry and recognises out-of-scope questions.

    python scripts/evaluate.py retrieval --faq FAQ.jsonl --queries QUERIES.jsonl \\
        [--tune-queries DEV.jsonl] [--embedder NAME_OR_PATH] [--json]

With --json the last line of stdout is one JSON object with the metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from _cli import add_common, setup

from retrieval import evaluate_faq, load_embedder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ret = sub.add_parser("retrieval", help="retrieval and out-of-scope metrics")
    ret.add_argument("--faq", type=Path, required=True, help="knowledge base as FAQ JSONL")
    ret.add_argument("--queries", type=Path, required=True, help="labelled queries to score")
    ret.add_argument("--tune-queries", type=Path, help="labelled queries to tune the threshold on")
    ret.add_argument("--embedder", help="embedder name or model folder (default: from config)")
    ret.add_argument("--json", action="store_true", help="print the metrics as JSON last")
    add_common(ret)
    args = parser.parse_args(argv)
    settings = setup(args)
    config = settings.retrieval
    if args.embedder:
        config = replace(config, embedder=args.embedder)
    for path in (args.faq, args.queries, args.tune_queries):
        if path is not None and not path.exists():
            parser.error(f"{path}: no such file")
    try:
        embedder = load_embedder(config.embedder, batch_size=config.batch_size)
        result = evaluate_faq(
            args.faq,
            args.queries,
            embedder,
            config,
            tune_queries=args.tune_queries,
            progress=sys.stderr.isatty(),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in result.import_report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    metrics = asdict(result.metrics)
    print(f"embedder   {embedder.name} ({result.index} index)")
    print(f"threshold  {result.metrics.threshold:.4f} ({result.threshold_source})")
    for key, value in metrics.items():
        shown = "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:<18} {shown}")
    if args.json:
        print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
