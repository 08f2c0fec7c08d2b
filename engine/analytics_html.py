"""The figures drawn and written out: SVG bar charts and the self-contained HTML report.

Charts are drawn on the server from counts, dates and names (escaped); the report inlines its
style and charts, so it opens from a file with no script and no links.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

from engine.analytics import Figures, Group


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


def charts(figures: Figures) -> list[str]:
    """The daily series and the reasons as SVG charts (counts, dates and names only)."""
    days = figures.days
    labels = [day.day for day in days]
    return [
        bar_chart("Conversations per day", labels, [d.conversations for d in days], percent=False),
        bar_chart(
            "Resolution rate per day",
            labels,
            [d.resolved / d.conversations for d in days],
            percent=True,
        ),
        bar_chart(
            "Deflection rate per day (no hand-over)",
            labels,
            [d.deflected / d.conversations for d in days],
            percent=True,
        ),
        bar_chart(
            "Hand-over rate per day",
            labels,
            [d.handed_over / d.conversations for d in days],
            percent=True,
        ),
        bar_chart(
            "Operators' first response per day, median seconds",
            labels,
            [d.first_response_p50_s or 0.0 for d in days],
            percent=False,
        ),
        bar_chart(
            "Hand-overs by reason",
            [name for name, _ in figures.reason_groups],
            [count for _, count in figures.reason_groups],
            percent=False,
        ),
    ]


def period_label(since: str | None, until: str | None, channel: str | None) -> str:
    """ "since 2026-01-01 until 2026-01-31, telegram" style words for a title."""
    words = [f"since {since}" if since else "", f"until {until}" if until else ""]
    label = " ".join(word for word in words if word)
    if channel:
        label = f"{label}, {channel}" if label else channel
    return label


def rate(value: float | None) -> str:
    """A share as "12.3 %", or a dash."""
    return "—" if value is None else f"{value * 100:.1f} %"


def seconds(value: float | None) -> str:
    """A duration as "42 s", "3.5 min" or "2.0 h", or a dash."""
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def headline(figures: Figures) -> list[tuple[str, str, str]]:
    """The main figures as (key, label, shown value) rows, as the page and the report show them."""

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f} ms"

    csat = "—" if figures.csat is None else f"{figures.csat:.2f}"
    first = f"{seconds(figures.first_response_p50_s)} / {seconds(figures.first_response_p90_s)}"
    return [
        ("conversations", "Conversations with a customer message", str(figures.conversations)),
        (
            "resolution",
            "Resolution rate (the bot's last answer stood)",
            rate(figures.resolution_rate),
        ),
        ("deflection", "Deflection rate (no hand-over)", rate(figures.deflection_rate)),
        ("handover", "Hand-over rate", rate(figures.handover_rate)),
        ("csat", f"CSAT (1-5, {len(figures.ratings)} ratings)", csat),
        ("feedback", "Feedback up / down", f"{figures.feedback_up} / {figures.feedback_down}"),
        ("first_response", "Operators' first response p50 / p90", first),
        (
            "resolution_time",
            "Hand-over resolution time p50 / p90",
            f"{seconds(figures.resolution_p50_s)} / {seconds(figures.resolution_p90_s)}",
        ),
        (
            "latency",
            "Reply latency p50 / p95",
            f"{ms(figures.latency_p50_ms)} / {ms(figures.latency_p95_ms)}",
        ),
    ]


def html_report(
    figures: Figures,
    groups: Sequence[Group],
    *,
    since: str | None = None,
    until: str | None = None,
    channel: str | None = None,
) -> str:
    """A self-contained HTML page of the figures (inline style and SVG, no script, no links)."""

    def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
        cells = "".join(f"<th>{escape(h)}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
        )
        return f"<table><tr>{cells}</tr>{body}</table>"

    main = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for _, k, v in headline(figures)
    )
    reasons = table(
        ("Reason", "Hand-overs", "Per conversation"),
        [
            (name, count, rate(count / figures.conversations if figures.conversations else None))
            for name, count in figures.reason_groups
        ],
    )
    operators = table(
        ("Operator", "Hand-overs", "First response p50", "p90", "Resolution p50", "p90"),
        [
            (
                o.operator,
                o.handovers,
                seconds(o.first_response_p50_s),
                seconds(o.first_response_p90_s),
                seconds(o.resolution_p50_s),
                seconds(o.resolution_p90_s),
            )
            for o in figures.operators
        ],
    )
    grouped = "".join(
        f"<tr><td>{g.count}</td><td>{'<br>'.join(escape(e) for e in g.examples)}</td>"
        f"<td>{'<br>'.join(escape(a) for a in g.answers)}</td></tr>"
        for g in groups
    )
    label = period_label(since, until, channel)
    period = f" ({escape(label)})" if label else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Conversation log report{period}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem}"
        "table{border-collapse:collapse}td,th{padding:.3rem .6rem;border-bottom:1px solid #ccd;"
        "text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>Conversation log report{period}</h1>"
        f"<p>Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.</p>"
        f"<table>{main}</table>"
        f"<h2>Hand-overs by reason</h2>{reasons}"
        f"<h2>Operators</h2>{operators}"
        + "".join(f"<p>{chart}</p>" for chart in charts(figures))
        + "<h2>What to add next</h2><p>Questions the bot could not answer, grouped.</p>"
        "<table><tr><th>Asked</th><th>Examples</th><th>Operators' answers</th></tr>"
        f"{grouped}</table></body></html>"
    )
