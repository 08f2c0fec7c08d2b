"""Plain-text documents with `Q:` and `A:` lines (or `Question:` and `Answer:`)."""

from __future__ import annotations

import logging
from pathlib import Path

from retrieval.loaders._base import LoadError, Parsed, decode_text
from retrieval.loaders._qa import has_qa_markers, parse_qa

log = logging.getLogger(__name__)


def load_text(path: Path, data: bytes) -> Parsed:
    """Read `Q:`/`A:` pairs from a text file; an answer may run over several lines."""
    text = decode_text(path, data).replace("\r\n", "\n").replace("\r", "\n")
    lines = [(line, f"line {n}") for n, line in enumerate(text.split("\n"), start=1)]
    if not has_qa_markers(lines):
        raise LoadError(
            path,
            "no 'Q:' lines found; a plain-text FAQ needs 'Q:' and 'A:' "
            "(or 'Question:' and 'Answer:') at the start of lines",
        )
    return parse_qa(path, lines)
