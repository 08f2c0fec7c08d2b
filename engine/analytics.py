"""The console's figures: resolution, deflection, hand-overs by reason, CSAT, operators' times.

The store aggregates the log in SQL (`ConversationStore.summarise`, engine/log/summary.py);
this module turns its compact rows into figures. Every figure counts the conversations that
started in the period (and on the channel) asked for, and only those in which a customer wrote.

- Resolution follows engine.resolution (Intercom's definition for Fin: the bot's last answer
  stood, rated up or followed by silence, and no hand-over).
- Deflection is the share of conversations that never reached a person: no hand-over was
  opened, whether or not the bot's last answer stood (so deflection >= resolution).
- The hand-over rate is the share of conversations in which a hand-over was opened; by reason,
  hand-overs per conversation, with the reason codes grouped as a lead names them.
- Operators' first-response time runs from a hand-over's opening to the first operator turn
  inside it, the resolution time to its close; per operator by who closed it (or holds it).

Questions the bot could not answer are grouped by meaning with the knowledge base's embedder,
so the lead sees what to add next.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.log import ConversationStore
from engine.log.activity import ActivityMark
from engine.log.records import ReasonCode
from engine.log.report import normalise_question
from engine.log.summary import HandoverTiming, Period
from engine.resolution import LoggedTurn, conversation_resolved

# A question joins a group when its cosine similarity to the group's first question is this high.
GROUP_SIMILARITY = 0.8
MAX_GROUPED = 2000
# Hand-over reasons as a support lead names them; any other code (or none) is "other".
REASON_GROUPS: tuple[tuple[str, ReasonCode | None], ...] = (
    ("asked", "human_requested"),
    ("sentiment", "negative_sentiment"),
    ("repeated misses", "repeated_failure"),
    ("out of scope", "out_of_scope"),
    ("other", None),
)
# The operator of a hand-over nobody took yet.
NO_OPERATOR = "(nobody)"
# The CSV tables /console/analytics.csv?table=... and the report offer.
TABLES = ("summary", "daily", "reasons", "operators", "clusters")


@dataclass(frozen=True, slots=True)
class Day:
    """One UTC day's conversations (by when they started)."""

    day: str
    conversations: int
    resolved: int
    handed_over: int
    deflected: int = 0
    # Median seconds to an operator's first reply in the hand-overs of that day's conversations.
    first_response_p50_s: float | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """Questions of one meaning the bot did not answer: how often, a few as asked, and the
    operators' answers to them where there are any."""

    count: int
    examples: tuple[str, ...]
    answers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OperatorTimes:
    """One operator's hand-overs (closed or held) with p50/p90 times in seconds."""

    operator: str
    handovers: int
    replied: int
    closed: int
    first_response_p50_s: float | None
    first_response_p90_s: float | None
    resolution_p50_s: float | None
    resolution_p90_s: float | None


@dataclass(frozen=True)
class Figures:
    """What the analytics page, its CSV tables and the HTML report show; rates are None where
    nothing was counted."""

    conversations: int
    resolved: int
    handed_over: int
    reasons: tuple[tuple[str, int], ...]
    feedback_up: int
    feedback_down: int
    ratings: tuple[int, ...]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    days: tuple[Day, ...]
    questions: tuple[str, ...] = field(repr=False)
    deflected: int = 0
    handovers: int = 0
    # Hand-overs per reason group, every group of REASON_GROUPS in order.
    reason_groups: tuple[tuple[str, int], ...] = ()
    first_response_p50_s: float | None = None
    first_response_p90_s: float | None = None
    resolution_p50_s: float | None = None
    resolution_p90_s: float | None = None
    operators: tuple[OperatorTimes, ...] = ()
    # The operator's answer to each of `questions` (None where nobody answered).
    answers: tuple[str | None, ...] = field(default=(), repr=False)

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.conversations if self.conversations else None

    @property
    def deflection_rate(self) -> float | None:
        return self.deflected / self.conversations if self.conversations else None

    @property
    def handover_rate(self) -> float | None:
        return self.handed_over / self.conversations if self.conversations else None

    @property
    def csat(self) -> float | None:
        """Mean rating (1-5) of resolved hand-overs, None when no customer rated."""
        return sum(self.ratings) / len(self.ratings) if self.ratings else None


