"""Load and fault benchmark of the Telegram bot process against a local fake Bot API.

    python scripts/bench_bot.py [--chats 500] [--messages 20] [--kill-at 0.5] \\
        [--phases engine,load,steady[,echo][,fault][,webhook-fault][,workers-fault]] \\
        [--steady-rate 30] [--steady-seconds 60] [--threads 0] [--timeout 900]

Imports examples/kb into a temporary folder and runs the phases asked for on 127.0.0.1, each
bot phase with a fresh fake Bot API (tests/telegram/fake_api.py) and its own conversation log:

1. engine: the engine alone, in this process, configured as the bot is (the same config file,
   knowledge base and log kind), `--chats` conversations at once each asking its `--messages`
   questions in turn, as the chats of the load phase do. Run before the load phase and again
   after it (when both are asked for), each time on a fresh log; `replies_per_s` is the mean
   of the two, the baseline of `ratio`;
2. echo: a bare aiogram bot answering each message with sendMessage, the ceiling of the
   Telegram side (`echo_ratio`);
3. load: the real bot (`python -m bot`, extractive answers) under the chats' traffic, through
   the fake over HTTP. `api_calls_per_reply` counts the requests the bot made per answer,
   by method (getUpdates included);
4. steady: the bot under an open loop: `--steady-rate` customer messages a second (30 is
   Telegram's overall limit for one bot) for `--steady-seconds`, from `--steady-chats` chats
   taking turns, whatever the bot does. `first_visible_p50_ms`/`p99` are from queuing an
   update to the first visible reply to it reaching the fake (a message, a draft or an edit);
   `answer_p50_ms`/`p99` to its answer message. Target: first_visible_p99_ms <= 300;
5. fault: the same traffic as load; once `--kill-at` of the questions are answered the bot
   gets SIGKILL and is started again at once;
6. webhook-fault: the fault phase with the bot in webhook mode. The fake
   delivers one update at a time and again after a failed delivery, as Telegram does, so it is
   slow: keep it small;
7. workers-fault: several bot processes (README "Several bot
   processes"): one webhook receiver and two workers sharing the Redis update queue and the
   conversation log on PostgreSQL (`--postgres`, a fresh database dropped afterwards; SQLite
   when PostgreSQL cannot be reached, and the JSON says so). The fake delivers over 40
   connections at once, as Telegram does; once `--kill-at` of the questions are answered one
   worker gets SIGKILL and is started again. The other takes over what the killed one held
   after `[queue] claim_idle_s`: handled again when nothing went out, the recovery notice when
   its answer may have. `workers_vs_single` puts its replies/s and p99 next to the
   single-process fault phase of the same run.

Traffic: `--chats` private chats, each asking `--messages` questions from
examples/queries.jsonl one after another: a chat's next question is queued when the previous one
is answered, as a customer waits for the answer. Latency is from queuing a question's update to
its answer arriving at the fake. The flood limit is raised above `--messages`, so the guard runs
but never fires (its count is reported; it must be 0).

Checks: every question answered once (`lost`, `duplicated`), and per chat the answers arrive in
the order asked, each the bot turn the conversation log holds for that question (`mismatched`;
an extra answer that lands while the chat's next question waits shows here).

The fault phase, precisely. At the kill, each update the fake has handed out is, in the bot's
journal (bot/journal.py): done, and skipped when Telegram delivers it again; or received, no
message sent for it yet, and handled again after the restart, keeping the customer turn and the
(pending) answer the killed attempt logged, which then goes out; or marked as its answer going
out, and then it gets a notice quoting it instead of a second answer (`recovery_notices`;
`recovered_without_answer` where the answer had not arrived), unless the log says Telegram had
confirmed the answer. The log is checked question by question (turns carry the message's key):
one customer turn each (`extra_customer_turns`, `missing_customer_turns`), one bot turn each
(`duplicate_bot_turns`), `delivered` exactly for the answers that arrived (`answers_confirmed`;
`answers_missing_in_log`, `delivered_not_received`), except an answer that went out in the
instant of the kill, which stays `pending` and was noticed (`answers_unconfirmed`), and a notice
only for a question whose answer arrived or is pending (`notices_without_cause`). Passing: every
question answered once or noticed, none answered twice, SQLite integrity_check ok, and all those
failure counts 0. In webhook mode the update being handled at the kill got no HTTP answer, so
the fake delivers it again to the restarted bot, whose journal decides the same way.

CPU: the engine alone reports `cpu_ms_per_reply` (all its threads) and `loop_cpu_ms_per_reply`
(the event loop's thread); the load phase the same for the bot process
(`cpu_ms_per_reply_bot`, `loop_cpu_ms_per_reply_bot`) and `cpu_ms_per_reply_fake`, this
process's: the fake Bot API and the chats, which share the cores with the bot here but not in
use. `cpu_ratio`, engine CPU per reply over the bot's, is the `ratio` the bot would reach with
cores of its own. `load_average` has the machine's load averages at the start and the end of
the run: on shared cores the rates say little unless it was low. `--threads` sets `[retrieval]
threads` (the query encoder's threads) for both sides alike, the engine alone and every bot
process; the JSON's `threads` says which, and `encoder_threads` what they resolve to. The
default is 0, as shipped: one thread fewer than the CPUs (`retrieval.embedders.serving_threads`),
as a team on every core spins beside the bot's event loop (measured on 2 cores: the bot 21-26
ms CPU a reply with both cores' team, 6.5-6.7 with one thread; README "The bot beside the
engine").

Targets: load replies/s over engine-alone replies/s (`ratio`) >= 0.8; steady
first_visible_p99_ms <= 300. The last stdout line is one JSON object with every figure; the
exit status is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import html
import json
import os
import re
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _cli import add_common, setup

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake Bot API lives with the tests

from bot.journal import RECOVERY_NOTICE  # noqa: E402
from engine import FinalReply  # noqa: E402
from engine.runtime import open_engine  # noqa: E402
from engine.settings import Settings, load_settings  # noqa: E402
from retrieval import ImportConfig, import_paths, load_embedder  # noqa: E402
from retrieval.embedders import serving_threads  # noqa: E402
from retrieval.evaluation import tune_and_store_threshold  # noqa: E402
from tests.ports import free_port  # noqa: E402
from tests.services import POSTGRES_URL, REDIS_URL  # noqa: E402
from tests.telegram.fake_api import Call, FakeTelegram  # noqa: E402
from tests.telegram.load import (  # noqa: E402
    Notes,
    PacedChats,
    Question,
    SteadyChats,
    steady_summary,
    summary,
)

EXAMPLES = ROOT / "examples"
PHASES = ("engine", "echo", "load", "steady", "fault", "webhook-fault", "workers-fault")
DEFAULT_PHASES = ["engine", "load", "steady"]  # the others when asked for
# Seconds without a heartbeat before a worker's updates go to another (the default is 30).
BENCH_CLAIM_IDLE_S = 3.0
# A process loads torch and the embedder before it takes updates: minutes on a busy machine.
START_TIMEOUT_S = 300.0
WEBHOOK_SECRET = "bench-secret"
BOT_NOTES = Notes(
    recovery=RECOVERY_NOTICE[:40],
    flood="You're sending messages faster than I can answer",
    handover="A colleague will follow up here",
    apology="Sorry, something went wrong on my side",
)


@dataclass
class Phase:
    """One phase's traffic and the process answering it."""

    name: str
    tg: FakeTelegram
    chats: PacedChats
    process: asyncio.subprocess.Process | None = None
    exit_code: int | None = None
    # Processes besides the one killed (workers-fault: the receiver and the other worker).
    others: list[asyncio.subprocess.Process] = field(default_factory=list)
    starts: int = 0  # getUpdates and setWebhook calls: a bot makes one once it has started
    # CPU seconds while the chats ran: the bot process's (none when it was restarted) and this
    # process's (the fake Bot API and the chats driving it).
    bot_cpu_s: float | None = None
    bot_loop_cpu_s: float = 0.0  # its main thread's: the event loop
    fake_cpu_s: float = 0.0


