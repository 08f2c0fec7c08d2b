"""Follow-up questions: carry the previous question into a short or referring message."""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval import Hit, SearchResult

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


def merge_follow_up(own: SearchResult, joined: SearchResult) -> SearchResult:
    """One result for a message searched on its own and joined with the previous question.

    Entries rank by their two scores added, so an entry has to fit the message itself as well
    as the conversation: the previous question alone cannot pull the answer back to the last
    topic, and a new question that stands on its own keeps its own answer. An entry missing
    from one search counts that search's lowest score. The best hit keeps the higher of its two
    scores, so a clear follow-up stays in scope; the others sit below it by the difference of
    their mean scores, which is what the policy's clarify margin then judges.
    """
    if not own.hits or not joined.hits:
        return joined if joined.hits else own
    alone = {h.entry.id: h for h in own.hits}
    together = {h.entry.id: h for h in joined.hits}
    floor_alone, floor_together = own.hits[-1].score, joined.hits[-1].score

    def scores(faq_id: str) -> tuple[float, float]:
        a, t = alone.get(faq_id), together.get(faq_id)
        return (a.score if a else floor_alone, t.score if t else floor_together)

    ranked = sorted(alone.keys() | together.keys(), key=lambda i: (-sum(scores(i)), i))
    top, top_sum = max(scores(ranked[0])), sum(scores(ranked[0]))
    hits: list[Hit] = []
    for faq_id in ranked[: len(joined.hits)]:
        hit = together.get(faq_id) or alone[faq_id]
        score = top - (top_sum - sum(scores(faq_id))) / 2
        hits.append(Hit(hit.entry, score, hit.matched_question))
    return SearchResult(
        joined.query,
        tuple(hits),
        hits[0].score >= joined.threshold,
        joined.threshold,
        joined.kb_version,
        joined.embedder,
    )
