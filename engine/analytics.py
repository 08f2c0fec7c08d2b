"""The console's figures: resolution, hand-overs by reason, CSAT, feedback, latency, days.

One pass over the log's export stream. Resolution follows engine.resolution (Intercom's
definition for Fin: the bot's last answer stood, rated up or followed by silence, and no
hand-over). The hand-over rate is the share of conversations with a customer message in which
a hand-over was opened. Questions the bot could not answer are grouped by meaning with the
knowledge base's embedder, so the lead sees what to add next.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np

from engine.log import ConversationStore
from engine.log.report import normalise_question
from engine.resolution import LoggedTurn, conversation_resolved

# A question joins a group when its cosine similarity to the group's first question is this high.
GROUP_SIMILARITY = 0.8
MAX_GROUPED = 2000


@dataclass(frozen=True, slots=True)
class Day:
    """One UTC day's conversations (by when they started)."""

    day: str
    conversations: int
    resolved: int
    handed_over: int


@dataclass(frozen=True, slots=True)
class Group:
    """Questions of one meaning the bot did not answer: how often, and a few as asked."""

    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Figures:
    """What the analytics page and its CSV show; rates are None where nothing was counted."""

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

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.conversations if self.conversations else None

    @property
    def handover_rate(self) -> float | None:
        return self.handed_over / self.conversations if self.conversations else None

    @property
    def csat(self) -> float | None:
        """Mean rating (1-5) of resolved hand-overs, None when no customer rated."""
        return sum(self.ratings) / len(self.ratings) if self.ratings else None


async def compute(
    store: ConversationStore, *, since: float | None = None, ratings: Sequence[int] = ()
) -> Figures:
    """The figures of conversations started at or after `since` (Unix seconds)."""
    conversations = resolved = handed = up = down = 0
    reasons: Counter[str] = Counter()
    latencies: list[float] = []
    days: dict[str, list[int]] = {}
    questions: list[str] = []
    async for conversation in store.export_conversations():
        if since is not None and conversation.created_at < since:
            continue
        turns = conversation.turns
        for turn in turns:
            if turn.feedback == 1:
                up += 1
            elif turn.feedback == -1:
                down += 1
            if turn.role == "bot" and turn.latencies_ms:
                latencies.append(sum(turn.latencies_ms.values()))
        if not any(t.role == "customer" for t in turns):
            continue
        conversations += 1
        handed_over = bool(conversation.handovers)
        stood = conversation_resolved(
            [LoggedTurn(t.role, t.action, t.feedback) for t in turns], handed_over=handed_over
        )
        resolved += stood
        handed += handed_over
        for handover in conversation.handovers:
            reasons[handover.reason_code or "other"] += 1
        day = days.setdefault(
            time.strftime("%Y-%m-%d", time.gmtime(conversation.created_at)), [0, 0, 0]
        )
        day[0] += 1
        day[1] += stood
        day[2] += handed_over
        waiting: list[str] = []
        for turn in turns:
            if turn.role == "customer":
                waiting.append(turn.text)
                continue
            if turn.role == "bot" and (
                turn.action in ("handoff", "clarify") or turn.reason_code == "out_of_scope"
            ):
                questions += waiting
            waiting = []
    return Figures(
        conversations=conversations,
        resolved=resolved,
        handed_over=handed,
        reasons=tuple(reasons.most_common()),
        feedback_up=up,
        feedback_down=down,
        ratings=tuple(ratings),
        latency_p50_ms=_percentile(latencies, 50),
        latency_p95_ms=_percentile(latencies, 95),
        days=tuple(Day(d, *days[d]) for d in sorted(days)),
        questions=tuple(questions),
    )


def _percentile(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


Encode = Callable[[Sequence[str]], "np.typing.NDArray[np.float32]"]


def group_questions(
    questions: Sequence[str], encode: Encode, *, similarity: float = GROUP_SIMILARITY, top: int = 10
) -> list[Group]:
    """Questions grouped by meaning, largest groups first.

    Identical questions (after normalising case and punctuation) count together; distinct ones
    join the first, most frequent group whose leader is at least `similarity` alike.
    """
    counted = Counter(normalise_question(q) for q in questions if q.strip())
    asked: dict[str, list[str]] = {}
    for question in questions:
        asked.setdefault(normalise_question(question), []).append(question)
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
        )
        for texts in members.values()
    ]
    groups.sort(key=lambda group: -group.count)
    return groups[:top]


