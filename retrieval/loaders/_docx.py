"""Word .docx documents: Heading-styled questions, Q/A tables, or `Q:`/`A:` and '?' lines."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import docx
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from retrieval.loaders._base import LoadError, Parsed, Problem, RawEntry
from retrieval.loaders._columns import match_columns, split_alternatives
from retrieval.loaders._outline import Block, entries_from_outline
from retrieval.loaders._qa import Line, has_qa_markers, parse_qa, parse_question_lines

log = logging.getLogger(__name__)

_HEADING = re.compile(r"^heading\s*(\d*)$", re.IGNORECASE)


def _style_name(paragraph: Paragraph) -> str:
    return (paragraph.style.name if paragraph.style is not None else None) or ""


def _heading_level(style: str) -> int:
    """1-9 for a paragraph style "Heading N" ("Heading" alone is 1), 0 for any other style."""
    match = _HEADING.match(style)
    return 0 if match is None else int(match.group(1) or 1)


def _table_blocks(path: Path, table: Table, number: int, problems: list[Problem]) -> list[Block]:
    """Pairs from a table whose header row names question and answer columns, else its text."""
    rows = [[cell.text.strip() for cell in row.cells] for row in table.rows]
    columns = match_columns(rows[0]) if rows else None
    if columns is None or not columns.complete or len(rows[0]) < 2:
        return [
            Block(" | ".join(cells), f"table {number} row {m}", item=True)
            for m, cells in enumerate(rows, start=1)
            if any(cells)
        ]
    assert columns.question is not None and columns.answer is not None
    blocks: list[Block] = []
    for m, cells in enumerate(rows[1:], start=2):
        location = f"table {number} row {m}"
        if not any(cells):
            continue
        if len(cells) != len(rows[0]):
            reason = f"row has {len(cells)} cells but the header row has {len(rows[0])}"
            problems.append(Problem(str(path), location, reason))
            continue
        entry = RawEntry(
            question=cells[columns.question],
            answer=cells[columns.answer],
            location=location,
            id=(cells[columns.id] or None) if columns.id is not None else None,
            alt_questions=(
                split_alternatives(cells[columns.alt_questions])
                if columns.alt_questions is not None
                else ()
            ),
        )
        blocks.append(Block("", location, pair=entry))
    return blocks


def _open(path: Path, data: bytes) -> Document:
    # python-docx raises many exception types on a damaged file; each means the same here.
    try:
        return docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise LoadError(
            path, f"not a readable Word .docx file, the file may be damaged ({exc})"
        ) from None


def load_docx(path: Path, data: bytes) -> Parsed:
    """Read a Word document; without headings, fall back to Q:/A: lines or '?' lines."""
    document = _open(path, data)
    blocks: list[Block] = []
    lines: list[Line] = []
    problems: list[Problem] = []
    paragraphs = tables = 0
    for part in document.iter_inner_content():
        if isinstance(part, Table):
            tables += 1
            blocks.extend(_table_blocks(path, part, tables, problems))
            continue
        paragraphs += 1
        location = f"paragraph {paragraphs}"
        style = _style_name(part)
        if style == "Title" or style.startswith("Subtitle"):
            continue  # the document's title, not a question
        text = part.text.strip()
        lines.extend((line, location) for line in text.split("\n"))  # Shift+Enter breaks
        if level := _heading_level(style):
            blocks.append(Block(text, location, level=level))
        elif text:
            item = style.startswith("List")
            blocks.append(Block(f"- {text}" if item else text, location, item=item))
    if any(block.level for block in blocks):
        parsed = entries_from_outline(path, blocks)
    else:
        parsed = Parsed(entries=[b.pair for b in blocks if b.pair is not None])
        if has_qa_markers(lines):
            marked = parse_qa(path, lines)
            parsed.entries.extend(marked.entries)
            parsed.problems.extend(marked.problems)
        elif not parsed.entries:
            parsed = parse_question_lines(path, lines)
    parsed.problems = [*problems, *parsed.problems]
    if not parsed.entries and not parsed.problems:
        raise LoadError(
            path,
            "no question/answer pairs found (expected Heading-styled questions, a table with "
            "question and answer columns, 'Q:'/'A:' lines or lines ending in '?')",
        )
    return parsed
