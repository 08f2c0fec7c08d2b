"""What analytics reads from the log, aggregated by the database instead of a pass over it.

A `Period` picks conversations by when they started and by channel; `summarise` answers with
one compact row per conversation (what decides whether it was resolved), one per hand-over
(with the first operator reply inside it), the feedback counts, the customers' ratings of
hand-overs (CSAT), the reply latencies and the questions the bot could not answer (with an
operator's answer to them, if any). The SQL is
written once with named parameters and run by both stores: SQLite takes `:name`, PostgreSQL
gets `$n` in its place.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from engine.log.records import Action, ReasonCode

if TYPE_CHECKING:
    from engine.log.port import ConversationStore

# The largest id any store hands out: "no such turn" in comparisons.
_NO_TURN = 9223372036854775807


@dataclass(frozen=True, slots=True)
class Period:
    """Conversations started in [since, until) (Unix seconds), on one channel or on all."""

    since: float = 0.0
    until: float = math.inf
    channel: str | None = None

    @classmethod
    def of_days(
        cls,
        since: str | None = None,
        until: str | None = None,
        channel: str | None = None,
        *,
        channels: Collection[str] | None = None,
    ) -> Period:
        """The period the report's options name: from the start of the UTC day `since` to the
        end of the day `until` (both YYYY-MM-DD, included; None or "" for no bound), on
        `channel` (None, "" or "all": every channel). With `channels`, a channel not among them
        is refused instead of counting nothing. Raises BadPeriod naming the field; `until`
        before `since` is refused too, as it names no day."""
        start, end = _day(since, "since"), _day(until, "until")
        if start is not None and end is not None and end < start:
            raise BadPeriod("until", f"until={until!r} is before since={since!r}")
        if channel in (None, "", "all"):
            channel = None
        elif channels is not None and channel not in channels:
            raise BadPeriod("channel", f"channel={channel!r}: one of all, {', '.join(channels)}")
        return cls(
            since=0.0 if start is None else start,
            until=math.inf if end is None else end + DAY_S,
            channel=channel,
        )


class BadPeriod(ValueError):
    """A day or channel a `Period` cannot be made of; `field` is since, until or channel."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


DAY_S = 86400

# The channels the project's front ends write: the Telegram bot (private chats, and group chats
# as "telegram-chat"), the web chat and the terminal chat (scripts/chat.py). A report may name
# these, and any other the log holds.
KNOWN_CHANNELS = ("telegram", "telegram-chat", "web", "terminal")

# How many of the most recently active conversations name the channels listed beside the known
# ones (a channel is accepted whenever the log holds it, listed or not).
_LISTED_FROM = 200


async def channels_of(store: ConversationStore, channel: str | None = None) -> tuple[str, ...]:
    """The channels a report may name on this log, sorted: the known ones, those of the most
    recently active conversations and `channel` itself when the log holds a conversation on it
    (asked only for a channel not listed yet), so that any channel the log holds is accepted.
    Older channels are not listed: the store offers no query for every channel it holds."""
    seen = {summary.channel for summary in await store.list_conversations(limit=_LISTED_FROM)}
    if channel and channel not in seen and await store.list_conversations(channel, limit=1):
        seen.add(channel)
    return tuple(sorted(seen.union(KNOWN_CHANNELS)))


def _day(value: str | None, field: str) -> float | None:
    """The start of the UTC day given as YYYY-MM-DD, in Unix seconds; None for no day."""
    if not value:
        return None
    try:
        if len(value) != 10 or value[4::3] != "--":  # not 20260302 nor 2026-W10-1
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise BadPeriod(field, f"{field}={value!r}: give a UTC day as YYYY-MM-DD") from None
    return float(calendar.timegm(day.timetuple()))


@dataclass(frozen=True, slots=True)
class Outcome:
    """A conversation in which a customer wrote: the bot's last turn and what followed it."""

    conversation_id: int
    channel: str
    created_at: float
    last_bot_action: Action | None
    last_bot_feedback: int | None
    # Whether any turn (a customer's or an operator's) came after the bot's last one.
    followed: bool
    handovers: int


