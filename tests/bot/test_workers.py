"""Several bot processes on the real Redis: receivers queue webhook updates, workers answer.

Real processes (`python -m bot --role ...`) against the fake Bot API delivering over many
connections at once; one SQLite log shared by the workers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.journal import RECOVERY_NOTICE
from engine.log import ConversationLog
from retrieval import Embedder, ImportConfig, RetrievalConfig, import_paths
from tests.conftest import EXAMPLES, ROOT
from tests.ports import free_port
from tests.services import RedisNamespace
from tests.telegram.fake_api import FakeTelegram

SECRET = "workers-secret"
QUESTIONS = [
    "How long do I have to return an item?",
    "Do you ship abroad?",
    "How can I pay?",
    "Where is my order?",
]

pytestmark = pytest.mark.slow


class Deployment:
    """A receiver's port, the config every process reads, and the processes started."""

    def __init__(self, tg: FakeTelegram, folder: Path, config: Path, redis: Redis) -> None:
        self.tg = tg
        self.folder = folder
        self.config = config
        self.redis = redis
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, role: str, *extra: str) -> asyncio.subprocess.Process:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": self.tg.token}
        env["TELEGRAM_WEBHOOK_SECRET"] = SECRET
        log = (self.folder / f"{role}-{len(self.processes)}.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(self.config),
            "--role",
            role,
            "-v",
            *extra,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        log.close()
        self.processes.append(process)
        return process

    async def start_worker(self) -> asyncio.subprocess.Process:
        """A worker, once it takes updates (its log says so, and it has had time to ask)."""
        process = await self.start("worker")
        log = self.folder / f"worker-{len(self.processes) - 1}.log"
        for _ in range(3600):
            if process.returncode is not None:
                raise AssertionError(self.output())
            if "taking updates" in log.read_text(errors="replace"):
                await asyncio.sleep(1.0)
                return process
            await asyncio.sleep(0.05)
        raise AssertionError(f"worker did not start: {self.output()}")

    @property
    def prefix(self) -> str:
        return self.config.read_text().split('prefix = "')[1].split('"')[0]

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.folder.glob("*.log"))


@pytest.fixture
async def deployment(
    minilm: Embedder, tmp_path: Path, redis_namespace: RedisNamespace
) -> AsyncIterator[Deployment]:
    kb_dir = tmp_path / "kb"
    report = import_paths(
        [EXAMPLES / "kb"],
        kb_dir,
        minilm,
        RetrievalConfig(kb_dir=kb_dir),
        ImportConfig(),
        progress=False,
    )
    assert not report.problems
    port = free_port()
    async with AsyncExitStack() as stack:
        tg = await stack.enter_async_context(FakeTelegram(webhook_connections=40))
        config = tmp_path / "bot.toml"
        config.write_text(
            f'[retrieval]\nkb_dir = "{kb_dir}"\n[log]\npath = "{tmp_path / "log.db"}"\n'
            f'[bot]\napi_base_url = "{tg.base_url}"\nlisten_port = {port}\n'
            f'webhook_url = "http://127.0.0.1:{port}"\nflood_messages = 50\n'
            f'[queue]\nurl = "{redis_namespace.url}"\nprefix = "{redis_namespace.prefix}"\n'
            "claim_idle_s = 5.0\nconcurrency = 2\n"
        )
        redis = Redis.from_url(redis_namespace.url)
        stack.push_async_callback(redis.aclose)
        found = Deployment(tg, tmp_path, config, redis)
        try:
            yield found
        finally:
            for process in found.processes:
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 30)


async def test_one_receiver_registers_the_webhook_and_two_workers_keep_each_chats_order(
    deployment: Deployment,
) -> None:
    tg = deployment.tg
    receivers = [await deployment.start("receiver") for _ in range(3)]
    await tg.wait_for(lambda: tg.webhook_url is not None, timeout=60)
    workers = [await deployment.start_worker(), await deployment.start_worker()]
    chats = list(range(501, 511))
    for chat in chats:  # every question at once: the workers must keep each chat's order
        for question in QUESTIONS:
            tg.send_text(chat, question)

    def all_answered() -> bool:
        return all(len(tg.messages(chat)) >= len(QUESTIONS) for chat in chats)

    await tg.wait_for(all_answered, timeout=120)
    await tg.wait_idle(quiet=1.0, timeout=30)
    # Only the first receiver to start registered; the others only asked, or not at all.
    assert len(tg.calls_for("setWebhook")) == 1, deployment.output()
    assert all(count == 1 for count in tg.delivery_counts.values())
    with sqlite3.connect(deployment.folder / "log.db") as conn:
        rows = conn.execute(
            "SELECT c.external_user_id, t.role, t.text FROM turns t "
            "JOIN conversations c ON c.id = t.conversation_id ORDER BY t.id"
        ).fetchall()
    for chat in chats:
        logged = [(role, text) for user, role, text in rows if int(user) == chat]
        assert [t for r, t in logged if r == "customer"] == QUESTIONS
        assert [r for r, _ in logged] == ["customer", "bot"] * len(QUESTIONS)
        sent = [m["text"] for m in tg.messages(chat)]
        assert len(sent) == len(QUESTIONS), sent
        for message, (_, answer) in zip(sent, logged[1::2], strict=True):
            assert answer.split()[0] in message  # each answer in the order asked
    answered_by = [
        (deployment.folder / f"worker-{i}.log").read_text().count("answered chat=") for i in (3, 4)
    ]
    assert sum(answered_by) == len(chats) * len(QUESTIONS)
    assert all(answered_by), answered_by  # both workers served
    for process in [*workers, *receivers]:
        assert await stop(process) == 0, deployment.output()


