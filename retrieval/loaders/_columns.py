"""Which column (or JSON key) holds the question, the answer, the id and the alternatives."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

QUESTION_NAMES = ("question", "q", "title", "questions")
ANSWER_NAMES = ("answer", "a", "response", "reply", "body")
ID_NAMES = ("id", "key", "slug")
ALT_NAMES = (
    "alt_questions",
    "alternatives",
    "alternative questions",
    "alt",
    "paraphrases",
    "synonyms",
)

_SEPARATOR = re.compile(r"[_\-\s]+")
_ALT_SPLIT = re.compile(r"[|\n]")


def _normal(name: str) -> str:
    return _SEPARATOR.sub(" ", name.strip().casefold()).strip()


@dataclass(frozen=True, slots=True)
class Columns:
    """Positions of the known columns in a header; None where the header has no such column."""

    question: int | None
    answer: int | None
    id: int | None = None
    alt_questions: int | None = None

    @property
    def complete(self) -> bool:
        """Whether both a question and an answer column were found."""
        return self.question is not None and self.answer is not None

    def missing(self, found: Sequence[str]) -> str:
        """Why the header cannot be used, naming the columns it does have."""
        need_question = f"no question column (one of: {', '.join(QUESTION_NAMES)})"
        need_answer = f"no answer column (one of: {', '.join(ANSWER_NAMES)})"
        if self.question is None and self.answer is None:
            reason = f"{need_question} and {need_answer}"
        elif self.answer is None:
            assert self.question is not None
            reason = f"{need_answer} beside the question column {found[self.question]!r}"
        else:
            assert self.answer is not None
            reason = f"{need_question} beside the answer column {found[self.answer]!r}"
        names = ", ".join(repr(n) for n in found) or "none"
        return f"{reason}; the columns found are {names}"


def match_columns(names: Sequence[str]) -> Columns:
    """Match header names case-insensitively (`Alt Questions` = `alt_questions`) to the roles.

    Earlier synonyms win, so a header with both `title` and `question` uses `question`.
    """
    normal = [_normal(n) for n in names]
    taken: set[int] = set()

    def find(synonyms: Sequence[str]) -> int | None:
        for synonym in synonyms:
            key = _normal(synonym)
            for index, name in enumerate(normal):
                if name == key and index not in taken:
                    taken.add(index)
                    return index
        return None

    return Columns(
        question=find(QUESTION_NAMES),
        answer=find(ANSWER_NAMES),
        id=find(ID_NAMES),
        alt_questions=find(ALT_NAMES),
    )


def split_alternatives(text: str) -> tuple[str, ...]:
    """Split alternative questions written in one cell, separated by `|` or line breaks."""
    return tuple(part.strip() for part in _ALT_SPLIT.split(text) if part.strip())
