"""Follow-up questions: carry the previous question into a short or referring message."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrieval import Hit, KnowledgeBase, SearchResult
from retrieval.embedders import Vectors

_REFERRING = re.compile(
    r"\b(it|that|this|those|these|they|them|there|one|same)\b|这个|那个|它|这样|那样",
    re.IGNORECASE,
)
# No letters at all ("4", "?", "👍"): nothing to carry a question on. Such a message is a pick
# or a rating only where one was asked for (engine/choice.py, engine/rating.py).
_WORDLESS = re.compile(r"[\W\d_]*")


def previous_question(
    text: str, previous_questions: Sequence[str], *, max_words: int = 4
) -> str | None:
    """The last customer question when the message may follow up on it: short or referring.

    None when the message stands on its own or there is nothing before it. Pronouns are common
    in standalone questions too, so this only says the context *may* matter; `FollowUpSearch`
    decides from the scores whether it does.
    """
    if not previous_questions or _WORDLESS.fullmatch(text):
        return None
    short = len(text.split()) <= max_words and len(text) <= 40
    if not short and not _REFERRING.search(text):
        return None
    return previous_questions[-1]


def contextual_query(
    text: str, previous_questions: Sequence[str], *, max_words: int = 4
) -> str | None:
    """The message joined with the last customer question when it looks like a follow-up.

    "and how long does that take?" after "how do I return an item?" becomes one query about
    returns. None when the message stands on its own or there is nothing before it.
    """
    previous = previous_question(text, previous_questions, max_words=max_words)
    return None if previous is None else _joined(previous, text)


def _joined(previous: str, text: str) -> str:
    return f"{previous} {text}"


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


@dataclass(frozen=True, slots=True)
class Query:
    """A customer message to search, with the question it may follow up on (or None)."""

    text: str
    previous: str | None = None


class FollowUpSearch:
    """Searches messages, joining one with its previous question only where that can matter.

    Most messages `previous_question` flags are standalone questions with a pronoun in them
    ("can I return earbuds if I already opened them"), so embedding the joined text for each
    would cost a second sentence per reply. Instead the joined text's vector is first estimated
    from vectors already at hand: the previous question's (kept from its own search) plus the
    message's, normalised, roughly the mean pooling over both texts' tokens. When the merged
    result of that estimate keeps the message's own best entry, the context changes nothing
    that matters and the estimate's merge is the answer (its scores still carry a follow-up
    such as "what about Switzerland?" into scope); only when it would pull another entry to the
    top is the joined text embedded, and merged exactly as before. Concurrent messages share
    at most two embedding calls. Called from one thread at a time (the engine's search thread).
    """

    def __init__(self, kb: KnowledgeBase, *, remembered: int = 4096) -> None:
        self._kb = kb
        self._remembered = remembered
        # Recent query vectors by (embedder name, text): a follow-up's previous question.
        self._vectors: OrderedDict[tuple[str, str], Vectors] = OrderedDict()

    def search(self, queries: Sequence[Query]) -> list[SearchResult]:
        """One result per query, in order; a follow-up's merges its own and the joined search."""
        embedder = self._kb.embedder
        name = embedder.name
        texts = [q.text for q in queries]
        follow = [(i, q.previous) for i, q in enumerate(queries) if q.previous is not None]
        known = {p: v for _, p in follow if (v := self._vectors.get((name, p))) is not None}
        unknown = list(dict.fromkeys(p for _, p in follow if p not in known))
        encoded = embedder.encode(texts + unknown)
        if self._kb.embedder.name != name:
            # An import re-embedded with another model went live meanwhile: encode again.
            return self.search(queries)
        own_vectors = encoded[: len(texts)]
        known.update(zip(unknown, encoded[len(texts) :], strict=True))
        # The messages last: they are what the next follow-ups will refer to.
        for text in unknown:
            self._remember(name, text, known[text])
        for text, vector in zip(texts, own_vectors, strict=True):
            self._remember(name, text, vector)
        if not follow:
            return self._kb.search_vectors(texts, own_vectors)
        estimate = np.stack([known[p] for _, p in follow]) + own_vectors[[i for i, _ in follow]]
        estimate /= np.maximum(np.linalg.norm(estimate, axis=1, keepdims=True), 1e-12)
        joined = [_joined(p, texts[i]) for i, p in follow]
        found = self._kb.search_vectors(texts + joined, np.concatenate([own_vectors, estimate]))
        results, guesses = found[: len(texts)], found[len(texts) :]
        exact: list[tuple[int, str]] = []
        for (i, p), guess in zip(follow, guesses, strict=True):
            merged = merge_follow_up(results[i], guess)
            if _top(merged) == _top(results[i]):
                results[i] = merged
            else:
                exact.append((i, _joined(p, texts[i])))
        if exact:
            asked = self._kb.search_batch([j for _, j in exact])
            for (i, _), together in zip(exact, asked, strict=True):
                results[i] = merge_follow_up(results[i], together)
        return results

    def _remember(self, name: str, text: str, vector: Vectors) -> None:
        key = (name, text)
        self._vectors[key] = vector
        self._vectors.move_to_end(key)
        while len(self._vectors) > self._remembered:
            self._vectors.popitem(last=False)


def _top(result: SearchResult) -> str | None:
    return result.best.entry.id if result.best is not None else None