@dataclass(frozen=True, slots=True)
class HandoverTiming:
    """A hand-over with the times an operator first replied in it and closed it; `operator_id`
    is who closed it, or while it is open who holds it (None: nobody took it yet)."""

    id: int
    conversation_id: int
    reason_code: ReasonCode | None
    opened_at: float
    closed_at: float | None
    operator_id: str | None
    first_reply_at: float | None


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    """A customer message the bot handed over, clarified or found out of scope, with the first
    operator reply to it during a hand-over (None when no operator answered)."""

    text: str
    answer: str | None
    # What the bot did instead of answering: "handoff", "clarify", or an out-of-scope answer.
    action: Action | None = None


@dataclass(frozen=True)
class LogSummary:
    """The aggregates of one period; lists are in id order."""

    outcomes: tuple[Outcome, ...]
    handovers: tuple[HandoverTiming, ...]
    feedback_up: int
    feedback_down: int
    # The sum of a bot turn's stage latencies, one per bot turn that recorded any.
    latencies_ms: tuple[float, ...]
    questions: tuple[AskedQuestion, ...]
    # Every conversation of the period, with a customer message or not.
    conversations: int = 0
    # Turns per (role, action, reason code).
    turn_counts: tuple[tuple[str, Action | None, ReasonCode | None, int], ...] = ()
    # The customers' ratings (1-5) of hand-overs, in hand-over order (CSAT).
    ratings: tuple[int, ...] = ()


def period_parameters(period: Period) -> dict[str, object]:
    """The named parameters of the queries below."""
    until = period.until if math.isfinite(period.until) else 1e300
    return {"since": period.since, "until": until, "channel": period.channel or ""}


_PICKED = (
    "WITH picked AS (SELECT c.id, c.channel, c.created_at FROM conversations c "
    "WHERE c.created_at >= :since AND c.created_at < :until "
    "AND (:channel = '' OR c.channel = :channel)) "
)

OUTCOMES = (
    _PICKED + ", last AS (SELECT t.conversation_id AS cid, max(t.id) AS last_turn, "
    "max(CASE WHEN t.role = 'bot' THEN t.id END) AS last_bot, "
    "sum(CASE WHEN t.role = 'customer' THEN 1 ELSE 0 END) AS asked "
    "FROM turns t JOIN picked p ON p.id = t.conversation_id GROUP BY t.conversation_id) "
    "SELECT p.id, p.channel, p.created_at, b.action, f.value, "
    "CASE WHEN l.last_turn > coalesce(l.last_bot, 0) THEN 1 ELSE 0 END, "
    "(SELECT count(*) FROM handovers h WHERE h.conversation_id = p.id) "
    "FROM picked p JOIN last l ON l.cid = p.id "
    "LEFT JOIN turns b ON b.id = l.last_bot LEFT JOIN feedback f ON f.turn_id = l.last_bot "
    "WHERE l.asked > 0 ORDER BY p.id"
)

# An operator's first turn inside the hand-over: after it opened, not after it closed (the
# console's rating question comes after the close and is not a reply).
HANDOVERS = (
    _PICKED + "SELECT h.id, h.conversation_id, h.reason_code, h.opened_at, h.closed_at, "
    "coalesce(h.operator_id, h.assignee), (SELECT min(o.created_at) FROM turns o "
    "WHERE o.conversation_id = h.conversation_id AND o.role = 'operator' "
    "AND o.created_at >= h.opened_at AND (h.closed_at IS NULL OR o.created_at <= h.closed_at)) "
    "FROM handovers h JOIN picked p ON p.id = h.conversation_id ORDER BY h.id"
)

FEEDBACK = (
    _PICKED + "SELECT f.value, count(*) FROM feedback f JOIN turns t ON t.id = f.turn_id "
    "JOIN picked p ON p.id = t.conversation_id GROUP BY f.value"
)

# The stage latencies are a JSON object per turn; the dialects sum it differently.
LATENCIES_SQLITE = (
    _PICKED + "SELECT (SELECT total(j.value) FROM json_each(t.latencies_ms) j) FROM turns t "
    "JOIN picked p ON p.id = t.conversation_id WHERE t.role = 'bot' AND t.latencies_ms <> '{}'"
)
LATENCIES_POSTGRES = (
    _PICKED + "SELECT (SELECT sum(j.value::float8) FROM jsonb_each_text(t.latencies_ms) j) "
    "FROM turns t JOIN picked p ON p.id = t.conversation_id "
    "WHERE t.role = 'bot' AND t.latencies_ms <> '{}'::jsonb"
)

