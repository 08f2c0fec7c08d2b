"""Analytics figures against a log whose right answers are worked out by hand."""

from __future__ import annotations

import asyncio
import calendar
import csv
import io
import itertools
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.web.users import UserStore
from engine import analytics, analytics_html
from engine.log import (
    Action,
    Conversation,
    ConversationLog,
    ConversationStore,
    Handover,
    LogConfig,
    ReasonCode,
    Turn,
    open_store,
)
from engine.log.__main__ import main as log_main
from tests.fakes import HashEmbedder
from tests.web.conftest import HashKb
from tests.web.console_helpers import PASSWORD, console_config
from tests.web.server import WebServer, serve_web
from tests.web.test_console import sign_in


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
            return await analytics.compute(log)
        finally:
            await log.close()

    figures = asyncio.run(run())
    # Resolved: a (answered, then quiet) and b (rated up); c was rated down, e ended with a
    # clarifying question, d, f and h were handed over.
    assert (figures.conversations, figures.resolved, figures.handed_over) == (7, 2, 3)
    assert figures.resolution_rate == 2 / 7 and figures.handover_rate == 3 / 7
    assert dict(figures.reasons) == {"human_requested": 2, "negative_sentiment": 1}
    assert (figures.feedback_up, figures.feedback_down) == (1, 1)
    assert figures.csat is None and figures.ratings == ()  # nobody rated
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


# A second log, written with exact times through restore(), on SQLite and PostgreSQL alike.
DAY1 = calendar.timegm((2026, 3, 2, 0, 0, 0))
DAY2 = DAY1 + 86400
RATING = "How did we do? Reply 1 to 5."


def timed_log() -> list[Conversation]:
    """Nine conversations over two days and two channels; expected figures in the tests."""
    ids = iter(range(1, 100))
    handover_ids = iter(range(1, 100))

    def conversation(
        cid: int,
        channel: str,
        at: float,
        question: str | None,
        action: Action = "answer",
        code: ReasonCode = "confident",
        *,
        latency: float | None = None,
        feedback: int | None = None,
        handover: tuple[float | None, float | None, str | None] | None = None,
        answer: str | None = None,
        rating: tuple[int, float] | None = None,
    ) -> Conversation:
        turns: list[Turn] = []
        handovers: tuple[Handover, ...] = ()
        if question is not None:
            turns.append(Turn(next(ids), cid, "customer", question, at))
            turns.append(
                Turn(
                    next(ids),
                    cid,
                    "bot",
                    "reply",
                    at + 1,
                    action=action,
                    reason_code=code,
                    latencies_ms={"retrieve": latency / 4, "generate": latency * 3 / 4}
                    if latency
                    else {},
                    feedback=feedback,
                )
            )
        if handover is not None:
            replied, closed, operator = handover
            if replied is not None:
                turns.append(Turn(next(ids), cid, "operator", answer or "", at + 2 + replied))
            if closed is not None:  # the rating question comes after the close: no reply
                turns.append(Turn(next(ids), cid, "operator", RATING, at + 3 + closed))
            handovers = (
                Handover(
                    next(handover_ids),
                    cid,
                    code,
                    at + 2,
                    None if closed is None else at + 2 + closed,
                    operator if closed is not None else None,
                    None,
                    code,
                    rating_asked_at=None if rating is None else at + 3 + (closed or 0),
                    rating=None if rating is None else rating[0],
                    rated_at=None if rating is None else rating[1],
                ),
            )
        return Conversation(
            cid, channel, f"user-{cid}", None, at, at + 5, tuple(turns), handovers=handovers
        )

    hour = 3600.0
    return [
        conversation(1, "web", DAY1 + hour, "How do I return an item?", latency=40),
        conversation(2, "telegram", DAY1 + 2 * hour, "Ship abroad?", latency=100, feedback=1),
        conversation(3, "web", DAY1 + 3 * hour, "Pay later?", latency=20, feedback=-1),
        conversation(
            4,
            "telegram",
            DAY1 + 4 * hour,
            "I want a person",
            "handoff",
            "human_requested",
            handover=(60, 300, "ann"),
            answer="Let me help you.",
            rating=(1, DAY2 + 10 * hour),  # rated the next day: still a first-day figure
        ),
        conversation(5, "web", DAY1 + 5 * hour, "Where is my parcel?", "clarify", "ambiguous"),
        conversation(
            6,
            "web",
            DAY2 + hour,
            "This is awful!!",
            "handoff",
            "negative_sentiment",
            handover=(120, 600, "olaf"),
            answer="I am sorry, let me fix this.",
            rating=(5, DAY2 + 2 * hour),
        ),
        conversation(7, "telegram", DAY2 + 2 * hour, None),  # no customer message: not counted
        conversation(
            8,
            "telegram",
            DAY2 + 3 * hour,
            "where is my parcel",
            "handoff",
            "repeated_failure",
            handover=(None, None, None),
        ),
        conversation(
            9,
            "web",
            DAY2 + 4 * hour,
            "Do you sell gift cards?",
            "handoff",
            "out_of_scope",
            handover=(30, 90, "ann"),
            answer="Yes, in the shop.",
        ),
    ]


