"""Questions and answers in a run of plain lines: `Q:`/`A:` markers or lines ending in '?'.

Shared by the plain-text loader and by the PDF and DOCX loaders, whose documents often
come down to lines of text with nothing but punctuation to tell questions from answers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from retrieval.loaders._base import Parsed, Problem, RawEntry

log = logging.getLogger(__name__)

Line = tuple[str, str]
"""One line of a document: its text and where it is ("line 4", "page 2")."""

_QUESTION_MARK = re.compile(r"^\s*(?:q|question)\s*\d*\s*[:\uff1a]\s*(.*)$", re.IGNORECASE)
_ANSWER_MARK = re.compile(r"^\s*(?:a|answer)\s*\d*\s*[:\uff1a]\s*(.*)$", re.IGNORECASE)


def is_question(text: str) -> bool:
    """Whether a line or heading is phrased as a question: it ends in a (full-width) '?'."""
    return text.rstrip().endswith(("?", "\uff1f"))


def has_qa_markers(lines: Sequence[Line]) -> bool:
    """Whether any line starts with `Q:` or `Question:`."""
    return any(_QUESTION_MARK.match(text) for text, _ in lines)


class _Builder:
    """Collects one question's lines and answer lines, then turns them into an entry."""

    def __init__(self, path: Path, question: str, location: str) -> None:
        self.path = path
        self.question = [question] if question.strip() else []
        self.answer: list[str] | None = None
        self.location = location

    def add(self, text: str) -> None:
        if self.answer is not None:
            self.answer.append(text)
        elif text.strip():
            self.question.append(text.strip())

    def finish(self, parsed: Parsed) -> None:
        question = " ".join(self.question)
        if self.answer is None:
            parsed.problems.append(
                Problem(str(self.path), self.location, f"question has no answer: {question[:60]!r}")
            )
            return
        answer = "\n".join(self.answer).strip()
        parsed.entries.append(RawEntry(question, answer, self.location))


def parse_qa(path: Path, lines: Sequence[Line]) -> Parsed:
    """Read `Q:`/`A:` pairs (or `Question:`/`Answer:`); an answer runs until the next `Q:`.

    Lines between a `Q:` and its `A:` continue the question; text before the first `Q:` is
    ignored as a preamble.
    """
    parsed = Parsed()
    current: _Builder | None = None
    for text, location in lines:
        if match := _QUESTION_MARK.match(text):
            if current is not None:
                current.finish(parsed)
            current = _Builder(path, match.group(1), location)
        elif match := _ANSWER_MARK.match(text):
            if current is None:
                parsed.problems.append(
                    Problem(str(path), location, "answer without a question (no 'Q:' line before)")
                )
            elif current.answer is None:
                current.answer = [match.group(1)]
            else:
                current.answer.extend(["", match.group(1)])
        elif current is not None:
            current.add(text)
    if current is not None:
        current.finish(parsed)
    return parsed


def parse_question_lines(path: Path, lines: Sequence[Line]) -> Parsed:
    """Read lines ending in '?' as questions and the lines after each one as its answer.

    Text before the first question is ignored; two questions in a row leave the first
    without an answer, which is reported.
    """
    parsed = Parsed()
    current: _Builder | None = None
    skipped = 0
    for text, location in lines:
        if is_question(text):
            if current is not None:
                current.finish(parsed)
            current = _Builder(path, text.strip(), location)
        elif current is None:
            skipped += bool(text.strip())
        elif current.answer is None:
            if text.strip():
                current.answer = [text]
        else:
            current.answer.append(text)
    if current is not None:
        current.finish(parsed)
    if skipped:
        log.debug("ignored lines before the first question path=%s lines=%d", path, skipped)
    return parsed
