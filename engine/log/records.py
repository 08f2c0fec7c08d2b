"""What the conversation log hands back: conversations, turns, retrieved entries, handovers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["customer", "bot", "operator"]
ROLES: tuple[Role, ...] = ("customer", "bot", "operator")

Action = Literal["answer", "clarify", "handoff"]
ACTIONS: tuple[Action, ...] = ("answer", "clarify", "handoff")

# Why the bot did what it did on a turn; the turn's `reason` keeps the details as free text.
ReasonCode = Literal[
    "confident",  # answered from the best entry
    "clarify_choice",  # answered the option the customer picked after a clarifying question
    "ambiguous",  # asked which of several close entries was meant
    "out_of_scope",  # no confident entry: said so, offered a person
    "repeated_failure",  # handed over after misses in a row
    "human_requested",  # the customer asked for a person
    "negative_sentiment",  # handed over an upset customer
    "ungrounded",  # a generated answer failed the grounding check: the entry's answer instead
    "generation_failed",  # the generator failed: the entry's answer instead
]
REASON_CODES: tuple[ReasonCode, ...] = (
    "confident",
    "clarify_choice",
    "ambiguous",
    "out_of_scope",
    "repeated_failure",
    "human_requested",
    "negative_sentiment",
    "ungrounded",
    "generation_failed",
)

# Whether a reply reached the customer: "pending" from logging until the channel confirms it.
Delivery = Literal["pending", "delivered", "undelivered"]
DELIVERIES: tuple[Delivery, ...] = ("pending", "delivered", "undelivered")


@dataclass(frozen=True, slots=True)
class Retrieved:
    """A knowledge-base entry shown to the bot for a turn; list order is rank, best first."""

    faq_id: str
    score: float


@dataclass(frozen=True, slots=True)
class Turn:
    """One message in a conversation, with what the bot decided and measured for it.

    Times are Unix seconds. `models` maps a stage ("embedder", "generator", "sentiment") to its
    model version, `latencies_ms` a stage to its time; `feedback` is the customer's +1 or -1.
    `reason_code` says why the bot acted (`reason` adds free text);
    `delivery` tracks a reply's way to the customer; `external_id` is the channel's own id of
    the message (a Telegram update id), unique per conversation and role.
    """

    id: int
    conversation_id: int
    role: Role
    text: str
    created_at: float
    action: Action | None = None
    reason: str | None = None
    sentiment_label: str | None = None
    sentiment_score: float | None = None
    kb_version: str | None = None
    models: Mapping[str, str] = field(default_factory=dict)
    latencies_ms: Mapping[str, float] = field(default_factory=dict)
    retrieved: tuple[Retrieved, ...] = ()
    feedback: int | None = None
    delivery: Delivery | None = None
    external_id: str | None = None
    feedback_at: float | None = None
    reason_code: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class Handover:
    """A stretch of a conversation handed to a human operator; open while `closed_at` is None.

    `reason` is free text; `reason_code` is set when the hand-over has a typed cause.
    """

    id: int
    conversation_id: int
    reason: str
    opened_at: float
    closed_at: float | None
    operator_id: str | None
    # The operator group's forum topic that carries this customer's chat.
    topic_id: int | None
    reason_code: ReasonCode | None = None
    # The operator who holds it (a console user name, or a Telegram operator), and since when.
    assignee: str | None = None
    assigned_at: float | None = None
    # The customer's rating once it closed (CSAT, 1 to 5): when it was asked for, and given.
    rating_asked_at: float | None = None
    rating: int | None = None
    rated_at: float | None = None
    # The holder the operator desk's forum topic was told of (bot.outbox), so a copy of the log
    # does not announce every held hand-over again.
    announced_assignee: str | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """A customer's conversation on one channel, with its turns and handovers oldest first."""

    id: int
    channel: str
    external_user_id: str
    language: str | None
    created_at: float
    updated_at: float
    turns: tuple[Turn, ...] = ()
    closed_at: float | None = None
    handovers: tuple[Handover, ...] = ()


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation without its turns, for listings: how long it is, whether a human has it."""

    id: int
    channel: str
    external_user_id: str
    language: str | None
    created_at: float
    updated_at: float
    closed_at: float | None
    turns: int
    open_handover: bool
