"""Import FAQ documents into the knowledge base.

    python scripts/import_faq.py PATH... [--kb DIR] [--replace]

Exit status: 0 when everything imported, 1 when some files or entries were rejected (the good
ones are imported all the same), 2 when nothing could be imported.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from _cli import add_common, setup

from retrieval import (
    ImportBusy,
    ImportReport,
    NothingToImport,
    import_paths,
    tune_and_store_threshold,
)
from retrieval.embedders import DeferredEmbedder


def print_problems(report: ImportReport) -> None:
    for problem in report.skipped_files:
        print(f"skipped file: {problem}", file=sys.stderr)
    for problem in report.rejected:
        print(f"rejected: {problem}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders to import")
    parser.add_argument("--kb", type=Path, help="knowledge-base folder (default: from config)")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="make the knowledge base exactly these documents (entries not in them are removed)",
    )
    parser.add_argument(
        "--tune-queries",
        type=Path,
        help="labelled queries (JSONL query/faq_id) to tune the out-of-scope threshold on",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(parser)
    args = parser.parse_args(argv)
    settings = setup(args)
    config = settings.retrieval if args.kb is None else replace(settings.retrieval, kb_dir=args.kb)
    # Loaded only when something is embedded: an unchanged re-import never loads the model.
    embedder = DeferredEmbedder(config)
    try:
        report = import_paths(
            args.paths,
            config.kb_dir,
            embedder,
            config,
            settings.importing,
            replace=args.replace,
            progress=not args.no_progress,
        )
    except NothingToImport as exc:
        print_problems(exc.report)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_problems(report)
    print(f"imported {len(report.files)} file(s) into {config.kb_dir}: {report.summary()}")
    if report.kept_from_skipped:
        print(f"kept {report.kept_from_skipped} entries of skipped files")
    for note in report.notes:
        print(note)
    if report.changed:
        print(f"embedded {report.embedded} new question(s); live version {report.version}")
    else:
        print(f"nothing changed; live version {report.version}")
    if report.calibration is not None:
        found = report.calibration
        print(
            f"out-of-scope threshold {found.threshold:.4f} ({found.source}); score weights: "
            f"centroid {found.weights.centroid}, lexical {found.weights.lexical}"
        )
    if args.tune_queries is not None:
        tuned = tune_and_store_threshold(
            config.kb_dir,
            embedder,
            config,
            args.tune_queries,
            keep=settings.importing.keep_versions,
        )
        if tuned is None:
            print("threshold not tuned: the queries hold no out-of-scope examples")
        else:
            print(f"out-of-scope threshold {tuned[0]:.4f} ({tuned[1]})")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