def plan(chats: int, messages: int) -> dict[int, list[str]]:
    """Questions per chat id, cycling through examples/queries.jsonl."""
    lines = (EXAMPLES / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["query"] for line in lines if line.strip()]
    return {
        10_000 + c: [queries[(c * messages + m) % len(queries)] for m in range(messages)]
        for c in range(chats)
    }


def import_kb(settings: Settings, kb_dir: Path) -> None:
    config = settings.retrieval
    embedder = load_embedder(config.embedder, batch_size=config.batch_size)
    import_paths([EXAMPLES / "kb"], kb_dir, embedder, config, ImportConfig(), progress=False)
    tune_and_store_threshold(kb_dir, embedder, config, EXAMPLES / "queries.jsonl", keep=2)


def write_config(
    folder: Path,
    settings: Settings,
    kb_dir: Path,
    base_url: str,
    flood: int,
    webhook_port: int | None = None,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "bot.toml"
    webhook = (
        ""
        if webhook_port is None
        else f'mode = "webhook"\nlisten_port = {webhook_port}\n'
        f'webhook_url = "http://127.0.0.1:{webhook_port}"\n'
    )
    config.write_text(
        f'[retrieval]\nkb_dir = "{kb_dir}"\nembedder = "{settings.retrieval.embedder}"\n'
        f'backend = "{settings.retrieval.backend}"\n'
        f'onnx_dir = "{settings.retrieval.onnx_dir.resolve()}"\n'
        f"threads = {settings.retrieval.threads}\n"
        f'[generator]\nbackend = "extractive"\n'
        f'[log]\npath = "{folder / "conversations.db"}"\n'
        f'[bot]\napi_base_url = "{base_url}"\nflood_messages = {flood}\n{webhook}',
        encoding="utf-8",
    )
    return config


async def start_process(phase: Phase, argv: list[str], output: Path, token: str) -> None:
    """Start the bot and wait for its first long poll or setWebhook (start-up is done)."""
    starts = phase.starts
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": token, "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET}
    with output.open("ab") as sink:
        phase.process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
    await phase.tg.wait_for(lambda: phase.starts > starts, timeout=START_TIMEOUT_S)