@pytest.fixture
async def timed_store(any_log: LogConfig) -> AsyncIterator[ConversationStore]:
    store = await open_store(any_log)
    try:
        await store.restore(timed_log())
        yield store
    finally:
        await store.close()


async def test_figures_of_a_log_with_known_times(timed_store: ConversationStore) -> None:
    figures = await analytics.compute(timed_store)
    # 8 conversations with a customer message (7 has none). Resolved: 1 (answered, quiet) and
    # 2 (rated up). Handed over: 4, 6, 8, 9; deflected (no hand-over): 1, 2, 3, 5.
    assert (figures.conversations, figures.resolved, figures.handed_over) == (8, 2, 4)
    assert (figures.deflected, figures.deflection_rate, figures.resolution_rate) == (4, 0.5, 0.25)
    assert figures.reason_groups == (
        ("asked", 1),
        ("sentiment", 1),
        ("repeated misses", 1),
        ("out of scope", 1),
        ("other", 0),
    )
    # First replies 60, 120 and 30 s after the opening (8 had none; the rating questions come
    # after the close and do not count); closes after 300, 600 and 90 s. Nearest rank:
    # p50 is the 2nd of 3, p90 the 3rd.
    assert (figures.first_response_p50_s, figures.first_response_p90_s) == (60, 120)
    assert (figures.resolution_p50_s, figures.resolution_p90_s) == (300, 600)
    assert figures.operators == (
        analytics.OperatorTimes("ann", 2, 2, 2, 30, 60, 90, 300),
        analytics.OperatorTimes(analytics.NO_OPERATOR, 1, 0, 0, None, None, None, None),
        analytics.OperatorTimes("olaf", 1, 1, 1, 120, 120, 600, 600),
    )
    assert (figures.latency_p50_ms, figures.latency_p95_ms) == (40, 100)
    assert (figures.feedback_up, figures.feedback_down) == (1, 1)
    assert figures.days == (
        analytics.Day("2026-03-02", 5, 2, 1, 4, 60),
        analytics.Day("2026-03-03", 3, 0, 3, 0, 30),
    )
    assert list(zip(figures.questions, figures.answers, strict=True)) == [
        ("I want a person", "Let me help you."),
        ("Where is my parcel?", None),
        ("This is awful!!", "I am sorry, let me fix this."),
        ("where is my parcel", None),
        ("Do you sell gift cards?", "Yes, in the shop."),
    ]


