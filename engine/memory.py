"""Follow-up questions: carry the previous question into a short or referring message."""

from __future__ import annotations

import re
from collections.abc import Sequence

_REFERRING = re.compile(
    r"\b(it|that|this|those|these|they|them|there|one|same)\b|这个|那个|它|这样|那样",
    re.IGNORECASE,
)


def contextual_query(
    text: str, previous_questions: Sequence[str], *, max_words: int = 4
) -> str | None:
    """The message joined with the last customer question when it looks like a follow-up.

    "and how long does that take?" after "how do I return an item?" becomes one query about
    returns. None when the message stands on its own or there is nothing before it.
    """
    if not previous_questions:
        return None
    short = len(text.split()) <= max_words and len(text) <= 40
    if not short and not _REFERRING.search(text):
        return None
    return f"{previous_questions[-1]} {text}"