async def stop_process(phase: Phase, grace_s: float = 30.0) -> None:
    process = phase.process
    if process is None or process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        phase.exit_code = await asyncio.wait_for(process.wait(), grace_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):  # it may end in this very instant
            process.kill()
        phase.exit_code = await process.wait()


async def run_phase(
    name: str,
    questions: dict[int, list[str]],
    notes: Notes,
    launch: Callable[[Phase], Any],
    deadline: float,
    *,
    kill_at: float = 0.0,
    restart: Callable[[Phase], Any] | None = None,
    connections: int = 1,
) -> Phase:
    """Run one phase to the end or the deadline; the caller reads the results off the Phase."""
    tg = FakeTelegram(webhook_connections=connections)
    await tg.start()
    killed = asyncio.Event()
    total = sum(len(q) for q in questions.values())

    def resolved(_: Question) -> None:
        if kill_at and not killed.is_set() and phase.chats.resolved >= kill_at * total:
            killed.set()

    phase = Phase(name, tg, PacedChats(tg, questions, notes=notes, on_resolved=resolved))

    def count_starts(call: Call) -> None:
        if call.method in ("getUpdates", "setWebhook"):
            phase.starts += 1

    tg.observe(count_starts)
    try:
        await launch(phase)
        assert phase.process is not None
        pid, fake_cpu = phase.process.pid, time.process_time()
        bot_cpu, bot_loop_cpu = _cpu_s(pid), _cpu_s(pid, pid)
        phase.chats.start()
        if restart is not None:
            await asyncio.wait_for(killed.wait(), max(deadline - time.monotonic(), 0.1))
            assert phase.process is not None
            phase.process.kill()
            await phase.process.wait()
            await restart(phase)
        with_budget = max(deadline - time.monotonic(), 0.1)
        await tg.wait_for(lambda: phase.chats.done, timeout=with_budget)
        # Late duplicates would arrive now.
        await tg.wait_idle(quiet=1.0, timeout=max(deadline - time.monotonic(), 5.0))
        phase.fake_cpu_s = time.process_time() - fake_cpu
        if phase.process.pid == pid and not phase.others:
            phase.bot_cpu_s = _cpu_s(pid) - bot_cpu
            phase.bot_loop_cpu_s = _cpu_s(pid, pid) - bot_loop_cpu
    except TimeoutError:
        print(f"{name}: timed out with {phase.chats.resolved}/{total} questions resolved")
    finally:
        await stop_process(phase)
        for other in phase.others:
            stopped = Phase(name, tg, phase.chats, other)
            await stop_process(stopped)
            if not phase.exit_code:  # a process of several that failed fails the phase
                phase.exit_code = stopped.exit_code
        await tg.stop()
    return phase