# The customer messages since the previous non-customer turn, for each bot turn that did not
# answer; the operator's answer is their first turn after it inside a hand-over, before the
# bot spoke again.
QUESTIONS = (
    _PICKED + "SELECT q.text, (SELECT o.text FROM turns o "
    "WHERE o.conversation_id = b.conversation_id AND o.role = 'operator' AND o.id > b.id "
    "AND o.id < coalesce((SELECT min(n.id) FROM turns n WHERE n.conversation_id = "
    f"b.conversation_id AND n.role = 'bot' AND n.id > b.id), {_NO_TURN}) "
    "AND EXISTS (SELECT 1 FROM handovers h WHERE h.conversation_id = o.conversation_id "
    "AND h.opened_at <= o.created_at AND (h.closed_at IS NULL OR o.created_at <= h.closed_at)) "
    "ORDER BY o.id LIMIT 1), b.action "
    "FROM turns b JOIN picked p ON p.id = b.conversation_id "
    "JOIN turns q ON q.conversation_id = b.conversation_id AND q.role = 'customer' "
    "AND q.id < b.id AND q.id > coalesce((SELECT max(x.id) FROM turns x "
    "WHERE x.conversation_id = b.conversation_id AND x.role <> 'customer' AND x.id < b.id), 0) "
    "WHERE b.role = 'bot' AND (b.action IN ('handoff', 'clarify') "
    "OR b.reason_code = 'out_of_scope') ORDER BY q.id"
)

# CSAT: the ratings of hand-overs in the period's conversations in which a customer wrote,
# whenever the rating was given (the conversation's start decides, as for every figure).
RATINGS = (
    _PICKED + "SELECT h.rating FROM handovers h JOIN picked p ON p.id = h.conversation_id "
    "WHERE h.rating IS NOT NULL AND EXISTS (SELECT 1 FROM turns t "
    "WHERE t.conversation_id = p.id AND t.role = 'customer') ORDER BY h.id"
)

CONVERSATIONS = _PICKED + "SELECT count(*) FROM picked"
TURN_COUNTS = (
    _PICKED + "SELECT t.role, t.action, t.reason_code, count(*) FROM turns t "
    "JOIN picked p ON p.id = t.conversation_id GROUP BY t.role, t.action, t.reason_code"
)


def postgres_sql(sql: str) -> str:
    """The statement with PostgreSQL's numbered parameters in place of the named ones."""
    return (
        sql.replace(":since", "$1::float8")
        .replace(":until", "$2::float8")
        .replace(":channel", "$3::text")
    )


def postgres_parameters(period: Period) -> tuple[object, ...]:
    """The parameters in the order `postgres_sql` numbers them."""
    named = period_parameters(period)
    return (named["since"], named["until"], named["channel"])


def summary_from_rows(
    outcomes: Iterable[Sequence[Any]],
    handovers: Iterable[Sequence[Any]],
    feedback: Iterable[Sequence[Any]],
    latencies: Iterable[Sequence[Any]],
    questions: Iterable[Sequence[Any]],
    conversations: Iterable[Sequence[Any]] = ((0,),),
    turn_counts: Iterable[Sequence[Any]] = (),
    ratings: Iterable[Sequence[Any]] = (),
) -> LogSummary:
    """Build the summary from the rows of OUTCOMES, HANDOVERS, FEEDBACK, the latencies,
    QUESTIONS, CONVERSATIONS, TURN_COUNTS and RATINGS."""
    votes = {int(value): int(count) for value, count in feedback}
    return LogSummary(
        outcomes=tuple(
            Outcome(row[0], row[1], row[2], row[3], row[4], bool(row[5]), int(row[6]))
            for row in outcomes
        ),
        handovers=tuple(HandoverTiming(*row) for row in handovers),
        feedback_up=votes.get(1, 0),
        feedback_down=votes.get(-1, 0),
        latencies_ms=tuple(float(row[0]) for row in latencies),
        questions=tuple(AskedQuestion(row[0], row[1], row[2]) for row in questions),
        conversations=int(next(iter(conversations))[0]),
        turn_counts=tuple((row[0], row[1], row[2], int(row[3])) for row in turn_counts),
        ratings=tuple(int(row[0]) for row in ratings),
    )
