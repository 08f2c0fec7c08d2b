"""Clarifying questions: offer the close entries as numbered options, read the customer's pick."""

from __future__ import annotations

import re
from collections.abc import Sequence

from engine.log import Turn

_OPTION_LINE = re.compile(r"^\d+\. ", re.MULTILINE)
_WORD = re.compile(r"\w+")
_ORDINALS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
    "fifth": 5,
    "5th": 5,
}
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5} | {
    str(i): i for i in range(1, 10)
}
_CHINESE = re.compile(r"第\s*([一二三四五1-5])")
_CHINESE_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
# Words that may stand around a bare number ("option 2 please") without making it a sentence.
_FILLER_WORDS = """the a an option number no nr choice i mean want need take pick it s is that one
    please pls yes ok okay m"""
# Words that say nothing about which option is meant.
_STOP_WORDS = """about do does did how what which when where why who can could would will my your
    our of to in on for with and or be have has im me we you this these those"""
_FILLER = frozenset(_FILLER_WORDS.split())
_STOP = _FILLER | frozenset(_STOP_WORDS.split())
# A pick by position is a short message; a longer one is a new question.
_MAX_PICK_WORDS = 6


def ask_which(questions: Sequence[str]) -> str:
    """The clarifying question: the options numbered from 1, one per line."""
    options = "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1))
    return f"Which of these do you mean?\n{options}"


def offered(turn: Turn) -> tuple[str, ...]:
    """The FAQ ids a clarifying bot turn offered, in the order shown; empty for other turns.

    Read back from the log (the options are the first retrieved entries, as many as the text
    lists), so a pick still works after a restart.
    """
    if turn.role != "bot" or turn.action != "clarify":
        return ()
    shown = len(_OPTION_LINE.findall(turn.text))
    return tuple(r.faq_id for r in turn.retrieved[:shown])


def pick(text: str, options: Sequence[str]) -> int | None:
    """The 0-based option a reply to a clarifying question chooses, or None.

    "2", "#1", "the second one", "第二个", or words that belong to one option only ("the refund
    one"). None when the message is anything else, such as a new question.
    """
    if not options:
        return None
    position = _position(text, len(options))
    if position is not None:
        return position - 1 if 1 <= position <= len(options) else None
    return _by_words(text, options)


def _position(text: str, count: int) -> int | None:
    found = _CHINESE.search(text)
    if found:
        digit = found.group(1)
        return _CHINESE_DIGITS.get(digit) or int(digit)
    words = _WORD.findall(text.lower())
    if not words or len(words) > _MAX_PICK_WORDS:
        return None
    ordinals = {_ORDINALS[w] for w in words if w in _ORDINALS}
    if "last" in words:
        ordinals.add(count)
    if len(ordinals) == 1:
        return ordinals.pop()
    if ordinals:
        return None
    # "one" is a number in "option one", not in "the one about refunds".
    numbers = {
        _NUMBERS[w]
        for i, w in enumerate(words)
        if w in _NUMBERS and not (w == "one" and i > 0 and words[i - 1] in ("the", "that"))
    }
    rest = [w for w in words if w not in _NUMBERS and w not in _FILLER]
    return numbers.pop() if len(numbers) == 1 and not rest else None


def _content(text: str) -> set[str]:
    words = (w for w in _WORD.findall(text.lower()) if w not in _STOP)
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words}


def _by_words(text: str, options: Sequence[str]) -> int | None:
    said = _content(text)
    vocab = [_content(o) for o in options]
    # Every word must come from the options: a message with words of its own is a new question.
    if not said or not said <= set().union(*vocab):
        return None
    exact = [i for i, words in enumerate(vocab) if words == said]
    if len(exact) == 1:
        return exact[0]
    scores = []
    for i, words in enumerate(vocab):
        others = set().union(*(v for j, v in enumerate(vocab) if j != i))
        scores.append(len(said & (words - others)))
    best = max(scores)
    return scores.index(best) if best > 0 and scores.count(best) == 1 else None