async def compute(
    store: ConversationStore,
    *,
    since: float | None = None,
    until: float | None = None,
    channel: str | None = None,
) -> Figures:
    """The figures of conversations started in [since, until) (Unix seconds) on `channel`
    (None: every channel); CSAT from the ratings of those conversations' hand-overs."""
    period = Period(
        since=since if since is not None else 0.0,
        until=until if until is not None else math.inf,
        channel=channel,
    )
    summary = await store.summarise(period)
    counted = {outcome.conversation_id for outcome in summary.outcomes}
    handovers = [h for h in summary.handovers if h.conversation_id in counted]
    by_conversation: defaultdict[int, list[HandoverTiming]] = defaultdict(list)
    for handover in handovers:
        by_conversation[handover.conversation_id].append(handover)
    resolved = handed = deflected = 0
    days: dict[str, list[int]] = {}
    day_waits: defaultdict[str, list[float]] = defaultdict(list)
    for outcome in summary.outcomes:
        handed_over = outcome.handovers > 0
        last = [LoggedTurn("bot", outcome.last_bot_action, outcome.last_bot_feedback)]
        if outcome.followed:
            last.append(LoggedTurn("customer"))
        stood = outcome.last_bot_action is not None and conversation_resolved(
            last, handed_over=handed_over
        )
        resolved += stood
        handed += handed_over
        deflected += not handed_over
        day = time.strftime("%Y-%m-%d", time.gmtime(outcome.created_at))
        row = days.setdefault(day, [0, 0, 0, 0])
        row[0] += 1
        row[1] += stood
        row[2] += handed_over
        row[3] += not handed_over
        day_waits[day] += [
            h.first_reply_at - h.opened_at
            for h in by_conversation[outcome.conversation_id]
            if h.first_reply_at is not None
        ]
    codes = Counter(h.reason_code or "other" for h in handovers)
    groups = Counter(_reason_group(h.reason_code) for h in handovers)
    waits = [h.first_reply_at - h.opened_at for h in handovers if h.first_reply_at is not None]
    spans = [h.closed_at - h.opened_at for h in handovers if h.closed_at is not None]
    return Figures(
        conversations=len(summary.outcomes),
        resolved=resolved,
        handed_over=handed,
        reasons=tuple(codes.most_common()),
        feedback_up=summary.feedback_up,
        feedback_down=summary.feedback_down,
        ratings=summary.ratings,
        latency_p50_ms=_percentile(summary.latencies_ms, 50),
        latency_p95_ms=_percentile(summary.latencies_ms, 95),
        days=tuple(
            Day(d, n, stood, handed, deflected, _percentile(day_waits[d], 50))
            for d, (n, stood, handed, deflected) in sorted(days.items())
        ),
        questions=tuple(q.text for q in summary.questions),
        deflected=deflected,
        handovers=len(handovers),
        reason_groups=tuple((name, groups[name]) for name, _ in REASON_GROUPS),
        first_response_p50_s=_percentile(waits, 50),
        first_response_p90_s=_percentile(waits, 90),
        resolution_p50_s=_percentile(spans, 50),
        resolution_p90_s=_percentile(spans, 90),
        operators=_operators(handovers),
        answers=tuple(q.answer for q in summary.questions),
    )