async def engine_alone(config: Path, questions: dict[int, list[str]]) -> dict[str, Any]:
    """The engine the bot would open with `config`, answering the chats' questions directly:
    every chat a conversation, all at once, each question once the previous one is answered."""
    latencies: list[float] = []

    async def converse(engine: Any, chat: int, texts: list[str]) -> None:
        conversation = await engine.conversation("telegram", str(chat))
        for n, text in enumerate(texts):
            start = time.monotonic()
            async for event in engine.reply(conversation, text, external_id=f"{chat}/{n}"):
                if isinstance(event, FinalReply):
                    latencies.append(time.monotonic() - start)

    async with open_engine(load_settings(config)) as engine:
        warm = await engine.conversation("telegram", "warm-up")
        for text in next(iter(questions.values()))[:2]:
            async for _ in engine.reply(warm, text):
                pass
        # As the bot does once started (bot.__main__.settle_heap); undone after the run, or
        # every engine this process opens would stay in memory with its frozen heap.
        gc.collect()
        gc.freeze()
        try:
            start, start_cpu = time.monotonic(), time.process_time()
            start_loop = time.thread_time()
            await asyncio.gather(*(converse(engine, c, t) for c, t in questions.items()))
            wall, cpu = time.monotonic() - start, time.process_time() - start_cpu
            loop_cpu = time.thread_time() - start_loop
        finally:
            gc.unfreeze()
    latencies.sort()

    def pick(share: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1000, 1)

    return {
        "replies": len(latencies),
        "replies_per_s": round(len(latencies) / wall, 1),
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        # All the process's threads: the event loop's and the embedder's.
        "cpu_ms_per_reply": round(cpu * 1000 / len(latencies), 3),
        "loop_cpu_ms_per_reply": round(loop_cpu * 1000 / len(latencies), 3),
    }


async def steady(
    args: argparse.Namespace, questions: dict[int, list[str]], launch: Callable[[Phase], Any]
) -> dict[str, Any]:
    """The steady phase: an open loop of `--steady-rate` messages a second into a fresh bot."""
    tg = FakeTelegram()
    await tg.start()
    chats = SteadyChats(
        tg, questions, rate=args.steady_rate, seconds=args.steady_seconds, notes=BOT_NOTES
    )
    # The Phase only carries the fake and the process here; PacedChats sends nothing itself.
    phase = Phase("steady", tg, PacedChats(tg, {}, notes=BOT_NOTES))

    def count_starts(call: Call) -> None:
        if call.method in ("getUpdates", "setWebhook"):
            phase.starts += 1

    tg.observe(count_starts)
    try:
        await launch(phase)
        await asyncio.sleep(1.0)  # past start-up's own calls (commands, recovery)
        await chats.run()
        # Answers still on their way; a bot far behind gets time in proportion.
        await tg.wait_for(lambda: chats.done, timeout=max(30.0, args.steady_seconds))
        await tg.wait_idle(quiet=1.0, timeout=30.0)
    except TimeoutError:
        print(f"steady: timed out with {chats.resolved}/{len(chats.questions)} answered")
    finally:
        await stop_process(phase)
        await tg.stop()
    return steady_summary(chats) | {
        "rate": args.steady_rate,
        "seconds": args.steady_seconds,
        "chats": len(questions),
        "exit_code": phase.exit_code,
    }


def cpu_per_reply(phase: Phase, replies: int) -> dict[str, float | None]:
    """CPU milliseconds per answer while the chats ran: the bot process, and the fake Bot API
    with the chats (this process), which shares the machine with the bot here but not in use."""
    if not replies:
        return {"cpu_ms_per_reply_bot": None, "cpu_ms_per_reply_fake": None}
    bot = None if phase.bot_cpu_s is None else round(phase.bot_cpu_s * 1000 / replies, 3)
    return {
        "cpu_ms_per_reply_bot": bot,
        "loop_cpu_ms_per_reply_bot": round(phase.bot_loop_cpu_s * 1000 / replies, 3),
        "cpu_ms_per_reply_fake": round(phase.fake_cpu_s * 1000 / replies, 3),
    }