async def test_the_channel_and_the_period_apply_to_every_figure(
    timed_store: ConversationStore,
) -> None:
    telegram = await analytics.compute(timed_store, channel="telegram")
    # 2 (resolved, deflected), 4 (handed over, replied after 60 s), 8 (handed over, open).
    assert (telegram.conversations, telegram.resolved, telegram.handed_over) == (3, 1, 2)
    assert telegram.deflected == 1 and telegram.first_response_p50_s == 60
    assert dict(telegram.reason_groups) == {
        "asked": 1,
        "sentiment": 0,
        "repeated misses": 1,
        "out of scope": 0,
        "other": 0,
    }
    assert (telegram.feedback_up, telegram.feedback_down, telegram.latency_p50_ms) == (1, 0, 100)
    web = await analytics.compute(timed_store, channel="web")
    assert (web.conversations, web.resolved, web.handed_over, web.deflected) == (5, 1, 2, 3)
    assert [o.operator for o in web.operators] == ["ann", "olaf"]
    second = await analytics.compute(timed_store, since=DAY2)
    assert (second.conversations, second.handed_over, second.deflected) == (3, 3, 0)
    assert [d.day for d in second.days] == ["2026-03-03"]
    assert second.questions == ("This is awful!!", "where is my parcel", "Do you sell gift cards?")
    first = await analytics.compute(timed_store, until=DAY2)
    assert (first.conversations, first.resolved, first.handed_over) == (5, 2, 1)
    assert first.resolution_p50_s == 300 and [o.operator for o in first.operators] == ["ann"]
    both = await analytics.compute(timed_store, since=DAY2, channel="telegram")
    assert (both.conversations, both.handed_over, both.first_response_p50_s) == (1, 1, None)
    nothing = await analytics.compute(timed_store, since=DAY2 + 86400)
    assert nothing.conversations == 0 and nothing.resolution_rate is None and nothing.days == ()


async def test_csat_counts_the_ratings_of_the_conversations_asked_for(
    timed_store: ConversationStore,
) -> None:
    """CSAT follows the period (by the conversation's start) and the channel like every figure:
    conversation 4 (telegram, first day) was rated 1 on the second day, 6 (web) rated 5."""
    assert (await analytics.compute(timed_store)).ratings == (1, 5)
    telegram = await analytics.compute(timed_store, channel="telegram")
    assert (telegram.csat, telegram.ratings) == (1.0, (1,))
    assert (await analytics.compute(timed_store, channel="web")).ratings == (5,)
    # The first day's conversations: 4's rating counts though given on the second day.
    assert (await analytics.compute(timed_store, until=DAY2)).ratings == (1,)
    second = await analytics.compute(timed_store, since=DAY2)
    assert (second.csat, second.ratings) == (5.0, (5,))
    assert (await analytics.compute(timed_store, since=DAY2, channel="telegram")).csat is None