async def test_a_killed_workers_update_is_answered_once_by_another(
    deployment: Deployment,
) -> None:
    tg = deployment.tg
    await deployment.start("receiver")
    await tg.wait_for(lambda: tg.webhook_url is not None, timeout=60)
    doomed = await deployment.start_worker()
    doomed.send_signal(signal.SIGSTOP)
    tg.send_text(601, QUESTIONS[0])
    stream = f"{deployment.prefix}updates"
    for _ in range(200):
        if await deployment.redis.xlen(stream):
            break
        await asyncio.sleep(0.05)
    # The stopped worker takes the update: its blocked read did, or it is read in its name.
    consumer = f"{socket.gethostname()}-{doomed.pid}"
    await deployment.redis.xreadgroup("workers", consumer, {stream: ">"}, count=1)
    pending = await deployment.redis.xpending(stream, "workers")
    assert pending["pending"] == 1
    assert [c["name"] for c in pending["consumers"]] == [consumer.encode()]
    doomed.kill()
    await doomed.wait()
    survivor = await deployment.start_worker()
    await tg.wait_for(lambda: bool(tg.messages(601)), timeout=60)
    await tg.wait_idle(quiet=1.5, timeout=30)
    [answer] = tg.messages(601)
    assert "30 days" in answer["text"]
    assert not (await deployment.redis.xpending(stream, "workers"))["pending"]
    assert await stop(survivor) == 0


async def test_a_worker_killed_while_answering_leaves_a_notice_not_a_second_answer(
    deployment: Deployment,
) -> None:
    tg = deployment.tg
    await deployment.start("receiver")
    await tg.wait_for(lambda: tg.webhook_url is not None, timeout=60)
    doomed = await deployment.start_worker()
    # The answer waits 30 s for Telegram (a draft before it may take one 429): it is going out.
    tg.rate_limit(602, retry_after=30, times=5)
    message = tg.send_text(602, QUESTIONS[0])
    state = f"{deployment.prefix}update:{tg.pending_updates()[-1]['update_id']}"
    for _ in range(400):
        if await deployment.redis.get(state) == b"sending":
            break
        await asyncio.sleep(0.05)
    assert await deployment.redis.get(state) == b"sending", [
        (c.method, c.status, c.get("chat_id")) for c in tg.calls
    ]
    doomed.kill()
    await doomed.wait()
    tg.rate_limit(602, times=0)  # Telegram takes messages again
    survivor = await deployment.start_worker()
    await tg.wait_for(lambda: bool(tg.messages(602)), timeout=60)
    await tg.wait_idle(quiet=1.5, timeout=30)
    [notice] = tg.messages(602)
    assert notice["text"] == RECOVERY_NOTICE
    assert notice["reply_to_message"]["message_id"] == message["message_id"]
    assert await deployment.redis.get(state) == b"done"
    assert await stop(survivor) == 0


async def test_two_workers_send_each_console_reply_once(deployment: Deployment) -> None:
    tg = deployment.tg
    workers = [await deployment.start_worker(), await deployment.start_worker()]
    chats = list(range(601, 611))
    async with await ConversationLog.open(deployment.folder / "log.db") as log:
        for chat in chats:  # what the console logs for a Telegram customer's reply
            conversation = await log.start_conversation("telegram", str(chat))
            await log.add_turn(conversation, "operator", f"reply to {chat}", delivery="pending")
        await tg.wait_for(lambda: all(tg.messages(chat) for chat in chats), timeout=120)
        await tg.wait_idle(quiet=2.0, timeout=30)
        assert await log.undelivered_turns("telegram") == []
    for chat in chats:
        assert [m["text"] for m in tg.messages(chat)] == [f"reply to {chat}"]
    sent_by = [
        (deployment.folder / f"worker-{i}.log").read_text().count("console reply delivered")
        for i in (0, 1)
    ]
    assert sum(sent_by) == len(chats), sent_by
    for process in workers:
        assert await stop(process) == 0, deployment.output()
