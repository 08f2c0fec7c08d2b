"""Chat with the bot in the terminal: streamed answers with their sources, sentiment and action.

    python scripts/chat.py [--import PATH]... [--tune-queries FILE] [--kb DIR] [--user NAME]

Reads one message per line, so it also works with piped input. /reset starts a new
conversation, /quit (or end of input) leaves. The conversation continues across restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path

from _cli import add_common, setup

from engine import Engine, FinalReply, TextDelta
from engine.log import log_config_for
from engine.runtime import open_engine
from engine.settings import Settings
from retrieval import IndexMissing, import_paths, tune_and_store_threshold
from retrieval.embedders import configured_embedder


def describe(final: FinalReply) -> str:
    """One compact line: action and reason, the source entry, the customer's sentiment."""
    parts = [f"{final.action}: {final.reason}"]
    if final.action == "answer" and final.hits:
        best = final.hits[0]
        parts.append(f"source {best.entry.source} · {best.entry.question!r} ({best.score:.2f})")
    signals = f" {','.join(final.sentiment.signals)}" if final.sentiment.signals else ""
    parts.append(f"sentiment {final.sentiment.label} {final.sentiment.score:+.2f}{signals}")
    return "  [" + " | ".join(parts) + "]"


async def converse(engine: Engine, user: str, interactive: bool) -> None:
    conversation = await engine.conversation("terminal", user)
    while True:
        prompt = "you> " if interactive else ""
        line = await asyncio.to_thread(_read_line, prompt)
        if line is None or line.strip() in {"/quit", "/exit"}:
            return
        text = line.strip()
        if not text:
            continue
        if text == "/reset":
            conversation = await engine.conversation("terminal", user, new=True)
            print("(new conversation)")
            continue
        if interactive:
            print("bot> ", end="", flush=True)
        streamed = ""
        async for event in engine.reply(conversation, text):
            if isinstance(event, TextDelta):
                streamed += event.text
                if interactive:
                    print(event.text, end="", flush=True)
            elif isinstance(event, FinalReply):
                if not interactive:
                    print(event.text)
                elif event.text != streamed:  # the grounding check replaced the generated text
                    print(f"\n(corrected) {event.text}")
                else:
                    print()
                print(describe(event), flush=True)


def _read_line(prompt: str) -> str | None:
    try:
        return input(prompt) if prompt else sys.stdin.readline() or None
    except EOFError:
        return None


def prepare(settings: Settings, imports: list[Path], tune: Path | None) -> None:
    """Import documents and tune the threshold before chatting, when asked to."""
    config = settings.retrieval
    if not imports and tune is None:
        return
    embedder = configured_embedder(config)
    if imports:
        report = import_paths(
            imports, config.kb_dir, embedder, config, settings.importing, progress=False
        )
        for problem in report.problems:
            print(f"import: {problem}", file=sys.stderr)
    if tune is not None:
        tune_and_store_threshold(
            config.kb_dir, embedder, config, tune, keep=settings.importing.keep_versions
        )


async def run(settings: Settings, user: str) -> int:
    try:
        async with open_engine(settings) as engine:
            interactive = sys.stdin.isatty()
            if interactive:
                print("Ask a question about the shop. /reset starts over, /quit leaves.")
            await converse(engine, user, interactive)
    except IndexMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


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
        "--tune-queries", type=Path, help="labelled queries to tune the out-of-scope threshold on"
    )
    parser.add_argument("--kb", type=Path, help="knowledge-base folder (default: from config)")
    parser.add_argument(
        "--log-db", help="conversation log: a file or a database URL (default: from config)"
    )
    parser.add_argument("--user", default="local", help="whose conversation this is")
    add_common(parser)
    args = parser.parse_args(argv)
    settings = setup(args)
    if args.kb is not None:
        settings = replace(settings, retrieval=replace(settings.retrieval, kb_dir=args.kb))
    if args.log_db is not None:
        settings = replace(settings, log=log_config_for(args.log_db, settings.log))
    prepare(settings, args.imports, args.tune_queries)
    return asyncio.run(run(settings, args.user))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print()
        sys.exit(0)
