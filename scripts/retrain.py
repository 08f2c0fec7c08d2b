"""Retrain from the conversation log, roll a model back, or train an embedder directly.

retrain.py [--log-db PATH|URL] [--what embedder,lora,sentiment] [--dry-run] [--labels FILE ...]
           [--queries QUERIES.jsonl]
retrain.py rollback {embedder,lora,sentiment} [--queries QUERIES.jsonl]
retrain.py embedder --faq FAQ.jsonl [--pairs PAIRS.jsonl] --out DIR
retrain.py review [--log-db PATH|URL] [--drafts var/drafts.jsonl] [--no-propose]
                  [--approve-all] [--approve ID ...] [--reject ID ...]
                  [--edit ID [--question TEXT] [--answer TEXT]]
                  [--apply [--queries QUERIES.jsonl] [--train-embedder]]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _cli import add_common, setup

from engine.log import log_config_for
from training.data import PersonalDataFound
from training.loop import ALL_KINDS, RunOptions, roll_back, run_retraining
from training.registry import KINDS


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["rollback"]:
        return _rollback(argv[1:])
    if argv[:1] == ["embedder"]:
        return _embedder(argv[1:])
    if argv[:1] == ["review"]:
        return _review(argv[1:])
    parser = argparse.ArgumentParser(description="Retrain the models from the conversation log.")
    add_common(parser)
    parser.add_argument(
        "--log-db", help="conversation log: a file or a database URL (default: [log] url/path)"
    )
    parser.add_argument(
        "--what",
        default=",".join(ALL_KINDS),
        help="comma-separated kinds to train (default: %(default)s)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="export and count the data; train nothing"
    )
    parser.add_argument(
        "--labels", type=Path, nargs="*", default=[], help='extra JSON Lines {"text", "label"}'
    )
    parser.add_argument(
        "--queries",
        type=Path,
        help='labelled queries {"query", "faq_id"} the embedder gate also scores (never trained '
        "on); after a promotion the out-of-scope threshold is re-tuned on them",
    )
    args = parser.parse_args(argv)
    settings = setup(args)
    options = RunOptions(
        log_db=log_config_for(args.log_db, settings.log) if args.log_db else settings.log,
        what=tuple(k.strip() for k in args.what.split(",") if k.strip()),
        dry_run=args.dry_run,
        labels=tuple(args.labels),
        queries=args.queries,
        progress=sys.stderr.isatty(),
    )
    try:
        summary = run_retraining(settings, options)
    except PersonalDataFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, count in summary.counts.items():
        print(f"{name}: {count['train']} train / {count['validation']} validation")
    for outcome in summary.outcomes:
        if outcome.verdict is None:
            print(f"{outcome.kind}: {outcome.note}")
        else:
            action = "promoted" if outcome.verdict.promote else "kept current"
            print(f"{outcome.kind}: {action} ({outcome.verdict.reason})")
    print(f"report: {summary.report}")
    return 0


def _rollback(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="retrain.py rollback", description="Make the previous model version live again."
    )
    add_common(parser)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument(
        "--queries",
        type=Path,
        help="embedder: labelled queries (JSONL with out-of-scope ones) to tune the out-of-scope "
        "threshold on; without it the one last tuned for the restored embedder is used",
    )
    args = parser.parse_args(argv)
    if args.queries is not None and not args.queries.is_file():
        parser.error(f"--queries: no such file: {args.queries}")
    settings = setup(args)
    try:
        done = roll_back(settings, args.kind, queries=args.queries)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.kind}: {done.version.version} is live again")
    if done.kb_version is not None:
        print(f"knowledge base re-embedded with it as {done.kb_version}; {done.threshold_note}")
    return 0


def _review(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="retrain.py review",
        description="Draft knowledge from answered hand-overs; approve, edit or reject it.",
    )
    add_common(parser)
    parser.add_argument("--log-db", help="conversation log (default: [log] url/path)")
    parser.add_argument(
        "--drafts", type=Path, default=Path("var/drafts.jsonl"), help="drafts file (JSON Lines)"
    )
    parser.add_argument(
        "--no-propose", action="store_true", help="do not read the log for new drafts"
    )
    parser.add_argument("--approve-all", action="store_true", help="approve every pending draft")
    parser.add_argument("--approve", nargs="*", default=[], metavar="ID", help="approve drafts")
    parser.add_argument("--reject", nargs="*", default=[], metavar="ID", help="reject drafts")
    parser.add_argument("--edit", metavar="ID", help="edit a draft's --question or --answer")
    parser.add_argument("--question", help="with --edit: the draft's new question")
    parser.add_argument("--answer", help="with --edit: the draft's new answer")
    parser.add_argument(
        "--apply",
        action="store_true",
        help="put the approved drafts through the gate into a new knowledge-base version",
    )
    parser.add_argument(
        "--queries", type=Path, help='labelled queries {"query", "faq_id"} the gate also asks'
    )
    parser.add_argument(
        "--held-out-share",
        type=float,
        default=0.2,
        help="share of answered hand-overs kept for the gate, never drafted from",
    )
    parser.add_argument(
        "--train-embedder",
        action="store_true",
        help="after the drafts go live, train the embedder on the new pairs (gated too)",
    )
    args = parser.parse_args(argv)
    if args.edit is None and (args.question or args.answer):
        parser.error("--question and --answer go with --edit ID")
    settings = setup(args)
    from training.drafts import decide, read_drafts, write_drafts
    from training.review import apply_approved, propose, render, review_interactively

    log = log_config_for(args.log_db, settings.log) if args.log_db else settings.log
    try:
        if args.no_propose:
            drafts = read_drafts(args.drafts)
        else:
            drafts, added = propose(settings, log, args.drafts, held_out_share=args.held_out_share)
            print(f"{added} new draft(s) from the log; {len(drafts)} in {args.drafts}")
        for draft_id in args.approve:
            drafts = decide(drafts, draft_id, "approved")
        for draft_id in args.reject:
            drafts = decide(drafts, draft_id, "rejected")
        if args.approve_all:
            for draft in [d for d in drafts if d.status == "pending"]:
                drafts = decide(drafts, draft.id, "approved")
        if args.edit is not None:
            drafts = decide(
                drafts,
                args.edit,
                next((d.status for d in drafts if d.id == args.edit), "pending"),
                question=args.question,
                answer=args.answer,
            )
        decided = args.approve or args.reject or args.approve_all or args.edit
        if not decided and sys.stdin.isatty():
            drafts = review_interactively(drafts, input, print)
        write_drafts(args.drafts, drafts)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for draft in drafts:
        print(render(draft))
    if not args.apply:
        return 0
    try:
        applied = apply_approved(
            settings,
            log,
            args.drafts,
            queries=args.queries,
            held_out_share=args.held_out_share,
            train_embedder=args.train_embedder,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    outcome = applied.outcome
    action = f"live as {outcome.kb_version}" if outcome.kb_version else "kept the current one"
    print(f"knowledge base: {action} ({outcome.verdict.reason})")
    for note in (applied.threshold, applied.embedder):
        if note:
            print(note)
    return 0


def _embedder(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="retrain.py embedder", description="Fine-tune the embedder on FAQ paraphrases."
    )
    add_common(parser)
    try:
        from training.embedder import add_arguments, run
    except ImportError as exc:
        print(f"error: embedder training is unavailable: {exc}", file=sys.stderr)
        return 2
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