def _cpu_s(pid: int, thread: int | None = None) -> float:
    """CPU seconds (user + system) a process has used so far, all threads or one, from /proc."""
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages: how shared the cores were."""
    return [round(value, 2) for value in os.getloadavg()]


def calls_per_reply(phase: Phase, replies: int) -> dict[str, float]:
    """Bot API requests per answer, by method, over the whole phase."""
    counts = Counter(call.method for call in phase.tg.calls)
    return {m: round(n / replies, 2) for m, n in sorted(counts.items())} if replies else {}


def traffic(phase: Phase) -> dict[str, Any]:
    """Throughput, latency, and the lost and duplicated counts of a phase."""
    chats = phase.chats
    questions = chats.all_questions()
    delivered = set(phase.tg.delivered_update_ids)
    answered = [q for q in questions if q.replies]
    wall = (chats.last_reply - chats.first_sent) or float("nan")
    return {
        "questions": len(questions),
        "replies": sum(len(q.replies) for q in questions),
        "replies_per_s": round(len(answered) / wall, 1),
        **summary(questions),
        "lost": sum(1 for q in questions if not q.resolved),
        "lost_after_delivery": sum(
            1 for q in questions if q.update_id in delivered and not q.resolved
        ),
        "duplicated": sum(len(q.replies) - 1 for q in questions if len(q.replies) > 1)
        + len(chats.unexpected),
        "redelivered_updates": sum(1 for n in phase.tg.delivery_counts.values() if n > 1),
        "recovery_notices": chats.counts["recovery"],
        "recovered_without_answer": sum(1 for q in questions if q.noticed and not q.replies),
        "flood_notices": chats.counts["flood"],
        "apologies": chats.counts["apology"],
        "exit_code": phase.exit_code,
    }


def _plain(text: str) -> str:
    return re.sub(r"\W+", "", html.unescape(re.sub(r"<[^>]+>", "", text))).lower()


_TURNS = "SELECT t.role, t.text, t.action, t.delivery, t.external_id FROM turns t"


async def read_log(db: Path | str) -> tuple[str, list[tuple[Any, ...]]]:
    """The log's integrity check and its turns, from an SQLite file or a PostgreSQL URL."""
    if isinstance(db, Path):
        with sqlite3.connect(db) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            return integrity, conn.execute(_TURNS).fetchall()
    import asyncpg

    conn = await asyncpg.connect(db)
    try:
        orphans = await conn.fetchval(
            "SELECT count(*) FROM turns t LEFT JOIN conversations c "
            "ON c.id = t.conversation_id WHERE c.id IS NULL"
        )
        rows = [tuple(row) for row in await conn.fetch(_TURNS)]
    finally:
        await conn.close()
    return ("ok" if orphans == 0 else f"{orphans} turns without a conversation"), rows


def check_log(integrity: str, rows: list[tuple[Any, ...]], phase: Phase) -> dict[str, Any]:
    """The conversation log against what the customers got, question by question.

    The bot logs a question's turns under its message key (chat/message id): one customer
    turn, and one bot turn marked delivered once Telegram confirmed the answer, or left
    pending when the answer may or may not have gone out (the customer got the restart
    notice instead). Every count below except the totals must be 0.
    """
    customer: Counter[str] = Counter()
    bots: dict[str, list[tuple[str, str | None, str | None]]] = {}
    for role, text, action, delivery, key in rows:
        if role == "customer":
            customer[key] += 1
        elif role == "bot":
            bots.setdefault(key, []).append((text, action, delivery))
    counts = Counter[str]()
    questions = phase.chats.all_questions()
    for question in questions:
        key = f"{question.chat_id}/{question.message_id}"
        asked = customer.pop(key, 0)
        counts["extra_customer_turns"] += max(asked - 1, 0)
        counts["missing_customer_turns"] += int(asked == 0 and question.resolved)
        turns = bots.pop(key, [])
        counts["duplicate_bot_turns"] += max(len(turns) - 1, 0)
        delivery = turns[0][2] if turns else None
        arrived = bool(question.replies)
        if arrived and delivery == "delivered":
            counts["answers_confirmed"] += 1
            text, action, _ = turns[0]
            # The options of a clarifying question are shown as a list, not the logged text.
            if action != "clarify" and not _plain(question.reply_texts[0]).startswith(
                _plain(text)[:40]
            ):
                counts["mismatched"] += 1
        elif arrived and delivery == "pending" and question.noticed:
            counts["answers_unconfirmed"] += 1  # went out in the instant of the kill
        elif arrived:
            counts["answers_missing_in_log"] += 1
        elif delivery == "delivered":
            counts["delivered_not_received"] += 1
        if question.noticed and not arrived and delivery != "pending":
            counts["notices_without_cause"] += 1
    counts["turns_of_no_question"] = sum(customer.values()) + sum(len(b) for b in bots.values())
    failures = (
        "extra_customer_turns",
        "missing_customer_turns",
        "duplicate_bot_turns",
        "answers_missing_in_log",
        "delivered_not_received",
        "notices_without_cause",
        "turns_of_no_question",
        "mismatched",
    )
    deliveries = Counter(r[3] for r in rows if r[0] == "bot")
    return {
        "integrity": integrity,
        "customer_turns": sum(1 for r in rows if r[0] == "customer"),
        "bot_turns": sum(deliveries.values()),
        "delivered_bot_turns": deliveries["delivered"],
        "pending_bot_turns": deliveries["pending"],
        "undelivered_bot_turns": deliveries["undelivered"],
        "answers_confirmed": counts["answers_confirmed"],
        "answers_unconfirmed": counts["answers_unconfirmed"],
        **{name: counts[name] for name in failures},
        "turns_consistent": not any(counts[name] for name in failures[:-1]),
        "order_kept": counts["mismatched"] == 0,
    }


