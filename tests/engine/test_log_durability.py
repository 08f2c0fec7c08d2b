"""An acknowledged turn survives SIGKILL of the writing process, and the file stays intact.

Run as `python -m tests.engine.test_log_durability DB`, this module is the writer that gets killed:
it adds turns from eight concurrent tasks and prints "turn_id n" once each add_turn returns.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from engine.log import ConversationLog, LogConfig

ACKS_BEFORE_KILL = 300
# The repository root; not taken from tests.conftest, which the writer process need not load.
ROOT = Path(__file__).resolve().parents[2]


def text_for(n: int) -> str:
    """The text of the n-th turn; every seventh spills into SQLite overflow pages."""
    return f"turn {n} ✓ " + "abcdefgh" * (n % 7 * 200)


async def write_until_killed(path: Path) -> None:
    log = await ConversationLog.open(path, LogConfig(redact_pii=False))
    conversation = await log.start_conversation("terminal", f"durability-{os.getpid()}")

    async def add(n: int) -> None:
        turn_id = await log.add_turn(conversation, "customer", text_for(n))
        print(turn_id, n, flush=True)

    n = 0
    while True:
        await asyncio.gather(*(add(n + i) for i in range(8)))
        n += 8


def acknowledged_then_killed(path: Path, stderr: Path) -> dict[int, int]:
    """Start a writer, SIGKILL it after ACKS_BEFORE_KILL acknowledgements; {turn_id: n}."""
    with stderr.open("wb") as errors:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.engine.test_log_durability", str(path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    assert child.stdout is not None
    received = b""
    deadline = time.monotonic() + 60
    try:
        while received.count(b"\n") < ACKS_BEFORE_KILL:
            ready, _, _ = select.select([child.stdout], [], [], deadline - time.monotonic())
            chunk = os.read(child.stdout.fileno(), 65536) if ready else b""
            assert chunk, f"writer stopped early: {stderr.read_text(encoding='utf-8')[-2000:]}"
            received += chunk
        assert child.poll() is None, "the writer must still be running when it is killed"
        child.send_signal(signal.SIGKILL)
        # Lines printed before the kill landed are acknowledged too.
        received += child.stdout.read()
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    complete_lines = received.decode().split("\n")[:-1]
    return {int(turn_id): int(n) for turn_id, n in (line.split() for line in complete_lines)}


async def test_every_acknowledged_turn_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    acknowledged: dict[int, int] = {}
    for round_ in range(3):  # later rounds start from a file left by a killed writer
        acked = await asyncio.to_thread(
            acknowledged_then_killed, path, tmp_path / f"writer-{round_}.err"
        )
        assert len(acked) >= ACKS_BEFORE_KILL
        acknowledged |= acked

        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            stored = dict(conn.execute("SELECT id, text FROM turns"))
        missing = [turn_id for turn_id in acknowledged if turn_id not in stored]
        assert not missing, f"acknowledged turns lost after SIGKILL: {missing[:10]}"
        for turn_id, n in acknowledged.items():
            assert stored[turn_id] == text_for(n), f"turn {turn_id} is corrupted"

    # The log opens after the last kill and takes new writes.
    with closing(sqlite3.connect(path)) as conn:
        (conversation,) = conn.execute(
            "SELECT conversation_id FROM turns WHERE id = ?", (max(acknowledged),)
        ).fetchone()
    async with await ConversationLog.open(path) as log:
        turn_id = await log.add_turn(conversation, "bot", "back again")
        recent = await log.recent_turns(conversation, 2)
    assert turn_id > max(acknowledged)
    assert [turn.id for turn in recent][-1] == turn_id and recent[-1].text == "back again"


if __name__ == "__main__":
    asyncio.run(write_until_killed(Path(sys.argv[1])))
