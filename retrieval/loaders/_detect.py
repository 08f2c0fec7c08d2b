"""Which format a document is in, from its first bytes, its suffix and, if need be, its text."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from pathlib import Path

from retrieval.loaders._base import LoadError, decode_text
from retrieval.loaders._columns import match_columns
from retrieval.loaders._formats import SUFFIX_FORMATS, SUPPORTED
from retrieval.loaders._jsonl import json_flavour
from retrieval.loaders._qa import has_qa_markers

log = logging.getLogger(__name__)

_SIGNATURES = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Word .doc or Excel .xls file; save it as .docx"),
    (b"{\\rtf", "an RTF document; save it as .docx"),
)
_HTML_START = re.compile(r"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S)
_HTML_CLOSING = re.compile(
    r"</(?:p|div|h[1-6]|li|dl|dt|dd|details|summary|section|article|table|tr|td|body)\s*>", re.I
)
_MARKDOWN_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.M)


def _zip_kind(data: bytes) -> str:
    """The word "docx" for a Word document, else what the archive is, in words."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except Exception:  # zipfile raises several types on damage, NotImplementedError among them
        return "a damaged ZIP archive"
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "an Excel .xlsx workbook; save it as CSV"
    if "ppt/presentation.xml" in names:
        return "a PowerPoint presentation"
    if "content.xml" in names:
        return "an OpenDocument file; save it as .docx or CSV"
    return "a ZIP archive"


def _binary(path: Path, what: str) -> LoadError:
    return LoadError(path, f"binary file ({what}), not a document that can be read; {SUPPORTED}")


def detect_format(path: Path, data: bytes) -> str:
    """The format name of a document (a key of LOADERS), or LoadError if it is none of them.

    Magic bytes come first, then the suffix; a `.txt`, unknown or missing suffix is decided
    by the text itself. JSON and JSON Lines are told apart by content whatever the suffix.
    """
    suffix_format = SUFFIX_FORMATS.get(path.suffix.lower())
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        kind = _zip_kind(data)
        if kind == "docx" or suffix_format == "docx":
            return "docx"  # a damaged .docx gets the docx loader's more specific message
        raise _binary(path, kind)
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            raise _binary(path, what)
    if suffix_format not in (None, "text", "json", "jsonl"):
        # The loader decodes (an HTML page may declare its charset) or reports damage.
        return suffix_format
    text = decode_text(path, data)
    if suffix_format in ("json", "jsonl"):
        return json_flavour(text)
    return _sniff(path, text)


def _sniff(path: Path, text: str) -> str:
    """The format of a text document with no telling suffix, from what its text looks like."""
    start = text.lstrip()
    if start.startswith(("{", "[")):
        return json_flavour(text)
    if _HTML_START.match(text) or len(_HTML_CLOSING.findall(text, 0, 100_000)) >= 3:
        return "html"
    lines = text.splitlines()
    if has_qa_markers([(line, "") for line in lines]):
        return "text"
    if _MARKDOWN_HEADING.search(text):
        return "markdown"
    header = next(iter(start.splitlines()), "")
    for delimiter, name in (("\t", "tsv"), (",", "csv"), (";", "csv")):
        if delimiter in header:
            columns = [column.strip().strip('"') for column in header.split(delimiter)]
            if match_columns(columns).question is not None:
                return name
    raise LoadError(
        path,
        "cannot tell what kind of FAQ document this is (no 'Q:' lines, Markdown headings, "
        f"HTML, JSON, or table header with a question column); {SUPPORTED}",
    )
