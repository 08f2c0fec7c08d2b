"""Measure how soon another process's log change is seen: polling only vs Redis wake-ups.

    python scripts/bench_wakeups.py [--replies 20] [--redis URL] [--config FILE]

Two cases, each run polling only and with wake-ups (bot.wakeups), alternately, `--rounds` times:

- outbox: a pending operator reply logged through a second connection to the log (the
  console's process) until the fake Bot API gets the customer's sendMessage, with the outbox
  polling every `[bot] outbox_interval_s`;
- console: a customer turn logged the same way until the console's live stream yields its
  event, the stream polling every `[web] poll_interval_s`.

Each change comes at a random moment of the poll interval, as in real use. The Redis server is
`--redis` (default `[queue] url`), under a prefix of this run's own. The last stdout line is one
JSON object: per case and way, p50 and max in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from _cli import add_common, setup

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake Bot API and the hash embedder live with the tests

from redis.asyncio import Redis  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402

from bot import make_bot  # noqa: E402
from bot.outbox import ConsoleOutbox  # noqa: E402
from bot.wakeups import Wakeups  # noqa: E402
from bot.web import console_live  # noqa: E402
from engine import Engine  # noqa: E402
from engine.generators import ExtractiveGenerator  # noqa: E402
from engine.log import ConversationLog  # noqa: E402
from engine.sentiment import LexiconSentiment  # noqa: E402
from engine.settings import BotConfig  # noqa: E402
from retrieval import ImportConfig, KnowledgeBase, RetrievalConfig, import_paths  # noqa: E402
from tests.fakes import HashEmbedder  # noqa: E402
from tests.telegram.fake_api import FakeTelegram  # noqa: E402

Case = Callable[[Path, Wakeups | None, Wakeups, int, float], Awaitable[list[float]]]


async def outbox_case(
    folder: Path, ours: Wakeups | None, theirs: Wakeups, replies: int, interval_s: float
) -> list[float]:
    """Milliseconds from each pending reply logged elsewhere to its sendMessage."""
    kb_dir, embedder = folder / "kb", HashEmbedder()
    config = RetrievalConfig(kb_dir=kb_dir)
    if not kb_dir.exists():
        import_paths(
            [ROOT / "examples" / "kb"], kb_dir, embedder, config, ImportConfig(), progress=False
        )
    path = folder / f"outbox-{uuid.uuid4().hex[:8]}.db"
    log, other = await ConversationLog.open(path), await ConversationLog.open(path)
    engine = Engine(
        KnowledgeBase(kb_dir, embedder, config), ExtractiveGenerator(), LexiconSentiment(), log
    )
    times = []
    async with FakeTelegram() as tg:
        bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
        outbox = ConsoleOutbox(engine, interval_s=interval_s, wakeups=ours)
        await outbox.start(bot)
        conversation = await other.start_conversation("telegram", "900")
        try:
            for n in range(replies):
                await asyncio.sleep(random.uniform(0.1, interval_s))
                started = time.perf_counter()
                await other.add_turn(conversation, "operator", f"r{n}", delivery="pending")
                await theirs.publish("delivery")
                text = f"r{n}"
                # Awaited within the iteration: `text` cannot change under it.
                await tg.wait_for(lambda: text in outbox_texts(tg), timeout=30)  # noqa: B023
                times.append((time.perf_counter() - started) * 1000)
        finally:
            await outbox.stop()
            await bot.session.close()
            await log.close()
            await other.close()
    return times


def outbox_texts(tg: FakeTelegram) -> list[str]:
    return [str(c.params.get("text")) for c in tg.calls if c.method == "sendMessage"]


async def console_case(
    folder: Path, ours: Wakeups | None, theirs: Wakeups, replies: int, interval_s: float
) -> list[float]:
    """Milliseconds from each customer turn logged elsewhere to the console stream's event."""
    path = folder / f"console-{uuid.uuid4().hex[:8]}.db"
    log, other = await ConversationLog.open(path), await ConversationLog.open(path)

    async def here() -> bool:
        return False

    stream = console_live.events(log, interval_s=interval_s, gone=here, wakeups=ours)
    times = []
    try:
        await anext(stream)
        conversation = await other.start_conversation("telegram", "901")
        for n in range(replies):
            event = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(random.uniform(0.1, interval_s))
            started = time.perf_counter()
            await other.add_turn(conversation, "customer", f"m{n}")
            await theirs.publish("turn")
            await asyncio.wait_for(event, 30)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await stream.aclose()
        await log.close()
        await other.close()
    return times


async def run(
    args: argparse.Namespace, url: str, outbox_s: float, poll_s: float
) -> dict[str, object]:
    prefix = f"bench-wakeups-{uuid.uuid4().hex[:8]}:"
    results: dict[str, dict[str, list[float]]] = {"outbox": {}, "console": {}}
    cases: dict[str, tuple[Case, float]] = {
        "outbox": (outbox_case, outbox_s),
        "console": (console_case, poll_s),
    }
    with tempfile.TemporaryDirectory() as tmp:
        theirs = Wakeups(Redis.from_url(url), prefix)
        try:
            for _ in range(args.rounds):
                for name, (case, interval_s) in cases.items():
                    for way in ("polling", "wakeups"):
                        ours = Wakeups(Redis.from_url(url), prefix) if way == "wakeups" else None
                        if ours is not None:
                            await ours.start()
                            await asyncio.wait_for(ours.subscribed.wait(), 10)
                        try:
                            times = await case(Path(tmp), ours, theirs, args.replies, interval_s)
                        finally:
                            if ours is not None:
                                await ours.close()
                        results[name].setdefault(way, []).extend(times)
        finally:
            await theirs.close()
    summary: dict[str, object] = {"outbox_interval_s": outbox_s, "poll_interval_s": poll_s}
    for name, ways in results.items():
        summary[name] = {
            way: {"p50_ms": round(statistics.median(t), 1), "max_ms": round(max(t), 1)}
            for way, t in ways.items()
        }
        for way, t in ways.items():
            print(f"{name:8} {way:8} p50 {statistics.median(t):7.1f} ms  max {max(t):7.1f} ms")
    return summary


async def ping(url: str) -> None:
    redis = Redis.from_url(url)
    try:
        await redis.ping()
    finally:
        await redis.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common(parser)
    parser.add_argument("--replies", type=int, default=20, help="changes per case, way and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two ways")
    parser.add_argument("--redis", help="Redis URL (default: [queue] url)")
    args = parser.parse_args()
    settings = setup(args)
    url = args.redis or settings.queue.url
    try:
        asyncio.run(ping(url))
    except (OSError, RedisError) as error:
        print(f"error: Redis at {url} is not reachable: {error}", file=sys.stderr)
        return 2
    summary = asyncio.run(
        run(args, url, settings.bot.outbox_interval_s, settings.web.poll_interval_s)
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
