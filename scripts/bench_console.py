"""How long the console's analytics page and the HTML log report take over a large log.

    .venv/bin/python scripts/bench_console.py [--turns 100000] [--db FILE] [--no-page]

Writes a synthetic SQLite log (conversations of 4 turns: question, answer; every fifth one a
hand-over with an operator's reply, half of them closed), then times, in the same run:

- before: one pass over the whole log through the export stream, what every analytics load
  and every HTML report did before the figures were aggregated in SQL (a lower bound of it);
- figures: engine.analytics.compute, the store's SQL summary turned into figures;
- html report: the figures, the questions grouped by words and the HTML page, what --html adds;
- report command: `python -m engine.log report --db FILE --html FILE` end to end (the text
  report before the HTML one still reads the whole log);
- page: GET /console/analytics through the ASGI app in this process, signed in, with the
  packaged MiniLM embedder grouping the questions: for a period not asked before (figures
  computed), then again (from the cache until the log changes); skipped with --no-page.

The first run of each is reported apart from the best of three, so a cold file cache shows.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from engine import analytics, analytics_html
from engine.log import Conversation, ConversationLog, Handover, Retrieved, Turn
from engine.log.__main__ import main as log_main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUESTIONS = [
    "where is my parcel",
    "can I pay with paypal",
    "do you ship to norway",
    "my order arrived broken",
    "how do I change my address",
]


def synthetic(count: int, start: float) -> list[Conversation]:
    conversations = []
    turn_id = handover_id = 0
    for index in range(count):
        cid = index + 1
        at = start + index * 30.0
        handed = index % 5 == 0
        question = f"{QUESTIONS[index % len(QUESTIONS)]} {index % 97}"
        turns = []
        for pair in range(2):
            turn_id += 1
            turns.append(Turn(turn_id, cid, "customer", question, at + pair * 10))
            turn_id += 1
            last = pair == 1
            turns.append(
                Turn(
                    turn_id,
                    cid,
                    "bot",
                    "an answer",
                    at + pair * 10 + 1,
                    action="handoff" if handed and last else "answer",
                    reason_code="human_requested" if handed and last else "confident",
                    latencies_ms={"retrieve": 5.0 + index % 7, "generate": 20.0 + index % 11},
                    retrieved=(Retrieved("faq-1", 0.8),),
                    feedback=1 if index % 7 == 0 else None,
                )
            )
        handovers: tuple[Handover, ...] = ()
        if handed:
            turn_id += 1
            turns.append(
                Turn(turn_id, cid, "operator", "an operator's answer", at + 60 + index % 9)
            )
            closed = index % 10 == 0
            handover_id += 1
            handovers = (
                Handover(
                    handover_id,
                    cid,
                    "human_requested",
                    at + 12,
                    at + 300 + index % 13 if closed else None,
                    ("ann" if index % 20 == 0 else "olaf") if closed else None,
                    None,
                    "human_requested",
                ),
            )
        conversations.append(
            Conversation(
                cid, "web", f"user-{index}", None, at, at + 12, tuple(turns), handovers=handovers
            )
        )
    return conversations


async def timed(make: Callable[[], Awaitable[object]], runs: int = 3) -> tuple[float, float]:
    """The first and the best of `runs` times of `make()`, in seconds."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await make()
        times.append(time.perf_counter() - began)
    return times[0], min(times)


async def full_pass(log: ConversationLog) -> int:
    return sum([1 async for _ in log.export_conversations()])


async def write(db: Path, count: int) -> int:
    log = await ConversationLog.open(db)
    try:
        rows = synthetic(count, time.time() - 30 * 86400)
        for offset in range(0, len(rows), 1000):
            await log.restore(rows[offset : offset + 1000])
        return sum(len(c.turns) for c in rows)
    finally:
        await log.close()