async def test_each_csv_table_of_a_known_log(timed_store: ConversationStore) -> None:
    figures = await analytics.compute(timed_store)
    groups = analytics.group_questions(
        figures.questions, HashEmbedder().encode, answers=figures.answers
    )
    assert (groups[0].count, groups[0].answers) == (2, ())
    assert sorted(g.answers for g in groups) == [
        (),
        ("I am sorry, let me fix this.",),
        ("Let me help you.",),
        ("Yes, in the shop.",),
    ]

    def table(name: str) -> list[list[str]]:
        return list(csv.reader(io.StringIO(analytics.table_csv(name, figures, groups))))

    summary = dict(table("summary")[1:])
    assert summary["conversations"] == "8" and summary["deflection_rate"] == "0.5000"
    assert summary["resolution_rate"] == "0.2500" and summary["handover_rate"] == "0.5000"
    assert summary["csat"] == "3.0" and summary["ratings"] == "2"
    assert summary["first_response_p90_s"] == "120.0"
    assert table("daily") == [
        [
            "day",
            "conversations",
            "resolved",
            "handed_over",
            "resolution_rate",
            "deflected",
            "deflection_rate",
            "handover_rate",
            "first_response_p50_s",
        ],
        ["2026-03-02", "5", "2", "1", "0.4000", "4", "0.8000", "0.2000", "60.0"],
        ["2026-03-03", "3", "0", "3", "0.0000", "0", "0.0000", "1.0000", "30.0"],
    ]
    assert table("reasons")[1:] == [
        ["asked", "1", "0.1250"],
        ["sentiment", "1", "0.1250"],
        ["repeated misses", "1", "0.1250"],
        ["out of scope", "1", "0.1250"],
        ["other", "0", "0.0000"],
    ]
    assert table("operators")[1] == ["ann", "2", "2", "2", "30.0", "60.0", "90.0", "300.0"]
    assert table("operators")[2] == [analytics.NO_OPERATOR, "1", "0", "0", "", "", "", ""]
    clusters = table("clusters")
    assert clusters[0] == ["count", "examples", "answers"]
    assert clusters[1] == ["2", "Where is my parcel?", ""]
    assert ["1", "Do you sell gift cards?", "Yes, in the shop."] in clusters
    # Customer text that a spreadsheet would run as a formula is defused.
    hostile = [analytics.Group(1, ('=HYPERLINK("http://x")',), ("@SUM(1)",))]
    assert table_of(hostile)[1] == ["1", '\'=HYPERLINK("http://x")', "'@SUM(1)"]
    with pytest.raises(ValueError, match="no table 'nope'"):
        analytics.table_csv("nope", figures)


def table_of(groups: list[analytics.Group]) -> list[list[str]]:
    figures = analytics.Figures(0, 0, 0, (), 0, 0, (), None, None, (), ())
    return list(csv.reader(io.StringIO(analytics.table_csv("clusters", figures, groups))))


def test_a_leading_tab_or_carriage_return_is_defused_too() -> None:
    """OWASP's CSV injection list: =, +, -, @, a tab and a carriage return."""
    hidden = [
        analytics.Group(1, ("\t=1+2",), ("\r=cmd|' /C calc'!A0",)),
        analytics.Group(1, ("+1",), ("-2",)),
    ]
    assert table_of(hidden)[1:] == [
        ["1", "'\t=1+2", "'\r=cmd|' /C calc'!A0"],
        ["1", "'+1", "'-2"],
    ]


async def test_the_cache_reuses_figures_until_the_log_changes(
    timed_store: ConversationStore,
) -> None:
    cache = analytics.FiguresCache()
    first = await cache.compute(timed_store, channel="web")
    assert await cache.compute(timed_store, channel="web") is first
    assert (await cache.compute(timed_store)).conversations == 8  # another key
    groups = cache.groups(first, HashEmbedder().encode)
    assert cache.groups(first, HashEmbedder().encode) is groups
    conversation = await timed_store.start_conversation("web", "new")
    await timed_store.add_turn(conversation, "customer", "Hello?")
    fresh = await cache.compute(timed_store, channel="web")
    assert fresh is not first and fresh.conversations == first.conversations + 1
    cache.max_age_s = 0  # a close or a rating adds no id: the age bounds how stale it gets
    assert await cache.compute(timed_store, channel="web") is not fresh


def test_the_command_line_report_takes_a_period_and_a_channel(tmp_path: Path) -> None:
    async def make() -> None:
        log = await ConversationLog.open(tmp_path / "timed.db")
        try:
            await log.restore(timed_log())
        finally:
            await log.close()

    asyncio.run(make())
    page = tmp_path / "report.html"
    db = str(tmp_path / "timed.db")
    assert log_main(["report", "--db", db, "--html", str(page)]) == 0
    html = page.read_text()
    assert "<tr><th>Deflection rate (no hand-over)</th><td>50.0 %</td></tr>" in html
    assert "<tr><th>Operators&#x27; first response p50 / p90</th><td>60 s / 2.0 min</td>" in html
    assert (
        "<tr><td>ann</td><td>2</td><td>30 s</td><td>60 s</td><td>90 s</td><td>5.0 min</td>" in html
    )
    assert "<td>Yes, in the shop.</td>" in html and RATING not in html
    assert html.count("<svg") == 6 and "<script" not in html
    args = ["report", "--db", db, "--since", "2026-03-03", "--until", "2026-03-03"]
    assert log_main([*args, "--channel", "telegram", "--html", str(page)]) == 0
    html = page.read_text()
    assert "(since 2026-03-03 until 2026-03-03, telegram)</h1>" in html
    assert "<tr><th>Conversations with a customer message</th><td>1</td></tr>" in html
    assert log_main(["report", "--db", db, "--until", "March", "--html", str(page)]) == 1


