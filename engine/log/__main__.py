"""The conversation log's command line.

python -m engine.log [report] [--db PATH|URL] [--top N] [--since YYYY-MM-DD]
                     [--until YYYY-MM-DD] [--channel NAME] [--html FILE]
                                                             print the report of the
                                                             conversations started in the
                                                             period, on the channel (and
                                                             write an HTML one with charts)
python -m engine.log copy --from PATH|URL --to PATH|URL      copy a log, then compare both

Without --db the report reads the log that [log] names in --config FILE (default
./supportbot.toml when present, else var/conversations.db).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.log.config import LogConfig, log_config_for
from engine.log.copy import copy_log
from engine.log.export import read_log
from engine.log.port import ConversationStore
from engine.log.report import report
from engine.log.summary import BadPeriod, Period, channels_of


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the command and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args[:1] in (["report"], ["copy"]) else "report"
    try:
        return _copy(args) if command == "copy" else _report(args)
    except (FileNotFoundError, RuntimeError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.log [report]", description="Print the conversation log's report."
    )
    parser.add_argument("--db", help="the log: a file or a database URL (default: [log])")
    parser.add_argument("--config", type=Path, help="TOML settings (default: ./supportbot.toml)")
    parser.add_argument("--top", type=int, default=10, help="unanswered questions to list")
    parser.add_argument("--since", help="conversations started from this UTC day (YYYY-MM-DD)")
    parser.add_argument("--until", help="up to this UTC day, included (YYYY-MM-DD)")
    parser.add_argument(
        "--channel", help="one channel the log holds (telegram, web, terminal, ...; all: every one)"
    )
    parser.add_argument("--html", type=Path, help="also write a self-contained HTML report here")
    args = parser.parse_args(argv)
    # Imported here: the settings import this package, and only this entry point needs them.
    from engine.settings import load_settings

    config = load_settings(args.config).log
    target = log_config_for(args.db, config) if args.db else config
    try:
        period = Period.of_days(args.since, args.until, args.channel)
        if period.channel is not None:  # a misspelt channel is refused, not counted as zero
            asked = period.channel
            channels = read_log(target, lambda store: channels_of(store, asked))
            period = Period.of_days(args.since, args.until, asked, channels=channels)
    except BadPeriod as error:
        raise ValueError(f"--{error}") from None  # --since='May': ... as the option is written
    print(report(target, top=args.top, period=period).render())
    if args.html:
        _html(target, args.html, args.top, period, args.since, args.until)
    return 0


def _html(
    target: LogConfig, path: Path, top: int, period: Period, since: str | None, until: str | None
) -> None:
    from engine import analytics, analytics_html

    channel = period.channel

    async def figures_of(store: ConversationStore) -> analytics.Figures:
        # The same period as the text report's.
        return await analytics.compute(
            store, since=period.since, until=period.until, channel=channel
        )

    figures = read_log(target, figures_of)
    groups = analytics.group_questions(
        figures.questions, analytics.words_encode, top=top, answers=figures.answers
    )
    html = analytics_html.html_report(figures, groups, since=since, until=until, channel=channel)
    path.write_text(html, encoding="utf-8")
    print(f"HTML report written to {path}", file=sys.stderr)


def _copy(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.log copy",
        description="Copy a conversation log into another store (created if empty), then "
        "compare row counts and a content checksum. Safe to run again: rows with the same ids "
        "are replaced, nothing is doubled.",
    )
    parser.add_argument("--from", dest="source", required=True, help="file or URL to read")
    parser.add_argument("--to", dest="target", required=True, help="file or URL to write")
    parser.add_argument("--batch", type=int, default=200, help="conversations per transaction")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    result = asyncio.run(
        copy_log(
            log_config_for(args.source),
            log_config_for(args.target),
            batch_size=args.batch,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    )
    print(result.render())
    if not result.identical:
        print(
            "error: the logs differ after the copy; was the source written to meanwhile, or "
            "did the target already hold other conversations? Run the copy again, or copy "
            "into an empty database.",
            file=sys.stderr,
        )
        return 1
    print("identical: row counts and checksum match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