async def fresh_database(admin_url: str) -> tuple[str, str]:
    """A new PostgreSQL database for the phase: its URL and name; ("", why) when unreachable."""
    try:
        import asyncpg

        conn = await asyncpg.connect(admin_url, timeout=5)
    except Exception as error:  # no server or no driver: the phase runs on SQLite and says so
        return "", f"{type(error).__name__}: {error}"
    name = f"bench_bot_{uuid.uuid4().hex[:10]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name)), name


async def drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def several_processes(
    args: argparse.Namespace,
    settings: Settings,
    folder: Path,
    kb_dir: Path,
    questions: dict[int, list[str]],
    deadline: float,
) -> dict[str, Any]:
    """The workers-fault phase: a receiver and two workers on Redis and PostgreSQL."""
    from redis.asyncio import Redis

    sub = folder / "workers-fault"
    log_url, name = await fresh_database(args.postgres)
    prefix = f"bench-bot-{uuid.uuid4().hex[:10]}:"
    port = free_port()
    output = folder / "workers-fault.log"

    async def start(phase: Phase, role: str) -> asyncio.subprocess.Process:
        config = write_config(sub, settings, kb_dir, phase.tg.base_url, args.messages + 1, port)
        text = config.read_text(encoding="utf-8")
        if log_url:
            text = text.replace("[log]\n", f'[log]\nurl = "{log_url}"\n', 1)
        text += (
            f'[queue]\nurl = "{args.redis}"\nprefix = "{prefix}"\n'
            f"claim_idle_s = {BENCH_CLAIM_IDLE_S}\n"
        )
        config.write_text(text, encoding="utf-8")
        ready = len(phase.tg.calls_for("setMyCommands")) + len(phase.tg.calls_for("setWebhook"))
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": phase.tg.token,
            "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        argv = ["-m", "bot", "--config", str(config), "--role", role]
        with output.open("ab") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable, *argv, cwd=ROOT, env=env, stdout=sink, stderr=sink
            )

        def started() -> bool:
            calls = len(phase.tg.calls_for("setMyCommands")) + len(phase.tg.calls_for("setWebhook"))
            return calls > ready or process.returncode is not None

        # A receiver registers the webhook; a worker sets the commands as it starts taking.
        await phase.tg.wait_for(started, timeout=START_TIMEOUT_S)
        await asyncio.sleep(0.5)
        return process

    async def launch(phase: Phase) -> None:
        phase.others.append(await start(phase, "receiver"))
        phase.others.append(await start(phase, "worker"))
        phase.process = await start(phase, "worker")

    async def restart(phase: Phase) -> None:
        phase.process = await start(phase, "worker")

    try:
        phase = await run_phase(
            "workers-fault",
            questions,
            BOT_NOTES,
            launch,
            deadline,
            kill_at=args.kill_at,
            restart=restart,
            connections=40,
        )
        log = await read_log(log_url or sub / "conversations.db")
    finally:
        if log_url:
            await drop_database(args.postgres, name)
        redis = Redis.from_url(args.redis)
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    store = "postgresql" if log_url else f"sqlite (PostgreSQL unreachable: {name})"
    return traffic(phase) | check_log(*log, phase) | {"log": store, "workers": 2}