async def measure(
    db: Path, folder: Path
) -> tuple[dict[str, tuple[float, float]], dict[str, object]]:
    log = await ConversationLog.open(db)
    try:
        before = await timed(lambda: full_pass(log))
        after = await timed(lambda: analytics.compute(log))
        figures = await analytics.compute(log)
    finally:
        await log.close()
    page = folder / "report.html"

    async def report() -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            status = await asyncio.to_thread(
                log_main, ["report", "--db", str(db), "--html", str(page)]
            )
        assert status == 0, "the report failed"

    reported = await timed(report)

    async def html_report() -> None:
        log = await ConversationLog.open(db)
        try:
            figures = await analytics.compute(log)
        finally:
            await log.close()
        groups = analytics.group_questions(
            figures.questions, analytics.words_encode, answers=figures.answers
        )
        page.write_text(analytics_html.html_report(figures, groups), encoding="utf-8")

    html = await timed(html_report)
    times = {
        "before_full_pass_s": before,
        "figures_s": after,
        "html_report_s": html,
        "report_command_s": reported,
    }
    facts: dict[str, object] = {
        "resolution": figures.resolution_rate,
        "deflection": figures.deflection_rate,
        "first_response_p50_s": figures.first_response_p50_s,
        "questions": len(figures.questions),
        "html_kib": page.stat().st_size // 1024,
    }
    return times, facts


async def page_load(db: Path, folder: Path) -> dict[str, tuple[float, float]]:
    """Sign in and time GET /console/analytics through the app, in this process: once for a
    period not asked before (figures computed), then again (figures from the cache)."""
    # Imported here: the page's server side is only needed for this measurement.
    from bot.web import KeyStore, KnowledgeAdmin, RateLimiter, Services, create_app
    from bot.web.users import UserStore
    from engine import Engine, EngineConfig
    from engine.generators import ExtractiveGenerator
    from engine.sentiment import LexiconSentiment
    from engine.settings import WebConfig
    from retrieval import ImportConfig, KnowledgeBase, RetrievalConfig, import_paths
    from retrieval.embedders import load_embedder

    retrieval = RetrievalConfig(kb_dir=folder / "kb")
    embedder = load_embedder(retrieval.embedder)
    import_paths(
        [EXAMPLES / "kb"], retrieval.kb_dir, embedder, retrieval, ImportConfig(), progress=False
    )
    config = WebConfig(
        keys_path=folder / "keys.db", users_path=folder / "console.db", cookie_secure=False
    )
    UserStore(config.users_path).create("lead", "operator", "a long bench passphrase")
    log = await ConversationLog.open(db)
    try:
        kb = KnowledgeBase(retrieval.kb_dir, embedder, retrieval)
        engine = Engine(kb, ExtractiveGenerator(), LexiconSentiment(), log, EngineConfig())
        knowledge = KnowledgeAdmin(kb, retrieval.kb_dir, retrieval, ImportConfig())
        app = create_app(
            Services(engine, config, KeyStore(config.keys_path), RateLimiter(60, 10), knowledge)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            form = (await http.get("/console/login")).text
            token = form.split('name="csrf" value="')[1].split('"')[0]
            signed = await http.post(
                "/console/login",
                data={"name": "lead", "password": "a long bench passphrase", "csrf": token},
            )
            assert signed.status_code == 303, signed.text

            async def load(query: str = "") -> None:
                response = await http.get(f"/console/analytics{query}")
                assert response.status_code == 200, response.text

            await load("?until=2999-12-31")  # warms the model up, caches another period
            uncached = await timed(lambda: load("?since=2000-01-01"), runs=1)
            return {"page_uncached_s": uncached, "page_cached_s": await timed(load)}
    finally:
        await log.close()


async def main(turns: int, db: Path, folder: Path, page: bool) -> None:
    began = time.perf_counter()
    written = await write(db, turns // 4)
    print(
        f"wrote {turns // 4} conversations, {written} turns in {time.perf_counter() - began:.1f} s"
    )
    times, facts = await measure(db, folder)
    if page:
        times.update(await page_load(db, folder))
    for name, (first, best) in times.items():
        print(f"{name:20} first {first:.2f} s, best {best:.2f} s")
    speedup = times["before_full_pass_s"][1] / times["figures_s"][1]
    print(f"figures {speedup:.1f}x faster than one full pass; {facts}")
    result = {**times, **facts, "speedup_figures": round(speedup, 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--no-page", action="store_true", help="skip the page load (no model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        asyncio.run(main(args.turns, args.db or folder / "log.db", folder, not args.no_page))
