"""`python -m engine.log --db PATH`: print the conversation log's report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.log.config import LogConfig
from engine.log.report import report


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, print the report and return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m engine.log", description=__doc__)
    parser.add_argument("--db", type=Path, default=LogConfig().path, help="the log file")
    parser.add_argument("--top", type=int, default=10, help="unanswered questions to list")
    args = parser.parse_args(argv)
    try:
        print(report(args.db, top=args.top).render())
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