def test_the_analytics_page_filters_links_each_table_and_drafts_entries(site: WebServer) -> None:
    async def make() -> None:
        log = await ConversationLog.open(site.log_path)
        try:
            await log.restore(timed_log())
        finally:
            await log.close()

    asyncio.run(make())
    # Drafting an entry is for admins: an operator sees the groups without the button.
    with sign_in(site, "olaf") as (http, csrf):
        page = http.get("/console/analytics", params={"since": "2026-03-02", "channel": "web"})
        assert page.status_code == 200 and "Where is my parcel?" in page.text
        assert "/console/knowledge/draft" not in page.text and "New entry" not in page.text
        draft = {"csrf": csrf, "question": "Where is my parcel?", "answer": "Soon."}
        assert http.post("/console/knowledge/draft", data=draft).status_code == 403
    with sign_in(site, "ann") as (http, _):
        analytics_page_as_admin(http)


def analytics_page_as_admin(http: httpx.Client) -> None:
    """The page an admin sees: filtered figures, the CSV links, a draft form per group."""
    # CSAT on the page and in the CSV: telegram's one rating (1), not web's (5).
    telegram = {"channel": "telegram"}
    assert (
        '<th>CSAT (1-5, 1 ratings)</th><td id="csat">1.00</td>'
        in http.get("/console/analytics", params=telegram).text
    )
    summary = http.get("/console/analytics.csv", params={**telegram, "table": "summary"}).text
    assert "csat,1.0" in summary and "ratings,1" in summary
    page = http.get("/console/analytics", params={"since": "2026-03-02", "channel": "web"})
    assert page.status_code == 200
    assert '<td id="conversations">5</td>' in page.text
    assert '<td id="deflection">60.0 %</td>' in page.text
    links = re.findall(r'href="(/console/analytics\.csv[^"]*)"', page.text)
    tables = {"summary", "daily", "reasons", "operators", "clusters"}
    assert {parse_qs(urlsplit(unescape(link)).query)["table"][0] for link in links} == tables
    for link in links:
        query = parse_qs(urlsplit(unescape(link)).query)
        assert query["since"] == ["2026-03-02"] and query["channel"] == ["web"]
        response = http.get(unescape(link))
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/csv"
        )
        assert response.headers["content-disposition"].endswith(f'{query["table"][0]}.csv"')
    clusters = http.get("/console/analytics.csv", params={"table": "clusters"}).text
    assert '1,Do you sell gift cards?,"Yes, in the shop."' in clusters.replace("\r", "")
    daily = http.get("/console/analytics.csv", params={"table": "daily", "until": "2026-03-02"})
    assert len(daily.text.splitlines()) == 2  # the header and the first day
    # Each group of questions posts a draft entry, its text in the form body only.
    forms = re.findall(
        r'<form method="post" action="/console/knowledge/draft">(.*?)</form>',
        page.text,
        re.S,
    )
    assert len(forms) == 3  # web: 5, 6 and 9 asked what the bot could not answer
    fields = [dict(re.findall(r'name="(\w+)" value="([^"]*)"', form)) for form in forms]
    assert all(set(f) == {"csrf", "question", "alternatives", "answer"} for f in fields)
    drafts = {f["question"]: (f["alternatives"], f["answer"]) for f in fields}
    assert drafts == {
        "Where is my parcel?": ("", ""),
        "This is awful!!": ("", "I am sorry, let me fix this."),
        "Do you sell gift cards?": ("", "Yes, in the shop."),
    }
    hrefs = re.findall(r'(?:href|action)="([^"]*)"', page.text)
    assert not any("parcel" in h or "gift" in h for h in hrefs)
    assert http.get("/console/analytics.csv", params={"table": "nope"}).status_code == 404
    assert http.get("/console/analytics", params={"channel": "fax"}).status_code == 400
    assert http.get("/console/analytics", params={"until": "soon"}).status_code == 400