def daily_csv(figures: Figures) -> str:
    """The daily table as CSV."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["day", "conversations", "resolved", "handed_over", "resolution_rate"])
    for day in figures.days:
        rate = f"{day.resolved / day.conversations:.4f}" if day.conversations else ""
        writer.writerow([day.day, day.conversations, day.resolved, day.handed_over, rate])
    return out.getvalue()


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, percent: bool) -> str:
    """An SVG bar chart drawn on the server; labels are escaped (they are dates and codes)."""
    width, height, pad = 640, 200, 30
    top = max(values, default=0) or 1.0
    if percent:
        top = 1.0
    step = (width - 2 * pad) / max(len(values), 1)
    thick = min(max(step - 4, 1), 48)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 40}" '
        f'role="img" aria-label="{escape(title)}" style="max-width:100%;background:#fff">',
        f'<text x="{pad}" y="16" font-size="13">{escape(title)}</text>',
        f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="#99a"/>',
    ]
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar = (height - pad) * value / top
        x = pad + index * step
        shown = f"{value:.0%}" if percent else f"{value:g}"
        parts.append(
            f'<rect x="{x + (step - thick) / 2:.1f}" y="{height - bar:.1f}" width="{thick:.1f}" '
            f'height="{bar:.1f}" fill="#2a7ae2"><title>{escape(label)}: {shown}</title></rect>'
        )
        if len(values) <= 14:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height + 14}" font-size="10" '
                f'text-anchor="middle">{escape(label[5:] if len(label) == 10 else label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def words_encode(texts: Sequence[str], dim: int = 512) -> np.typing.NDArray[np.float32]:
    """Bag-of-words vectors from hashed words: a model-free stand-in for an embedder, so that
    the command-line report groups questions sharing most of their words."""
    vectors = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in normalise_question(text).split():
            digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
            vectors[row, int.from_bytes(digest, "little") % dim] += 1.0
    return vectors


def html_report(figures: Figures, groups: Sequence[Group], *, since: str | None = None) -> str:
    """A self-contained HTML page of the figures (inline style and SVG, no script, no links)."""

    def rate(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f} %"

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f} ms"

    labels = [day.day for day in figures.days]
    rows = [
        ("Conversations with a customer message", str(figures.conversations)),
        ("Resolution rate (the bot's last answer stood)", rate(figures.resolution_rate)),
        ("Hand-over rate", rate(figures.handover_rate)),
        (
            f"CSAT (1-5, {len(figures.ratings)} ratings)",
            "—" if figures.csat is None else f"{figures.csat:.2f}",
        ),
        ("Feedback up / down", f"{figures.feedback_up} / {figures.feedback_down}"),
        (
            "Reply latency p50 / p95",
            f"{ms(figures.latency_p50_ms)} / {ms(figures.latency_p95_ms)}",
        ),
    ]
    rows += [(f"Hand-overs: {code}", str(count)) for code, count in figures.reasons]
    charts = [
        bar_chart(
            "Conversations per day", labels, [d.conversations for d in figures.days], percent=False
        ),
        bar_chart(
            "Resolution rate per day",
            labels,
            [d.resolved / d.conversations for d in figures.days],
            percent=True,
        ),
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    grouped = "".join(
        f"<tr><td>{g.count}</td><td>{'<br>'.join(escape(e) for e in g.examples)}</td></tr>"
        for g in groups
    )
    period = f" since {escape(since)}" if since else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Conversation log report{period}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem}"
        "table{border-collapse:collapse}td,th{padding:.3rem .6rem;border-bottom:1px solid #ccd;"
        "text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>Conversation log report{period}</h1>"
        f"<p>Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.</p>"
        f"<table>{table}</table>"
        + "".join(f"<p>{chart}</p>" for chart in charts)
        + "<h2>What to add next</h2><p>Questions the bot could not answer, grouped.</p>"
        f"<table><tr><th>Asked</th><th>Examples</th></tr>{grouped}</table></body></html>"
    )
