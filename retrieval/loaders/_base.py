"""What every document loader returns, and the checks shared by the text formats."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RawEntry:
    """A question and answer as found in a document, before ids and cleaning."""

    question: str
    answer: str
    location: str
    id: str | None = None
    alt_questions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Problem:
    """One element of a file that could not be imported, and why."""

    path: str
    location: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}: {self.location}" if self.location else self.path
        return f"{where}: {self.reason}"


@dataclass(slots=True)
class Parsed:
    """The entries a loader found in one file and the elements it had to reject."""

    entries: list[RawEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class LoadError(Exception):
    """A whole file cannot be imported (empty, binary, undecodable, wrong shape)."""

    def __init__(self, path: Path | str, reason: str, location: str = "") -> None:
        self.problem = Problem(str(path), location, reason)
        super().__init__(str(self.problem))


_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(path: Path, data: bytes) -> str:
    """Decode a text file as UTF-8 (a BOM selects UTF-16/32), with errors that say where."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    if b"\x00" in data[:8192]:
        raise LoadError(path, "binary file, not a text document (it contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise LoadError(
            path,
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            f"line {line}, column {column}",
        ) from None