def text_figures(out: str) -> dict[str, object]:
    """The figures the text report printed that the console shows too."""

    def block(header: str) -> dict[str, int]:
        lines = out.split(header, 1)[1].splitlines()[1:] if header in out else []
        rows = [re.fullmatch(r"\s+(\d+)\s+(.+)", line) for line in lines]
        return {
            row.group(2): int(row.group(1))
            for row in itertools.takewhile(lambda r: r is not None, rows)
            if row
        }

    def number(pattern: str) -> tuple[str, ...]:
        found = re.search(pattern, out)
        return found.groups() if found else ()

    return {
        "all_conversations": int(number(r"conversations +(\d+) \(")[0]),
        "conversations": int(number(r"conversations +\d+ \((\d+) with a customer")[0]),
        "answered": int(number(r"answered +(\d+)")[0]),
        "clarified": int(number(r"clarified +(\d+)")[0]),
        "feedback": number(r"feedback +\+(\d+) / -(\d+)"),
        "handed_over": int(number(r"handed over +(\d+) \(")[0]),
        "handovers": int(number(r"\((\d+) handovers opened\)")[0]),
        "reasons": block("hand-overs by reason:"),
        "unanswered": sum(block("top unanswered questions").values()),
        "ratings": int((number(r"CSAT .*\((\d+) ratings\)") or ("0",))[0]),
        "resolution": (number(r"resolution rate +([\d.]+)%") or (None,))[0],
    }


def html_figures(html: str) -> dict[str, object]:
    """The same figures from the HTML report."""
    main, reasons = html.split("<h2>Hand-overs by reason</h2>", 1)
    reasons, rest = reasons.split("<h2>Operators</h2>", 1)
    grouped = rest.split("<h2>What to add next</h2>", 1)[1]
    ratings = re.search(r"<th>CSAT \(1-5, (\d+) ratings\)</th>", main)
    resolution = re.search(
        r"Resolution rate \(the bot&#x27;s last answer stood\)</th><td>(.*?)<", main
    )
    assert ratings and resolution
    return {
        "conversations": int(
            re.findall(r"<th>Conversations with a customer message</th><td>(\d+)<", main)[0]
        ),
        "handover_rate": re.findall(r"<th>Hand-over rate</th><td>(.*?)</td>", main)[0],
        "reasons": {
            name: int(count)
            for name, count in re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td>", reasons)
            if count != "0"
        },
        "unanswered": sum(int(n) for n in re.findall(r"<tr><td>(\d+)</td><td>", grouped)),
        "ratings": int(ratings.group(1)),
        "resolution": resolution.group(1),
    }


# The text report's options: every channel and day filter, alone and together.
FILTER_SETS = [
    [],
    ["--channel", "telegram"],
    ["--channel", "web"],
    ["--since", "2026-03-03"],
    ["--until", "2026-03-02"],
    ["--since", "2026-03-02", "--until", "2026-03-02", "--channel", "telegram"],
]


