"""Which languages a knowledge base is written in, and whether an embedder can read them.

all-MiniLM-L6-v2 reads English only: most Chinese characters are unknown tokens to it, so a
Chinese knowledge base embedded with it finds the right entry for about one question in ten.
The importer checks the entries' languages against the embedder and switches to a multilingual
one it knows, or says how to get one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]{2,}")

# The embedder used when the configured one cannot read a knowledge base's languages.
MULTILINGUAL = "multilingual-e5-small"
# Languages that named embedders read (by the name without a backend suffix such as "+int8").
READS: dict[str, frozenset[str]] = {
    "all-MiniLM-L6-v2": frozenset({"en"}),
    MULTILINGUAL: frozenset({"en", "zh"}),
}
# A language is a knowledge base's when at least this share of its questions is written in it.
MIN_SHARE = 0.2


def detect_languages(questions: Iterable[str]) -> frozenset[str]:
    """The languages ("en", "zh") of at least MIN_SHARE of `questions`; English if none."""
    counts = {"en": 0, "zh": 0}
    total = 0
    for text in questions:
        total += 1
        han = len(_HAN.findall(text))
        latin = len(_LATIN.findall(text))
        # A Chinese character carries about half as much as an English word.
        if han and han / 2 >= latin:
            counts["zh"] += 1
        elif latin:
            counts["en"] += 1
    found = frozenset(lang for lang, n in counts.items() if total and n / total >= MIN_SHARE)
    return found or frozenset({"en"})


def unread_languages(embedder_name: str, languages: frozenset[str]) -> frozenset[str]:
    """The languages an embedder known here does not read; empty for unknown embedders."""
    reads = READS.get(embedder_name.split("+", 1)[0])
    return frozenset() if reads is None else languages - reads