class FiguresCache:
    """Figures and question groups reused while the log has no new turn or hand-over.

    Keyed by the period and channel asked for, and valid while the log's newest turn
    and hand-over ids (`ConversationStore.activity`) stay as they were, for at most
    `max_age_s`: closing a hand-over or a thumbs-up adds no id, so those show within that age.
    A page load and the CSV links after it then cost one small query each.
    """

    def __init__(self, *, max_age_s: float = 30.0, size: int = 16) -> None:
        self.max_age_s = max_age_s
        self._size = size
        self._figures: dict[tuple[object, ...], tuple[ActivityMark, float, Figures]] = {}
        self._groups: dict[int, tuple[Figures, list[Group]]] = {}

    async def compute(
        self,
        store: ConversationStore,
        *,
        since: float | None = None,
        until: float | None = None,
        channel: str | None = None,
    ) -> Figures:
        """What `compute` returns, from the cache when the log has not changed."""
        key = (since, until, channel)
        mark = (await store.activity()).mark
        now = time.monotonic()
        hit = self._figures.get(key)
        if hit is not None and hit[0] == mark and now - hit[1] < self.max_age_s:
            return hit[2]
        figures = await compute(store, since=since, until=until, channel=channel)
        self._figures[key] = (mark, now, figures)
        while len(self._figures) > self._size:
            del self._figures[next(iter(self._figures))]
        kept = {id(entry[2]) for entry in self._figures.values()}
        self._groups = {k: v for k, v in self._groups.items() if k in kept}
        return figures

    def groups(self, figures: Figures, encode: Encode) -> list[Group]:
        """`group_questions` of the figures' questions, once per figures object."""
        found = self._groups.get(id(figures))
        if found is not None and found[0] is figures:
            return found[1]
        groups = group_questions(figures.questions, encode, answers=figures.answers)
        self._groups[id(figures)] = (figures, groups)
        return groups


def _reason_group(code: ReasonCode | None) -> str:
    return next((name for name, grouped in REASON_GROUPS if grouped == code), "other")


def _operators(handovers: Sequence[HandoverTiming]) -> tuple[OperatorTimes, ...]:
    """Per operator (who closed the hand-over, or holds it), most hand-overs first."""
    by_operator: defaultdict[str, list[HandoverTiming]] = defaultdict(list)
    for handover in handovers:
        by_operator[handover.operator_id or NO_OPERATOR].append(handover)
    rows = []
    for name, own in by_operator.items():
        waits = [h.first_reply_at - h.opened_at for h in own if h.first_reply_at is not None]
        spans = [h.closed_at - h.opened_at for h in own if h.closed_at is not None]
        rows.append(
            OperatorTimes(
                name,
                len(own),
                len(waits),
                len(spans),
                _percentile(waits, 50),
                _percentile(waits, 90),
                _percentile(spans, 50),
                _percentile(spans, 90),
            )
        )
    rows.sort(key=lambda row: (-row.handovers, row.operator))
    return tuple(rows)


