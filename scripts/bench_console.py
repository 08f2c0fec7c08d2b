"""How long the console's analytics and the HTML log report take over a large log.

    .venv/bin/python scripts/bench_console.py [--turns 100000] [--db FILE]

Writes a synthetic SQLite log (conversations of 4 turns: question, answer, and every fifth one
a hand-over), then times the figures (engine.analytics.compute, what /console/analytics reads),
the grouping of unanswered questions (word vectors) and the whole HTML report. The first
figures run is reported apart from the best of three, so a cold file cache shows.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from engine import analytics
from engine.log import Conversation, ConversationLog, Handover, Retrieved, Turn

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
            handover_id += 1
            handovers = (
                Handover(
                    handover_id,
                    cid,
                    "human_requested",
                    at + 12,
                    None,
                    None,
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


async def main(turns: int, db: Path) -> None:
    count = turns // 4
    log = await ConversationLog.open(db)
    try:
        began = time.perf_counter()
        rows = synthetic(count, time.time() - 30 * 86400)
        for offset in range(0, len(rows), 1000):
            await log.restore(rows[offset : offset + 1000])
        print(
            f"wrote {count} conversations, {count * 4} turns in {time.perf_counter() - began:.1f} s"
        )
        times = []
        for _ in range(3):
            began = time.perf_counter()
            figures = await analytics.compute(log)
            times.append(time.perf_counter() - began)
        print(
            f"figures (analytics page's read): first {times[0]:.2f} s, best {min(times):.2f} s; "
            f"resolution {figures.resolution_rate:.3f}, hand-over {figures.handover_rate:.3f}"
        )
        began = time.perf_counter()
        groups = analytics.group_questions(figures.questions, analytics.words_encode)
        grouping = time.perf_counter() - began
        html = analytics.html_report(figures, groups)
        print(
            f"grouping {len(figures.questions)} questions: {grouping:.2f} s; "
            f"HTML {len(html) // 1024} KiB"
        )
    finally:
        await log.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(main(args.turns, args.db or Path(folder) / "log.db"))
