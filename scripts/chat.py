"""Chat with the knowledge base in the terminal: type a question, get the answer it finds.

    python scripts/chat.py [--import PATH]... [--tune-queries FILE] [--kb DIR]

Reads one question per line, so it also works with piped input. /quit (or end of input) ends it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from _cli import add_common, setup

from retrieval import (
    IndexMissing,
    KnowledgeBase,
    SearchResult,
    import_paths,
    load_embedder,
    tune_and_store_threshold,
)


def render(result: SearchResult) -> str:
    """The reply shown for one search: the answer with its source, or an honest refusal."""
    best = result.best
    if best is None or not result.in_scope:
        lines = ["Sorry, I could not find that in our help centre. I can pass you to a human."]
        if best is not None:
            lines.append(f"  (closest: {best.entry.question!r}, score {best.score:.2f})")
        return "\n".join(lines)
    also = [h for h in result.hits[1:3] if h.score >= result.threshold]
    lines = [
        best.entry.answer,
        f"  source: {best.entry.source} · {best.entry.question!r} · score {best.score:.2f}",
    ]
    if also:
        lines.append("  related: " + "; ".join(repr(h.entry.question) for h in also))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--import",
        dest="imports",
        type=Path,
        action="append",
        default=[],
        help="import these documents first (incremental; repeatable)",
    )
    parser.add_argument(
        "--tune-queries",
        type=Path,
        help="labelled queries to tune the out-of-scope threshold on first",
    )
    parser.add_argument("--kb", type=Path, help="knowledge-base folder (default: from config)")
    add_common(parser)
    args = parser.parse_args(argv)
    settings = setup(args)
    config = settings.retrieval if args.kb is None else replace(settings.retrieval, kb_dir=args.kb)
    embedder = load_embedder(config.embedder, batch_size=config.batch_size)
    if args.imports:
        report = import_paths(
            args.imports, config.kb_dir, embedder, config, settings.importing, progress=False
        )
        for problem in report.problems:
            print(f"import: {problem}", file=sys.stderr)
    if args.tune_queries:
        tune_and_store_threshold(
            config.kb_dir,
            embedder,
            config,
            args.tune_queries,
            keep=settings.importing.keep_versions,
        )
    try:
        kb = KnowledgeBase(config.kb_dir, embedder, config)
    except IndexMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    interactive = sys.stdin.isatty()
    if interactive:
        print(
            f"Knowledge base {kb.version}: {len(kb.snapshot.entries)} entries. "
            "Ask a question (/quit to leave)."
        )
    for line in sys.stdin if not interactive else iter(lambda: input("you> "), None):
        text = line.strip()
        if text in {"/quit", "/exit"}:
            break
        if not text:
            continue
        kb.refresh()
        print(("bot> " if interactive else "") + render(kb.search(text)), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, EOFError):
        print()
        sys.exit(0)
