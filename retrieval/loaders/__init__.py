"""Document loaders: FAQ entries from JSON(L), CSV, TSV, Markdown, HTML, text, PDF and DOCX."""

from retrieval.loaders._base import LoadError, Parsed, Problem, RawEntry
from retrieval.loaders._detect import detect_format
from retrieval.loaders._files import iter_files, load_file
from retrieval.loaders._formats import LOADERS, SUPPORTED_SUFFIXES, get_loader

__all__ = [
    "LOADERS",
    "SUPPORTED_SUFFIXES",
    "LoadError",
    "Parsed",
    "Problem",
    "RawEntry",
    "detect_format",
    "get_loader",
    "iter_files",
    "load_file",
]
