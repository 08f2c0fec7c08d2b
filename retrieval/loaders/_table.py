"""CSV and TSV documents: a header row naming the columns, then one FAQ entry a row."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from pathlib import Path

from retrieval.loaders._base import LoadError, Parsed, Problem, RawEntry, decode_text
from retrieval.loaders._columns import Columns, match_columns, split_alternatives

log = logging.getLogger(__name__)


def _allow_fields_of(size: int) -> None:
    # The csv module refuses fields over 128 KiB by default; no field is longer than its file.
    if csv.field_size_limit() < size:
        csv.field_size_limit(size)


def _csv_delimiter(text: str) -> str:
    """A comma, or a semicolon for spreadsheets saved with a decimal-comma locale."""
    header = next(iter(text.lstrip().splitlines()), "")
    return ";" if ";" in header and "," not in header else ","


def load_csv(path: Path, data: bytes) -> Parsed:
    """Read a comma-separated table (semicolons are accepted too) with a header row."""
    text = decode_text(path, data)
    return _load_table(path, text, _csv_delimiter(text), "comma")


def load_tsv(path: Path, data: bytes) -> Parsed:
    """Read a tab-separated table with a header row."""
    return _load_table(path, decode_text(path, data), "\t", "tab")


def _load_table(path: Path, text: str, delimiter: str, delimiter_name: str) -> Parsed:
    _allow_fields_of(len(text) + 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def numbered_rows() -> Iterator[tuple[int, list[str]]]:
        # line_num counts lines read so far, so a row starts one after the previous row ended.
        last = 0
        for row in reader:
            first, last = last + 1, reader.line_num
            if any(field.strip() for field in row):
                yield first, row

    rows = numbered_rows()
    try:
        header_line, header = next(rows, (0, []))
        if not header:
            raise LoadError(path, "no header row")
        header = [name.strip() for name in header]
        columns = match_columns(header)
        if not columns.complete:
            raise LoadError(path, columns.missing(header), f"line {header_line}")
        parsed = Parsed()
        for line, row in rows:
            fields = row
            if len(fields) > len(header) and not any(f.strip() for f in fields[len(header) :]):
                fields = fields[: len(header)]
            if len(fields) != len(header):
                reason = (
                    f"row has {len(fields)} fields but the header has {len(header)}; "
                    f"quote fields that contain a {delimiter_name} or a line break"
                )
                parsed.problems.append(Problem(str(path), f"row {line}", reason))
                continue
            parsed.entries.append(_entry(fields, columns, f"row {line}"))
    except csv.Error as exc:
        raise LoadError(path, f"malformed table: {exc}", f"line {reader.line_num}") from None
    if not parsed.entries and not parsed.problems:
        raise LoadError(path, "the table has a header row but no entries below it")
    return parsed


def _entry(row: list[str], columns: Columns, location: str) -> RawEntry:
    assert columns.question is not None and columns.answer is not None
    entry_id = row[columns.id].strip() if columns.id is not None else ""
    alts = row[columns.alt_questions] if columns.alt_questions is not None else ""
    return RawEntry(
        question=row[columns.question],
        answer=row[columns.answer],
        location=location,
        id=entry_id or None,
        alt_questions=split_alternatives(alts),
    )