@pytest.mark.parametrize("options", FILTER_SETS)
def test_the_text_report_the_html_and_the_console_agree(
    any_log: LogConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
) -> None:
    """Same period, same channel: the same conversations, hand-overs, reasons, unanswered
    questions (out of scope included) and CSAT in the text report, the HTML and `compute`."""
    # An out-of-scope answer: not handed over, still a question the bot could not answer.
    joke = Conversation(
        10,
        "telegram",
        "user-10",
        None,
        DAY2 + 5 * 3600,
        DAY2 + 5 * 3600 + 5,
        (
            Turn(90, 10, "customer", "Tell me a joke", DAY2 + 5 * 3600),
            Turn(
                91,
                10,
                "bot",
                "I only help with orders.",
                DAY2 + 5 * 3600 + 1,
                action="answer",
                reason_code="out_of_scope",
            ),
        ),
    )

    async def restore_and_compute() -> analytics.Figures:
        store = await open_store(any_log)
        try:
            await store.restore([*timed_log(), joke])
            since = dict(zip(options[::2], options[1::2], strict=True)).get("--since")
            until = dict(zip(options[::2], options[1::2], strict=True)).get("--until")
            return await analytics.compute(
                store,
                since=calendar.timegm(time.strptime(since, "%Y-%m-%d")) if since else None,
                until=calendar.timegm(time.strptime(until, "%Y-%m-%d")) + 86400 if until else None,
                channel=dict(zip(options[::2], options[1::2], strict=True)).get("--channel"),
            )
        finally:
            await store.close()

    figures = asyncio.run(restore_and_compute())
    page = tmp_path / "report.html"
    db = any_log.url
    assert db is not None
    assert log_main(["report", "--db", db, "--top", "100", *options, "--html", str(page)]) == 0
    text = text_figures(capsys.readouterr().out)
    html = html_figures(page.read_text())
    groups = dict(analytics.REASON_GROUPS)
    by_group = Counter({name: count for name, count in figures.reason_groups if count})
    text_groups: Counter[str] = Counter()
    for code, count in cast(dict[str, int], text["reasons"]).items():
        text_groups[next((n for n, c in groups.items() if c == code), "other")] += count
    assert text["conversations"] == html["conversations"] == figures.conversations
    assert text["handed_over"] == figures.handed_over
    assert html["handover_rate"] == analytics_html.rate(figures.handover_rate)
    assert text["handovers"] == figures.handovers == sum(by_group.values())
    assert text["reasons"] == dict(figures.reasons)
    assert text_groups == by_group == Counter(cast(dict[str, int], html["reasons"]))
    assert text["unanswered"] == html["unanswered"] == len(figures.questions)
    assert text["ratings"] == html["ratings"] == len(figures.ratings)
    rate = figures.resolution_rate
    assert text["resolution"] == (None if rate is None else f"{rate:.1%}"[:-1])
    assert html["resolution"] == analytics_html.rate(rate)


