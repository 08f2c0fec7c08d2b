"""Analytics figures against a log whose right answers are worked out by hand."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine import analytics, analytics_html
from engine.log import ConversationLog, ReasonCode
from engine.log.__main__ import main as log_main
from tests.fakes import HashEmbedder


async def known_log(path: Path) -> ConversationLog:
    """Eight conversations; the expected figures are in the test below."""
    log = await ConversationLog.open(path)

    async def talk(
        user: str,
        question: str,
        action: str,
        *,
        code: ReasonCode | None = None,
        latency: float | None = None,
        feedback: int | None = None,
        handover: ReasonCode | None = None,
    ) -> None:
        conversation = await log.start_conversation("web", user)
        await log.add_turn(conversation, "customer", question)
        bot = await log.add_turn(
            conversation,
            "bot",
            "reply",
            action=action,  # type: ignore[arg-type]
            reason_code=code,
            latencies_ms={"retrieve": latency / 4, "generate": latency * 3 / 4} if latency else {},
        )
        if feedback is not None:
            await log.add_feedback(bot, feedback)  # type: ignore[arg-type]
        if handover is not None:
            await log.open_handover(conversation, handover, reason_code=handover)

    await talk("a", "How do I return an item?", "answer", code="confident", latency=40)
    await talk("b", "Do you ship abroad?", "answer", code="confident", latency=100, feedback=1)
    await talk("c", "Can I pay later?", "answer", code="confident", latency=20, feedback=-1)
    await talk("d", "I want a person", "handoff", handover="human_requested")
    await talk("e", "Where is my parcel?", "clarify", code="ambiguous")
    await talk("f", "This is awful!!", "handoff", handover="negative_sentiment")
    await log.start_conversation("web", "g")  # no customer message: not counted
    await talk("h", "where is my parcel", "handoff", handover="human_requested")
    return log


def test_figures_of_a_known_log(tmp_path: Path) -> None:
    async def run() -> analytics.Figures:
        log = await known_log(tmp_path / "log.db")
        try:
            return await analytics.compute(log, ratings=[5, 3])
        finally:
            await log.close()

    figures = asyncio.run(run())
    # Resolved: a (answered, then quiet) and b (rated up); c was rated down, e ended with a
    # clarifying question, d, f and h were handed over.
    assert (figures.conversations, figures.resolved, figures.handed_over) == (7, 2, 3)
    assert figures.resolution_rate == 2 / 7 and figures.handover_rate == 3 / 7
    assert dict(figures.reasons) == {"human_requested": 2, "negative_sentiment": 1}
    assert (figures.feedback_up, figures.feedback_down) == (1, 1)
    assert figures.csat == 4.0
    # Latencies 20, 40, 100 ms: nearest-rank p50 is the 2nd, p95 the 3rd.
    assert (figures.latency_p50_ms, figures.latency_p95_ms) == (40.0, 100.0)
    assert sum(d.conversations for d in figures.days) == 7
    assert sorted(figures.questions) == sorted(
        ["I want a person", "Where is my parcel?", "This is awful!!", "where is my parcel"]
    )
    groups = analytics.group_questions(figures.questions, HashEmbedder().encode)
    assert groups[0] == analytics.Group(2, ("Where is my parcel?",))
    assert sorted(g.count for g in groups) == [1, 1, 2]
    csv = analytics.daily_csv(figures).splitlines()
    assert csv[0].startswith("day,conversations,resolved,handed_over,resolution_rate,deflected,")
    assert ",7,2,3,0.2857,4,0.5714,0.4286," in csv[1]


def test_questions_of_one_meaning_form_one_group() -> None:
    questions = [
        "where is my parcel",
        "where is my parcel now",
        "Where is my parcel?",
        "how do I pay with a card",
    ]
    groups = analytics.group_questions(questions, HashEmbedder().encode, similarity=0.7)
    assert [g.count for g in groups] == [3, 1]
    assert groups[0].examples[0] in ("where is my parcel", "Where is my parcel?")


def test_a_chart_escapes_its_labels() -> None:
    svg = analytics_html.bar_chart("t", ["<b>x</b>"], [1.0], percent=False)
    assert "<b>" not in svg and "&lt;b&gt;" in svg


def test_the_command_line_writes_a_self_contained_html_report(tmp_path: Path) -> None:
    async def make() -> None:
        log = await known_log(tmp_path / "log.db")
        await log.close()

    asyncio.run(make())
    page = tmp_path / "report.html"
    status = log_main(
        ["report", "--db", str(tmp_path / "log.db"), "--since", "2000-01-01", "--html", str(page)]
    )
    assert status == 0
    html = page.read_text()
    assert "<tr><th>Resolution rate (the bot&#x27;s last answer stood)</th><td>28.6 %</td>" in html
    assert "<tr><th>Hand-over rate</th><td>42.9 %</td></tr>" in html
    assert html.count("<svg") == 6 and "<script" not in html and "http" not in html.split("<svg")[0]
    assert "<tr><td>2</td><td>Where is my parcel?</td><td></td></tr>" in html
    assert (
        log_main(
            ["report", "--db", str(tmp_path / "log.db"), "--since", "May", "--html", str(page)]
        )
        == 1
    )
