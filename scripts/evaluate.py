"""Measure the bot: retrieval, whole answers, and sentiment.

    python scripts/evaluate.py retrieval --faq FAQ.jsonl --queries QUERIES.jsonl \\
        [--tune-queries DEV.jsonl] [--embedder NAME_OR_PATH] [--backend NAME] \\
        [--compare nearest] [--json]
    python scripts/evaluate.py answers --faq FAQ.jsonl --queries QUERIES.jsonl \\
        [--tune-queries DEV.jsonl] [--generator NAME] [--why] [--json]
    python scripts/evaluate.py followups --faq DIR_OR_FILE --dialogues DIALOGUES.jsonl \\
        [--tune-queries DEV.jsonl] [--json]
    python scripts/evaluate.py sentiment --test FILE [--train FILE | --split SEED] \\
        [--model lexicon|classifier|llm] [--generator NAME] [--limit N] [--save DIR] [--json]

With --json the last line of stdout is one JSON object with the metrics (for retrieval, also
the embedder the knowledge base was built with); the importer's notes then go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

from _cli import add_common, setup

from engine.evaluation import (
    Misses,
    evaluate_answers,
    evaluate_followups,
    evaluation_engine,
    read_dialogues,
)
from engine.generators import load_generator
from engine.sentiment import (
    SentimentModel,
    evaluate_sentiment,
    load_sentiment,
    read_labelled,
    split_half,
    train,
)
from engine.settings import Settings
from retrieval import evaluate_faq, evaluation_kb, load_embedder, read_queries
from retrieval.embedders import BACKENDS, configured_embedder


def print_metrics(metrics: Mapping[str, object], as_json: bool) -> None:
    for key, value in metrics.items():
        shown = "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:<18} {shown}")
    if as_json:
        print(json.dumps(metrics))


def retrieval_command(args: argparse.Namespace, settings: Settings) -> int:
    config = settings.retrieval
    if args.embedder:
        config = replace(config, embedder=args.embedder)
    if args.backend:
        config = replace(config, backend=args.backend)
    embedder = configured_embedder(config)
    result = evaluate_faq(
        args.faq,
        args.queries,
        embedder,
        config,
        tune_queries=args.tune_queries,
        progress=sys.stderr.isatty(),
        compare_nearest=args.compare == "nearest",
    )
    for problem in result.import_report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    # With --json the notes go to stderr, so that stdout ends with the metrics alone.
    for note in result.import_report.notes:
        print(f"note: {note}", file=sys.stderr if args.json else sys.stdout)
    print(
        f"embedder   {embedder_line(result.embedder, embedder.name, config.backend, result.index)}"
    )
    print(f"threshold  {result.metrics.threshold:.4f} ({result.threshold_source})")
    metrics: dict[str, object] = asdict(result.metrics)
    if args.compare == "nearest":
        weights = result.weights
        assert weights is not None
        print(f"weights    centroid {weights.centroid:.2f}, lexical {weights.lexical:.2f}")
        metrics |= {
            "centroid_weight": weights.centroid,
            "lexical_weight": weights.lexical,
            "nearest_recall_at_1": result.nearest_recall_at_1,
        }
    print_metrics(metrics, False)
    if args.json:
        print(json.dumps(metrics | {"embedder": result.embedder}))
    return 0


def embedder_line(used: str, configured: str, backend: str, index: str) -> str:
    """The embedder the knowledge base was built with, and why when it is not the configured
    one (the importer picks a multilingual one for languages the configured one cannot read,
    and that one runs on its own engine, whatever the backend)."""
    if used == configured:
        return f"{used} ({backend} backend, {index} index)"
    return f"{used} (chosen by the importer instead of {configured}, {index} index)"


async def answers_command(args: argparse.Namespace, settings: Settings) -> int:
    generator_config = settings.generator
    if args.generator:
        generator_config = replace(generator_config, backend=args.generator)
    config = settings.retrieval
    embedder = load_embedder(config.embedder, batch_size=config.batch_size)
    queries = read_queries(args.queries)
    with evaluation_kb(args.faq, embedder, config, tune_queries=args.tune_queries) as (kb, _):
        async with evaluation_engine(kb, generator_config, settings.engine_config) as engine:
            misses = Misses() if args.why else None
            metrics = await evaluate_answers(
                engine, queries, progress=sys.stderr.isatty(), misses=misses
            )
        print(f"generator  {generator_config.backend}; threshold {kb.threshold:.4f}")
        if misses is not None:
            for kind, count in misses.counts.most_common():
                print(f"miss  {count:>5}  {kind}: " + " | ".join(misses.examples[kind]))
    print_metrics(asdict(metrics), args.json)
    return 0


async def followups_command(args: argparse.Namespace, settings: Settings) -> int:
    config = settings.retrieval
    embedder = load_embedder(config.embedder, batch_size=config.batch_size)
    dialogues = read_dialogues(args.dialogues)
    metrics = {}
    with evaluation_kb(args.faq, embedder, config, tune_queries=args.tune_queries) as (kb, _):
        for memory in (True, False):
            engine_config = replace(settings.engine_config, contextual_queries=memory)
            async with evaluation_engine(kb, settings.generator, engine_config) as engine:
                result = await evaluate_followups(engine, dialogues, progress=sys.stderr.isatty())
            metrics[f"memory_{'on' if memory else 'off'}"] = asdict(result)
        print(f"generator  {settings.generator.backend}; threshold {kb.threshold:.4f}")
    on, off = metrics["memory_on"], metrics["memory_off"]
    print(f"{'dialogues':<18} {len(dialogues)}\n{'':<18} {'memory on':>10} {'memory off':>10}")
    for key in on:
        if key != "n":
            shown = ["n/a" if v is None else f"{v:.4f}" for v in (on[key], off[key])]
            print(f"{key:<18} {shown[0]:>10} {shown[1]:>10}")
    if args.json:
        print(json.dumps({"n": len(dialogues)} | metrics))
    return 0


def sentiment_command(args: argparse.Namespace, settings: Settings) -> int:
    test = read_labelled(args.test)[: args.limit]
    train_rows = read_labelled(args.train) if args.train else None
    if args.split is not None:
        train_rows, test = split_half(test, args.split)
    if args.model == "classifier" and train_rows is not None:
        embedder = load_embedder(settings.retrieval.embedder)
        classifier = train(train_rows, embedder)
        if args.save:
            classifier.save(args.save)
            print(f"saved classifier to {args.save}")
        model: SentimentModel = classifier
    else:
        if train_rows is not None:
            print("error: --train/--split only apply to --model classifier", file=sys.stderr)
            return 2
        generator = None
        if args.model == "llm":
            backend = args.generator or settings.generator.backend
            generator = load_generator(replace(settings.generator, backend=backend))
        sentiment = replace(settings.sentiment, model=args.model)
        model = load_sentiment(sentiment, generator, settings.retrieval)
    print(
        f"model      {model.name}; trained on {len(train_rows or [])} rows, tested on {len(test)}"
    )
    print_metrics(evaluate_sentiment(model, test), args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ret = sub.add_parser("retrieval", help="retrieval and out-of-scope metrics")
    ans = sub.add_parser("answers", help="the whole engine: right answers, honest refusals")
    for cmd in (ret, ans):
        cmd.add_argument("--faq", type=Path, required=True, help="knowledge base (FAQ JSONL)")
        cmd.add_argument("--queries", type=Path, required=True, help="labelled queries to score")
        cmd.add_argument("--tune-queries", type=Path, help="labelled queries to tune the threshold")
        cmd.add_argument("--json", action="store_true", help="print the metrics as JSON last")
        add_common(cmd)
    ret.add_argument("--embedder", help="embedder name or model folder (default: from config)")
    ret.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        help="how the embedder runs: torch, onnx, onnx-int8 (default: from config)",
    )
    ret.add_argument(
        "--compare",
        choices=["nearest"],
        help="also score plain nearest-question (nearest_recall_at_1) on the same index",
    )
    ans.add_argument("--generator", help="generator backend (default: from config)")
    ans.add_argument(
        "--why",
        action="store_true",
        help="also print the misses by kind (wrong entry, asked back, handed over and why)",
    )
    fol = sub.add_parser("followups", help="follow-up questions with dialogue memory on and off")
    fol.add_argument("--faq", type=Path, required=True, help="knowledge base (folder or file)")
    fol.add_argument(
        "--dialogues", type=Path, required=True, help="JSONL {turns: [...], faq_id, standalone}"
    )
    fol.add_argument("--tune-queries", type=Path, help="labelled queries to tune the threshold")
    fol.add_argument("--json", action="store_true", help="print the metrics as JSON last")
    add_common(fol)
    sen = sub.add_parser("sentiment", help="sentiment label quality")
    sen.add_argument("--test", type=Path, required=True, help="labelled JSONL {text, label}")
    sen.add_argument("--train", type=Path, help="fit the classifier on this labelled JSONL first")
    sen.add_argument(
        "--split",
        type=int,
        metavar="SEED",
        help="train on one stratified half of --test, test on the other",
    )
    sen.add_argument("--model", default="lexicon", help="lexicon, classifier or llm")
    sen.add_argument(
        "--generator", help="llm: the generator that picks labels (default: from config)"
    )
    sen.add_argument("--limit", type=int, help="score only the first N test rows")
    sen.add_argument("--save", type=Path, help="save the trained classifier to this folder")
    sen.add_argument("--json", action="store_true", help="print the metrics as JSON last")
    add_common(sen)
    args = parser.parse_args(argv)
    settings = setup(args)
    for name in ("faq", "queries", "dialogues", "tune_queries", "test", "train"):
        path = getattr(args, name, None)
        if path is not None and not path.exists():
            parser.error(f"{path}: no such file")
    try:
        if args.command == "retrieval":
            return retrieval_command(args, settings)
        if args.command == "answers":
            return asyncio.run(answers_command(args, settings))
        if args.command == "followups":
            return asyncio.run(followups_command(args, settings))
        return sentiment_command(args, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