async def bench(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    deadline = time.monotonic() + args.timeout
    questions = plan(args.chats, args.messages)
    flood = args.messages + 1
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as tmp:
        folder = Path(tmp)
        kb_dir = folder / "kb"
        await asyncio.to_thread(import_kb, settings, kb_dir)
        output = folder / "processes.log"

        async def echo(phase: Phase) -> None:
            argv = ["-m", "tests.telegram.echo_bot", phase.tg.base_url]
            await start_process(phase, argv, output, phase.tg.token)

        def bot_in(sub: str, *, webhook: bool = False) -> Callable[[Phase], Any]:
            port = free_port() if webhook else None

            async def launch(phase: Phase) -> None:
                config = write_config(
                    folder / sub, settings, kb_dir, phase.tg.base_url, flood, port
                )
                argv = ["-m", "bot", "--config", str(config)]
                if args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    out = args.profile / f"{sub}-{phase.starts}.prof"
                    argv = ["-m", "cProfile", "-o", str(out), *argv]
                await start_process(phase, argv, output, phase.tg.token)

            return launch

        async def engine_run(number: int) -> dict[str, Any]:
            sub = folder / f"engine-{number}"
            config = write_config(sub, settings, kb_dir, "http://127.0.0.1:9", flood)
            return await engine_alone(config, questions)

        result: dict[str, Any] = {
            "chats": args.chats,
            "messages": args.messages,
            "backend": settings.retrieval.backend,
            "threads": settings.retrieval.threads,
            # What open_engine makes of it in every process here (0: one fewer than the CPUs).
            "encoder_threads": serving_threads(settings.retrieval.threads),
            "load_average": {"start": _load_average()},
        }
        engine_runs: list[dict[str, Any]] = []
        if "engine" in args.phases:
            engine_runs.append(await engine_run(1))
        if "echo" in args.phases:
            phase = await run_phase("echo", questions, Notes(), echo, deadline)
            result["echo"] = traffic(phase)
        if "load" in args.phases:
            phase = await run_phase("load", questions, BOT_NOTES, bot_in("load"), deadline)
            log = await read_log(folder / "load/conversations.db")
            result["load"] = traffic(phase) | check_log(*log, phase)
            replies = result["load"]["replies"]
            result["load"] |= cpu_per_reply(phase, replies)
            result["load"]["api_calls_per_reply"] = calls_per_reply(phase, replies)
            if "engine" in args.phases:
                engine_runs.append(await engine_run(2))
        if "steady" in args.phases:
            steady_chats = plan(args.steady_chats, args.messages)
            result["steady"] = await steady(args, steady_chats, bot_in("steady"))
        for name in ("fault", "webhook-fault"):
            if name not in args.phases:
                continue
            launch = bot_in(name, webhook=name == "webhook-fault")
            phase = await run_phase(
                name, questions, BOT_NOTES, launch, deadline, kill_at=args.kill_at, restart=launch
            )
            log = await read_log(folder / name / "conversations.db")
            result[name] = traffic(phase) | check_log(*log, phase)
        if "workers-fault" in args.phases:
            result["workers-fault"] = await several_processes(
                args, settings, folder, kb_dir, questions, deadline
            )
            if "fault" in result:
                single, several = result["fault"], result["workers-fault"]
                result["workers_vs_single"] = {
                    "single_replies_per_s": single["replies_per_s"],
                    "workers_replies_per_s": several["replies_per_s"],
                    "single_p99_ms": single["p99_ms"],
                    "workers_p99_ms": several["p99_ms"],
                }
        if engine_runs:
            rates = [run["replies_per_s"] for run in engine_runs]
            cpus = [run["cpu_ms_per_reply"] for run in engine_runs]
            result["engine"] = {
                "replies": engine_runs[0]["replies"],
                "replies_per_s": round(sum(rates) / len(rates), 1),
                "cpu_ms_per_reply": round(sum(cpus) / len(cpus), 3),
                "loop_cpu_ms_per_reply": round(
                    sum(run["loop_cpu_ms_per_reply"] for run in engine_runs) / len(cpus), 3
                ),
                "runs": engine_runs,
            }
        if args.verbose:
            print(output.read_text(encoding="utf-8", errors="replace")[-4000:])
    phases = [result[name] for name in PHASES if name in result and name != "engine"]
    for base, key in (("engine", "ratio"), ("echo", "echo_ratio")):
        if base in result and "load" in result and result[base]["replies_per_s"]:
            result[key] = round(result["load"]["replies_per_s"] / result[base]["replies_per_s"], 3)
    if "engine" in result and result.get("load", {}).get("cpu_ms_per_reply_bot"):
        # The rate the bot would reach against the engine's with cores of its own (the Bot API
        # elsewhere, as in use): engine CPU per reply over the bot process's.
        engine_cpu, bot_cpu = (
            result["engine"]["cpu_ms_per_reply"],
            result["load"]["cpu_ms_per_reply_bot"],
        )
        result["cpu_ratio"] = round(engine_cpu / bot_cpu, 3)
    result["load_average"]["end"] = _load_average()
    result["passed"] = all(
        phase["lost"] == 0
        and phase["duplicated"] == 0
        and phase.get("order_kept", True)
        and phase.get("integrity", "ok") == "ok"
        and phase.get("turns_consistent", True)
        and phase["flood_notices"] == 0
        for phase in phases
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--messages", type=int, default=20, help="questions per chat")
    parser.add_argument(
        "--kill-at", type=float, default=0.5, help="share of questions answered before SIGKILL"
    )
    parser.add_argument(
        "--phases",
        type=lambda text: [p for p in text.split(",") if p],
        default=DEFAULT_PHASES,
        help=f"comma-separated, from {','.join(PHASES)} (default: {','.join(DEFAULT_PHASES)})",
    )
    parser.add_argument(
        "--steady-rate", type=float, default=30.0, help="steady: customer messages per second"
    )
    parser.add_argument("--steady-seconds", type=float, default=60.0, help="steady: how long")
    parser.add_argument(
        "--steady-chats", type=int, default=300, help="steady: chats taking turns to write"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole run")
    parser.add_argument(
        "--postgres",
        default=POSTGRES_URL,
        help="workers-fault: PostgreSQL server for the log (a database is made and dropped)",
    )
    parser.add_argument("--redis", default=REDIS_URL, help="workers-fault: the Redis server")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="[retrieval] threads of the engine alone and of each bot process: the query "
        "encoder's threads (default 0, as shipped: one fewer than the CPUs)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run each single bot process under cProfile, its stats written into this folder",
    )
    add_common(parser)
    args = parser.parse_args(argv)
    if not (1 <= args.chats <= 10_000 and 1 <= args.messages <= 1_000):
        parser.error("--chats must be 1-10000 and --messages 1-1000")
    if not args.phases or set(args.phases) - set(PHASES):
        parser.error(f"--phases takes {','.join(PHASES)}")
    if not (args.steady_rate > 0 and args.steady_seconds > 0 and 1 <= args.steady_chats <= 10_000):
        parser.error("--steady-rate and --steady-seconds must be above 0, --steady-chats 1-10000")
    if args.threads < 0:
        parser.error("--threads must be 0 (auto) or more")
    if not 0 < args.kill_at < 1:
        parser.error("--kill-at must be between 0 and 1")
    settings = setup(args)
    # The bot processes read it from the config file each phase writes (write_config).
    settings = replace(settings, retrieval=replace(settings.retrieval, threads=args.threads))
    result = asyncio.run(bench(args, settings))
    for name in PHASES:
        if name in result:
            print(name, " ".join(f"{k}={v}" for k, v in result[name].items()))
    if "ratio" in result:
        print(f"ratio load/engine {result['ratio']} (target >= 0.8)")
    if "cpu_ratio" in result:
        print(f"cpu_ratio engine/bot CPU per reply {result['cpu_ratio']}")
    if "echo_ratio" in result:
        print(f"ratio load/echo {result['echo_ratio']}")
    print(f"load average {result['load_average']}")
    if "steady" in result:
        p99 = result["steady"]["first_visible_p99_ms"]
        print(f"steady first visible reply p99 {p99} ms (target <= 300)")
    print(f"passed={result['passed']}")
    print(json.dumps(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
