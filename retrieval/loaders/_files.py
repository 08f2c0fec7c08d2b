"""Finding the documents to import and loading one of them, within a size limit."""

from __future__ import annotations

import codecs
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from retrieval.loaders._base import LoadError, Parsed
from retrieval.loaders._detect import detect_format
from retrieval.loaders._formats import SUPPORTED_SUFFIXES, get_loader

log = logging.getLogger(__name__)

_MB = 1024 * 1024
# A knowledge-base folder's README describes the folder; it is not a list of questions.
_FOLDER_DOCS = frozenset({"readme.md", "readme.markdown", "readme.txt"})


def _wanted(name: str) -> bool:
    """Whether a file found in a folder is a document: supported suffix, not hidden, no README.

    `~$name.docx` files are Word's lock files, left beside a document while it is open.
    """
    if name.startswith((".", "~$")) or name.casefold() in _FOLDER_DOCS:
        return False
    return Path(name).suffix.lower() in SUPPORTED_SUFFIXES


def iter_files(paths: Iterable[Path]) -> list[Path]:
    """The files to import: files as given, folders searched recursively, each path once.

    In folders, only files with a supported suffix are taken, in sorted order; hidden files
    and folders, Office lock files and README files (which describe the folder) are skipped.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found: list[Path] = []
            for folder, dirs, names in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found.extend(Path(folder) / name for name in names if _wanted(name))
            files.extend(sorted(found, key=lambda p: p.relative_to(path).parts))
        elif path.exists():
            files.append(path)
        else:
            raise LoadError(path, "no such file or directory")
    return list(dict.fromkeys(files))


def load_file(path: Path, max_bytes: int) -> tuple[str, Parsed]:
    """Detect the format of one document and parse it; returns the format name and the parse.

    The size is checked before anything is read, so an oversized file costs no memory.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise LoadError(
                path,
                f"file is {size / _MB:.1f} MB, over the {max_bytes / _MB:g} MB limit "
                "(import.max_file_mb in the config)",
            )
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except FileNotFoundError:
        raise LoadError(path, "no such file or directory") from None
    except IsADirectoryError:
        raise LoadError(path, "is a directory, not a file") from None
    except PermissionError:
        raise LoadError(path, "permission denied; check the file's read permissions") from None
    if len(data) > max_bytes:
        raise LoadError(path, f"file grew over the {max_bytes / _MB:g} MB limit while being read")
    if not data.removeprefix(codecs.BOM_UTF8).strip():
        raise LoadError(path, "empty file" if not data else "empty file (only whitespace)")
    fmt = detect_format(path, data)
    parsed = get_loader(fmt)(path, data)
    if not parsed.entries and not parsed.problems:
        raise LoadError(path, f"no questions and answers found in this {fmt} file")
    log.debug(
        "loaded path=%s format=%s entries=%d problems=%d",
        path,
        fmt,
        len(parsed.entries),
        len(parsed.problems),
    )
    return fmt, parsed