def _percentile(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


Encode = Callable[[Sequence[str]], "np.typing.NDArray[np.float32]"]


def group_questions(
    questions: Sequence[str],
    encode: Encode,
    *,
    similarity: float = GROUP_SIMILARITY,
    top: int = 10,
    answers: Sequence[str | None] = (),
) -> list[Group]:
    """Questions grouped by meaning, largest groups first.

    Identical questions (after normalising case and punctuation) count together; distinct ones
    join the first, most frequent group whose leader is at least `similarity` alike.
    `answers`, when given, are the operators' answers to `questions` (None: no answer), and
    each group keeps up to three distinct ones.
    """
    counted = Counter(normalise_question(q) for q in questions if q.strip())
    asked: dict[str, list[str]] = {}
    answered: defaultdict[str, list[str]] = defaultdict(list)
    for index, question in enumerate(questions):
        text = normalise_question(question)
        asked.setdefault(text, []).append(question)
        answer = answers[index] if index < len(answers) else None
        if answer and answer not in answered[text]:
            answered[text].append(answer)
    distinct = [text for text, _ in counted.most_common(MAX_GROUPED) if text]
    if not distinct:
        return []
    vectors = np.asarray(encode([asked[text][0] for text in distinct]), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    leaders: list[int] = []
    members: dict[int, list[str]] = {}
    for index, text in enumerate(distinct):
        best = None
        if leaders:
            scores = vectors[leaders] @ vectors[index]
            if float(scores.max()) >= similarity:
                best = leaders[int(scores.argmax())]
        if best is None:
            leaders.append(index)
            members[index] = [text]
        else:
            members[best].append(text)
    groups = [
        Group(
            count=sum(counted[text] for text in texts),
            examples=tuple(asked[text][0] for text in texts[:3]),
            answers=tuple(dict.fromkeys(a for text in texts for a in answered[text]))[:3],
        )
        for texts in members.values()
    ]
    groups.sort(key=lambda group: -group.count)
    return groups[:top]


def table_csv(table: str, figures: Figures, groups: Sequence[Group] = ()) -> str:
    """One of TABLES as CSV. Cells that a spreadsheet would run as a formula (customer text
    starting with =, +, -, @, a tab or a carriage return: OWASP's CSV injection list) get a
    leading apostrophe."""
    if table not in TABLES:
        raise ValueError(f"no table {table!r}; one of {', '.join(TABLES)}")
    out = io.StringIO()
    writer = csv.writer(out)
    for row in _table_rows(table, figures, groups):
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def daily_csv(figures: Figures) -> str:
    """The daily table as CSV."""
    return table_csv("daily", figures)


def _table_rows(table: str, figures: Figures, groups: Sequence[Group]) -> list[Sequence[object]]:
    if table == "summary":
        return [("figure", "value"), *_summary_rows(figures)]
    if table == "daily":
        return [
            (
                "day",
                "conversations",
                "resolved",
                "handed_over",
                "resolution_rate",
                "deflected",
                "deflection_rate",
                "handover_rate",
                "first_response_p50_s",
            ),
            *(
                (
                    d.day,
                    d.conversations,
                    d.resolved,
                    d.handed_over,
                    _ratio(d.resolved, d.conversations),
                    d.deflected,
                    _ratio(d.deflected, d.conversations),
                    _ratio(d.handed_over, d.conversations),
                    _number(d.first_response_p50_s),
                )
                for d in figures.days
            ),
        ]
    if table == "reasons":
        return [
            ("reason", "handovers", "per_conversation"),
            *(
                (name, count, _ratio(count, figures.conversations))
                for name, count in figures.reason_groups
            ),
        ]
    if table == "operators":
        return [
            (
                "operator",
                "handovers",
                "replied",
                "closed",
                "first_response_p50_s",
                "first_response_p90_s",
                "resolution_p50_s",
                "resolution_p90_s",
            ),
            *(
                (
                    o.operator,
                    o.handovers,
                    o.replied,
                    o.closed,
                    _number(o.first_response_p50_s),
                    _number(o.first_response_p90_s),
                    _number(o.resolution_p50_s),
                    _number(o.resolution_p90_s),
                )
                for o in figures.operators
            ),
        ]
    return [
        ("count", "examples", "answers"),
        *((g.count, "\n".join(g.examples), "\n".join(g.answers)) for g in groups),
    ]


def _summary_rows(figures: Figures) -> list[tuple[str, object]]:
    return [
        ("conversations", figures.conversations),
        ("resolved", figures.resolved),
        ("resolution_rate", _ratio(figures.resolved, figures.conversations)),
        ("deflected", figures.deflected),
        ("deflection_rate", _ratio(figures.deflected, figures.conversations)),
        ("handed_over", figures.handed_over),
        ("handover_rate", _ratio(figures.handed_over, figures.conversations)),
        ("handovers", figures.handovers),
        ("csat", _number(figures.csat)),
        ("ratings", len(figures.ratings)),
        ("feedback_up", figures.feedback_up),
        ("feedback_down", figures.feedback_down),
        ("first_response_p50_s", _number(figures.first_response_p50_s)),
        ("first_response_p90_s", _number(figures.first_response_p90_s)),
        ("resolution_p50_s", _number(figures.resolution_p50_s)),
        ("resolution_p90_s", _number(figures.resolution_p90_s)),
        ("latency_p50_ms", _number(figures.latency_p50_ms)),
        ("latency_p95_ms", _number(figures.latency_p95_ms)),
    ]


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.4f}" if whole else ""


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


# What a spreadsheet may read as the start of a formula (OWASP, "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def words_encode(texts: Sequence[str], dim: int = 512) -> np.typing.NDArray[np.float32]:
    """Bag-of-words vectors from hashed words: a model-free stand-in for an embedder, so that
    the command-line report groups questions sharing most of their words."""
    vectors = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in normalise_question(text).split():
            digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
            vectors[row, int.from_bytes(digest, "little") % dim] += 1.0
    return vectors
