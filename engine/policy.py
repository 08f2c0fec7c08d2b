"""Decide what to do with a customer message: answer, ask which entry was meant, or hand over."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.log.records import Action
from retrieval import Hit, SearchResult

_HUMAN_REQUEST = re.compile(
    r"\b(human|operator|(live |real |support )?agent|real person|representative|"
    r"(speak|talk|chat) (to|with) (a |an )?(person|someone|somebody|manager|staff))\b"
    r"|人工|真人|转客服|人工客服",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Where the policy draws its lines."""

    # Two in-scope entries closer than this in score are ambiguous: ask which one was meant.
    clarify_margin: float = 0.03
    clarify_max_options: int = 3
    # Consecutive unanswered messages (out of scope) before the conversation is handed over.
    max_failures: int = 2


@dataclass(frozen=True, slots=True)
class Decision:
    """The action, why it was taken, and whether an operator must be brought in now."""

    action: Action
    reason: str
    escalate: bool = False
    options: tuple[Hit, ...] = ()


def asks_for_human(text: str) -> bool:
    """Whether the customer explicitly asks for a person."""
    return bool(_HUMAN_REQUEST.search(text))


def decide(
    result: SearchResult,
    *,
    human_requested: bool,
    upset: bool,
    failures: int,
    config: PolicyConfig,
) -> Decision:
    """The policy: explicit request, upset customer, repeated failure, scope, ambiguity."""
    if human_requested:
        return Decision("handoff", "human_requested", escalate=True)
    if upset:
        return Decision("handoff", "negative_sentiment", escalate=True)
    best = result.best
    if best is None or not result.in_scope:
        if failures + 1 >= config.max_failures:
            return Decision("handoff", "repeated_failure", escalate=True)
        return Decision("handoff", "out_of_scope")
    close = tuple(
        h
        for h in result.hits[: config.clarify_max_options]
        if h.score >= result.threshold and best.score - h.score < config.clarify_margin
    )
    if len(close) > 1:
        return Decision("clarify", f"ambiguous: {len(close)} entries within margin", options=close)
    return Decision("answer", f"confident: score {best.score:.3f}")
