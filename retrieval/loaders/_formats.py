"""The document formats: their loaders, keyed by name, and the file suffixes that name them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from retrieval.loaders._base import Parsed
from retrieval.loaders._jsonl import load_json, load_jsonl
from retrieval.loaders._markdown import load_markdown
from retrieval.loaders._table import load_csv, load_tsv
from retrieval.loaders._text import load_text


# pypdf, python-docx and BeautifulSoup cost a second of start-up on a loaded machine; a
# command that reads no such file (an unchanged re-import of a JSONL file) never imports them.
def load_pdf(path: Path, data: bytes) -> Parsed:
    from retrieval.loaders._pdf import load_pdf

    return load_pdf(path, data)


def load_docx(path: Path, data: bytes) -> Parsed:
    from retrieval.loaders._docx import load_docx

    return load_docx(path, data)


def load_html(path: Path, data: bytes) -> Parsed:
    from retrieval.loaders._html import load_html

    return load_html(path, data)


LOADERS: dict[str, Callable[[Path, bytes], Parsed]] = {
    "jsonl": load_jsonl,
    "json": load_json,
    "csv": load_csv,
    "tsv": load_tsv,
    "markdown": load_markdown,
    "html": load_html,
    "text": load_text,
    "pdf": load_pdf,
    "docx": load_docx,
}

SUFFIX_FORMATS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".pdf": "pdf",
    ".docx": "docx",
}

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(SUFFIX_FORMATS)

SUPPORTED = (
    "supported formats: JSON Lines (.jsonl), JSON (.json), CSV (.csv), TSV (.tsv), "
    "Markdown (.md), HTML (.html), text with Q:/A: lines (.txt), PDF (.pdf), Word (.docx)"
)


def get_loader(name: str) -> Callable[[Path, bytes], Parsed]:
    """The loader of a format name such as "csv"; an unknown name lists the known ones."""
    try:
        return LOADERS[name]
    except KeyError:
        known = ", ".join(sorted(LOADERS))
        raise ValueError(f"unknown document format {name!r}; known formats: {known}") from None