def test_the_api_report_is_the_text_report(
    any_log: LogConfig, tmp_path: Path, hash_kb: HashKb, capsys: pytest.CaptureFixture[str]
) -> None:
    """`GET /api/report` counts as `python -m engine.log report` does, for every filter set."""

    async def restore() -> None:
        store = await open_store(any_log)
        try:
            await store.restore(timed_log())
        finally:
            await store.close()

    asyncio.run(restore())
    db = any_log.url
    assert db is not None
    kb_dir, embedder = hash_kb
    with (
        serve_web(tmp_path, kb_dir, embedder, log=any_log) as web,
        web.client(web.keys.admin) as admin,
    ):
        everything = admin.get("/api/report").json()
        # By hand (see timed_log): 9 conversations, 8 with a customer message; 4 handed over
        # (4, 6, 8, 9), one hand-over each, after one handoff turn each; resolved 1 and 2.
        assert everything["conversations"] == 9 and everything["with_customer"] == 8
        assert everything["handed_over"] == everything["handovers"] == 4
        assert everything["handoff_turns"] == 4 and everything["answered"] == 3
        assert everything["handover_reasons"] == {
            "human_requested": 1,
            "negative_sentiment": 1,
            "repeated_failure": 1,
            "out_of_scope": 1,
        }
        assert everything["resolution_rate"] == 0.25
        assert everything["ratings"] == 2 and everything["csat"] == 3.0
        for options in FILTER_SETS:
            assert log_main(["report", "--db", db, "--top", "100", *options]) == 0
            text = text_figures(capsys.readouterr().out)
            asked = {
                k.removeprefix("--"): v for k, v in zip(options[::2], options[1::2], strict=True)
            }
            api = admin.get("/api/report", params={**asked, "top": 100}).json()
            rate = api["resolution_rate"]
            assert {
                "all_conversations": api["conversations"],
                "conversations": api["with_customer"],
                "answered": api["answered"],
                "clarified": api["clarified"],
                "feedback": (str(api["feedback_up"]), str(api["feedback_down"])),
                "handed_over": api["handed_over"],
                "handovers": api["handovers"],
                "reasons": api["handover_reasons"],
                "unanswered": sum(q["count"] for q in api["top_unanswered"]),
                "ratings": api["ratings"],
                "resolution": None if rate is None else f"{rate:.1%}"[:-1],
            } == text, options
        bad = admin.get("/api/report", params={"until": "2026-02-30"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "until"


def test_a_terminal_conversation_counts_alike_in_the_api_the_console_and_the_command_line(
    any_log: LogConfig, tmp_path: Path, hash_kb: HashKb, capsys: pytest.CaptureFixture[str]
) -> None:
    """scripts/chat.py logs on "terminal": every report takes that channel, and a channel the
    log has never held is refused by each of them, not counted as zero."""
    at = DAY2 + 6 * 3600
    terminal = Conversation(
        11,
        "terminal",
        "local",
        None,
        at,
        at + 2,
        (
            Turn(95, 11, "customer", "Can I pay by card?", at),
            Turn(96, 11, "bot", "Yes.", at + 1, action="answer", reason_code="confident"),
        ),
    )

    async def restore() -> None:
        store = await open_store(any_log)
        try:
            await store.restore([*timed_log(), terminal])
        finally:
            await store.close()

    asyncio.run(restore())
    db = any_log.url
    assert db is not None
    assert log_main(["report", "--db", db, "--channel", "terminal"]) == 0
    text = text_figures(capsys.readouterr().out)
    assert text["all_conversations"] == text["conversations"] == text["answered"] == 1
    assert log_main(["report", "--db", db, "--channel", "termnal"]) == 1
    refused = capsys.readouterr().err
    assert (
        refused
        == "error: --channel='termnal': one of all, telegram, telegram-chat, terminal, web\n"
    )
    kb_dir, embedder = hash_kb
    config = console_config(tmp_path)
    UserStore(config.users_path).create("ann", "admin", PASSWORD)
    with (
        serve_web(tmp_path, kb_dir, embedder, config=config, log=any_log) as web,
        web.client(web.keys.admin) as admin,
        sign_in(web, "ann") as (http, _),
    ):
        api = admin.get("/api/report", params={"channel": "terminal"}).json()
        page = http.get("/console/analytics", params={"channel": "terminal"})
        summary = http.get(
            "/console/analytics.csv", params={"channel": "terminal", "table": "summary"}
        )
        unknown = [
            admin.get("/api/report", params={"channel": "termnal"}),
            http.get("/console/analytics", params={"channel": "termnal"}),
            http.get("/console/analytics.csv", params={"channel": "termnal", "table": "daily"}),
        ]
    assert (api["conversations"], api["with_customer"], api["answered"]) == (1, 1, 1)
    assert page.status_code == 200 and '<td id="conversations">1</td>' in page.text
    assert "<option selected>terminal</option>" in page.text
    assert summary.status_code == 200 and "conversations,1\r\n" in summary.text
    assert [response.status_code for response in unknown] == [400, 400, 400]
    assert unknown[0].json()["error"]["message"] == (
        "channel='termnal': one of all, telegram, telegram-chat, terminal, web"
    )
