"""PDF documents: the text layer, read as `Q:`/`A:` lines or as lines ending in '?'."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from pypdf import PdfReader

from retrieval.loaders._base import LoadError, Parsed, Problem
from retrieval.loaders._qa import Line, has_qa_markers, parse_qa, parse_question_lines

log = logging.getLogger(__name__)

# Running page numbers ("3", "Page 3", "3 / 12", "Page 3 of 12") would end up in answers.
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?\d+(?:\s*(?:/|of)\s*\d+)?\s*$", re.IGNORECASE)


def _open(path: Path, data: bytes) -> tuple[PdfReader, int]:
    """The reader and the page count; pypdf reads lazily, so counting finds most damage."""
    # pypdf raises many exception types on a damaged file; each means the same to the user.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError(path, "the PDF is password-protected; save a copy without a password")
        return reader, len(reader.pages)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(path, f"not a readable PDF ({type(exc).__name__}: {exc})") from None


def load_pdf(path: Path, data: bytes) -> Parsed:
    """Read the text of every page, then find questions by `Q:` markers or trailing '?'."""
    reader, pages = _open(path, data)
    lines: list[Line] = []
    problems: list[Problem] = []
    for number in range(1, pages + 1):
        try:
            text = reader.pages[number - 1].extract_text()
        except Exception as exc:
            reason = f"could not extract the text ({type(exc).__name__}: {exc})"
            problems.append(Problem(str(path), f"page {number}", reason))
            continue
        lines.extend(
            (line, f"page {number}") for line in text.splitlines() if not _PAGE_NUMBER.match(line)
        )
    if not any(text.strip() for text, _ in lines) and not problems:
        raise LoadError(
            path, "PDF has no text layer (scanned images?); run OCR on it first, e.g. ocrmypdf"
        )
    parse = parse_qa if has_qa_markers(lines) else parse_question_lines
    parsed = parse(path, lines)
    parsed.problems = [*problems, *parsed.problems]
    if not parsed.entries and not parsed.problems:
        raise LoadError(
            path, "no questions found in the text (expected 'Q:'/'A:' lines or lines ending in '?')"
        )
    return parsed
