"""Check that a generated answer says only what its FAQ sources support."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval import FaqEntry

_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBERS = re.compile(r"\d+(?:[.,]\d+)?")
_HAN = re.compile(r"[\u3400-\u9fff]")
_STOP_WORDS = (
    "a an the and or but if then so to of in on at by for with from as is are was were be been "
    "it its this that these those you your we our us i me my can will would should could may "
    "do does did have has had not no yes please thank thanks here there what when where how "
    "which who why about into out up also just only any all some more most very"
)
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True, slots=True)
class GroundingCheck:
    """Whether an answer is supported, the share of its content words found in the sources."""

    supported: bool
    support: float
    reason: str


def check_grounding(
    answer: str, sources: Sequence[FaqEntry], *, min_support: float
) -> GroundingCheck:
    """Lexical support of `answer` by `sources`: content words and every number must appear.

    Numbers are strict (a wrong delivery time or fee is the worst kind of wrong answer);
    other words need only `min_support` coverage, so rephrasing passes and invention does not.
    """
    if not answer.strip():
        return GroundingCheck(False, 0.0, "empty answer")
    if any(answer == s.answer for s in sources):
        # The extractive answer: every word and number is its source's (and cheap to tell).
        return GroundingCheck(True, 1.0, "an entry's own answer")
    source_text = " ".join(f"{s.question} {s.answer}" for s in sources).casefold()
    numbers = set(_NUMBERS.findall(answer)) - set(_NUMBERS.findall(source_text))
    if numbers:
        return GroundingCheck(False, 0.0, f"numbers not in the sources: {sorted(numbers)}")
    tokens = _content_tokens(answer)
    if not tokens:
        return GroundingCheck(True, 1.0, "no content words")
    known = set(_content_tokens(source_text))
    support = sum(t in known for t in tokens) / len(tokens)
    ok = support >= min_support
    return GroundingCheck(ok, support, f"{support:.0%} of content words in the sources")


def _content_tokens(text: str) -> list[str]:
    out: list[str] = []
    for word in _WORDS.findall(text.casefold()):
        if _HAN.search(word):
            out.extend(ch for ch in word if _HAN.match(ch))  # Chinese: characters
        elif len(word) > 2 and word not in _STOP and not word.isdigit():
            out.append(word[:6])  # a crude stem: "returns"/"returned" -> "return"
    return out
