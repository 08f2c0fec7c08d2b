"""Prove the retraining loop: traffic through the engine, retrain, held-out scores before/after.

demo_retrain.py [--faq ../shared/data/hint3-curekart/faq.jsonl]
                [--queries ../shared/data/hint3-curekart/queries_dev.jsonl]
                [--what embedder] [--epochs 3] [--gate-share 0] [--work var/demo]
                [--hide-share 0.5 [--json]]

Every other in-scope labelled query is held out; the rest (and the out-of-scope ones) are asked
by simulated customers through Engine.reply, who rate answers and get operators on hand-overs.
With --gate-share, that share of the held-out queries goes to the embedder gate instead (never
scored in the printout, never trained on).

With --hide-share, the loop learns from hand-overs instead (training/handover_sim.py): that
share of the entries is missing from the starting knowledge base, operators answer what the bot
hands over, the drafts are approved as they are and gated, and held-out customers are scored
before and after; with --json the last line holds the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

from _cli import add_common, setup

from engine.settings import Settings
from retrieval import ImportConfig, import_paths, load_embedder
from retrieval.entries import FaqEntry
from retrieval.evaluation import tune_and_store_threshold
from training.handover_sim import prove_handover_loop
from training.simulate import CustomerPolicy, Question, prove_loop, read_questions

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "hint3-curekart"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common(parser)
    parser.add_argument("--faq", type=Path, default=SHARED / "faq.jsonl", help="FAQ to import")
    parser.add_argument(
        "--queries", type=Path, default=SHARED / "queries_dev.jsonl", help="labelled queries"
    )
    parser.add_argument("--work", type=Path, default=Path("var/demo"), help="fresh work folder")
    parser.add_argument("--what", default="embedder", help="kinds to retrain")
    parser.add_argument("--epochs", type=float, default=3.0, help="embedder and LoRA epochs")
    parser.add_argument("--upset-share", type=float, default=0.1, help="customers who complain")
    parser.add_argument(
        "--gate-share", type=float, default=0.0, help="held-out share the embedder gate scores"
    )
    parser.add_argument(
        "--hide-share",
        type=float,
        help="learn from hand-overs instead: hide this share of the FAQ's entries, let "
        "operators answer them, approve the drafts, gate and score held-out customers",
    )
    parser.add_argument("--json", action="store_true", help="last line: the figures as JSON")
    args = parser.parse_args(argv)
    settings = setup(args)
    shutil.rmtree(args.work, ignore_errors=True)
    if args.hide_share is not None:
        return _from_handovers(args, settings)
    retrieval = dataclasses.replace(settings.retrieval, kb_dir=args.work / "kb")
    training = dataclasses.replace(
        settings.training,
        models_dir=args.work / "models",
        runs_dir=args.work / "runs",
        embedder_epochs=args.epochs,
        lora_epochs=args.epochs,
        min_pairs=10,
        min_dialogues=10,
        min_sentiment=10,
    )
    log = dataclasses.replace(settings.log, url="", path=args.work / "conversations.db")
    settings = dataclasses.replace(settings, retrieval=retrieval, training=training, log=log)

    questions = read_questions(args.queries)
    in_scope = [q for q in questions if q.faq_id is not None]
    traffic = in_scope[0::2] + [q for q in questions if q.faq_id is None]
    held_out = in_scope[1::2]
    # Spread over the file, which lists queries intent by intent.
    share = args.gate_share
    to_gate = [int((i + 1) * share) > int(i * share) for i in range(len(held_out))]
    gate = [q for q, g in zip(held_out, to_gate, strict=True) if g]
    held_out = [q for q, g in zip(held_out, to_gate, strict=True) if not g]
    gate_file = args.work / "gate-queries.jsonl" if gate else None
    if gate_file is not None:
        _write(gate_file, gate)
    embedder = load_embedder(retrieval.embedder, batch_size=retrieval.batch_size)
    # Intent data sets have questions only; their entries' answers are empty.
    import_paths(
        [args.faq],
        retrieval.kb_dir,
        embedder,
        retrieval,
        ImportConfig(max_file_mb=512),
        allow_empty_answers=True,
        progress=False,
    )
    tune = args.work / "traffic-queries.jsonl"
    _write(tune, traffic)
    tune_and_store_threshold(retrieval.kb_dir, embedder, retrieval, tune, keep=3)

    started = time.perf_counter()
    what = tuple(k.strip() for k in args.what.split(",") if k.strip())
    proof = asyncio.run(
        prove_loop(
            settings,
            traffic,
            held_out,
            what=what,
            evaluation_log=args.work / "held-out.db",
            policy=CustomerPolicy(upset_share=args.upset_share),
            gate_queries=gate_file,
        )
    )
    stats = proof.traffic
    print(
        f"traffic: {len(traffic)} questions, {len(held_out)} held out, {len(gate)} for the gate, "
        f"from {args.queries}"
    )
    print(
        f"through Engine.reply: {stats.answered_right} answered right, {stats.answered_wrong} "
        f"wrong, {stats.clarified} clarified; {stats.liked} 👍 {stats.disliked} 👎; "
        f"{stats.handed_over} hand-overs, {stats.operator_turns} operator answers"
    )
    for outcome in proof.summary.outcomes:
        verdict = outcome.verdict.reason if outcome.verdict else ""
        print(f"{outcome.kind}: {outcome.note} {verdict}")
    for name, score in (("before", proof.before), ("after", proof.after)):
        print(
            f"held-out {name}: engine top-1 {score.top1:.4f}, answered at once "
            f"{score.answered:.4f} (n={score.questions}); embedder {score.versions['embedder']}"
        )
    print(f"held-out embedder ranking before: {proof.ranking_before}")
    print(f"held-out embedder ranking after:  {proof.ranking_after}")
    print(f"report: {proof.summary.report}  ({time.perf_counter() - started:.0f} s)")
    return 0


def _from_handovers(args: argparse.Namespace, settings: Settings) -> int:
    if not 0 < args.hide_share < 1:
        print(
            f"error: --hide-share must be between 0 and 1, got {args.hide_share}", file=sys.stderr
        )
        return 2
    settings = dataclasses.replace(
        settings,
        retrieval=dataclasses.replace(settings.retrieval, kb_dir=args.work / "kb"),
        log=dataclasses.replace(settings.log, url="", path=args.work / "conversations.db"),
    )
    embedder = load_embedder(settings.retrieval.embedder, batch_size=settings.retrieval.batch_size)
    started = time.perf_counter()
    proof = asyncio.run(
        prove_handover_loop(
            settings,
            embedder,
            read_entries(args.faq),
            read_questions(args.queries),
            hide_share=args.hide_share,
            evaluation_log=args.work / "held-out.db",
            policy=CustomerPolicy(upset_share=args.upset_share),
        )
    )
    figures = proof.summary() | {"seconds": round(time.perf_counter() - started, 1)}
    stats = proof.traffic
    print(
        f"{figures['entries']} entries, {figures['hidden']} hidden from the knowledge base; "
        f"{figures['traffic']} traffic questions, {figures['held_out']} held out ({args.queries})"
    )
    print(
        f"traffic through Engine.reply: {stats.answered_right} answered right, "
        f"{stats.answered_wrong} wrong, {stats.handed_over} hand-overs answered by the operator"
    )
    print(
        f"drafts approved as they are: {figures['drafts_new']} new entries, "
        f"{figures['drafts_alternatives']} with new alternative questions"
    )
    print(f"gate: {figures['gate']}")
    print(
        f"held-out customers: resolution {figures['resolution_before']:.4f} -> "
        f"{figures['resolution_after']:.4f}, wrong {figures['wrong_before']:.4f} -> "
        f"{figures['wrong_after']:.4f}  ({figures['seconds']:.0f} s)"
    )
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    return 0


def read_entries(path: Path) -> list[FaqEntry]:
    """The FAQ's entries, JSON Lines in the importer's format."""
    with path.open(encoding="utf-8") as fh:
        return [FaqEntry.from_json(json.loads(line)) for line in fh if line.strip()]


def _write(path: Path, questions: list[Question]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps({"query": q.text, "faq_id": q.faq_id}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
