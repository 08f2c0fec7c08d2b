"""Decide what to do with a customer message: answer, ask which entry was meant, or hand over."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.log.records import Action, ReasonCode
from retrieval import Hit, SearchResult

_PERSON = r"(humans?|real person|person|agents?|operators?|representatives?|manager|supervisor)"
_HUMAN_REQUEST = re.compile(
    # "can I speak to a person?", "talk with someone", "chat to an agent"
    r"\b(speak|talk|chat)(ing)? (to|with) (a |an |the |some |your |real |live |actual )*"
    rf"({_PERSON}|someone|somebody|people|staff)\b"
    # "I want a real person", "get me a human", "connect me to an agent", "I need a manager"
    r"|\b(want|need|get|give|connect|transfer|put|pass)( me)?( through)?( to| with)? "
    rf"(a |an |the |your |real |live |actual )*{_PERSON}\b"
    r"|人工(?!智能)|真人|转客服",
    re.IGNORECASE,
)
# A few words naming a person: "human", "a human please", "2 no, an agent!"
_SHORT_HUMAN = re.compile(
    r"\b(humans?|agents?|operators?|representatives?|(real|live) person)\b", re.IGNORECASE
)
# Asking what the bot is, not asking for someone: "are you a human?", "could you be human".
_ABOUT_THE_BOT = re.compile(
    r"\b(are|r|be|you're|ur) (you |u )?(a |an |really |actually )*"
    r"(human|real|person|bot|robot|computer|machine|ai)\b"
    r"|\bor (a |an )?(computer|bot|robot|machine)\b",
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
    """The action, why it was taken, and whether an operator must be brought in now.

    `code` is the typed reason the log and the metrics keep; `reason` says it in words.
    """

    action: Action
    reason: str
    escalate: bool = False
    options: tuple[Hit, ...] = ()
    code: ReasonCode = field(kw_only=True)


def asks_for_human(text: str) -> bool:
    """Whether the customer explicitly asks for a person.

    A word such as "human" or "operator" alone is not enough in a longer message ("my mobile
    operator", "are you a human or a computer?"): it takes a request ("talk to", "I want",
    "connect me to") or a message of a few words.
    """
    if _HUMAN_REQUEST.search(text):
        return True
    short = len(text.split()) <= 5
    return short and bool(_SHORT_HUMAN.search(text)) and not _ABOUT_THE_BOT.search(text)


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
        return Decision("handoff", "human_requested", escalate=True, code="human_requested")
    if upset:
        return Decision("handoff", "negative_sentiment", escalate=True, code="negative_sentiment")
    best = result.best
    if best is None or not result.in_scope:
        if failures + 1 >= config.max_failures:
            return Decision("handoff", "repeated_failure", escalate=True, code="repeated_failure")
        return Decision("handoff", "out_of_scope", code="out_of_scope")
    close = tuple(
        h
        for h in result.hits[: config.clarify_max_options]
        if h.score >= result.threshold and best.score - h.score < config.clarify_margin
    )
    if len(close) > 1:
        reason = f"ambiguous: {len(close)} entries within margin"
        return Decision("clarify", reason, options=close, code="ambiguous")
    return Decision("answer", f"confident: score {best.score:.3f}", code="confident")
