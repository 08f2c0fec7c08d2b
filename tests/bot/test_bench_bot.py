"""scripts/bench_bot.py at CI size: a bot process killed with SIGKILL loses and repeats nothing,
taking updates by long polling and by webhook, and its log agrees with what customers got; the
engine-alone, load and steady-rate phases measure and account for every question."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT


def _bench(*flags: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run scripts/bench_bot.py with `flags`; its last line of output is one JSON object."""
    run = subprocess.run(
        [sys.executable, "scripts/bench_bot.py", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return run, result


@pytest.mark.slow
def test_the_bot_survives_load_and_a_kill_without_losing_or_repeating_answers() -> None:
    run, result = _bench(
        "--chats=20", "--messages=3", "--phases=echo,fault,webhook-fault", "--timeout=400"
    )
    echo = result["echo"]
    assert echo["replies"] == echo["questions"] == 60
    for fault in (result["fault"], result["webhook-fault"]):
        assert fault["questions"] == 60
        assert fault["lost"] == fault["lost_after_delivery"] == 0, run.stdout
        assert fault["duplicated"] == 0, run.stdout
        assert fault["order_kept"] and fault["mismatched"] == 0, run.stdout
        assert fault["integrity"] == "ok"
        assert fault["turns_consistent"], run.stdout
        # The log agrees with the customers: one customer turn per question, the answers that
        # arrived delivered (or, sent in the instant of the kill, pending and noticed).
        assert fault["customer_turns"] == 60, run.stdout
        answered = fault["answers_confirmed"] + fault["answers_unconfirmed"]
        assert answered == 60 - fault["recovered_without_answer"], run.stdout
        assert fault["delivered_bot_turns"] == fault["answers_confirmed"], run.stdout
        for failure in (
            "extra_customer_turns",
            "missing_customer_turns",
            "duplicate_bot_turns",
            "answers_missing_in_log",
            "delivered_not_received",
            "notices_without_cause",
        ):
            assert fault[failure] == 0, (failure, run.stdout)
        assert fault["flood_notices"] == fault["apologies"] == 0
        assert fault["exit_code"] == 0
    # The update in progress at the kill got no answer over HTTP and came again.
    assert result["webhook-fault"]["redelivered_updates"] >= 1, run.stdout
    assert result["passed"] and run.returncode == 0, run.stderr[-2000:]


@pytest.mark.slow
def test_several_bot_processes_survive_a_killed_worker() -> None:
    """One receiver and two workers on Redis and PostgreSQL; a worker gets SIGKILL mid-run."""
    run, result = _bench("--chats=20", "--messages=3", "--phases=workers-fault", "--timeout=400")
    several = result["workers-fault"]
    assert several["log"] == "postgresql", several["log"]
    assert several["questions"] == several["customer_turns"] == 60, run.stdout
    assert several["lost"] == several["lost_after_delivery"] == several["duplicated"] == 0
    assert several["order_kept"] and several["turns_consistent"], run.stdout
    assert several["integrity"] == "ok" and several["exit_code"] == 0, run.stdout
    answered = several["answers_confirmed"] + several["answers_unconfirmed"]
    assert answered == 60 - several["recovered_without_answer"], run.stdout
    assert several["flood_notices"] == several["apologies"] == 0
    assert result["passed"] and run.returncode == 0, run.stderr[-2000:]


@pytest.mark.slow
def test_the_engine_alone_the_bot_and_a_steady_rate_are_measured_in_one_run() -> None:
    """The three figures of one run at tiny size: every question counted, none lost."""
    run, result = _bench(
        "--chats=6",
        "--messages=2",
        "--phases=engine,load,steady",
        "--steady-rate=4",
        "--steady-seconds=3",
        "--steady-chats=6",
        "--timeout=400",
    )
    # [retrieval] backend and threads of the engine alone and the bot: the config's, and the
    # bench's default 0, which resolves to one encoder thread (the tests cap torch's team at 1).
    assert (result["backend"], result["threads"], result["encoder_threads"]) == ("torch", 0, 1)
    engine = result["engine"]
    # Before and after the load phase, each run answering every question of every chat.
    assert [r["replies"] for r in engine["runs"]] == [12, 12], run.stdout
    assert engine["replies_per_s"] > 0 and result["ratio"] > 0
    load = result["load"]
    assert load["questions"] == load["replies"] == load["answers_confirmed"] == 12, run.stdout
    assert load["api_calls_per_reply"]["sendMessage"] >= 1.0
    # CPU per reply on both sides; the bot's event loop is one of the bot process's threads.
    assert 0 < load["loop_cpu_ms_per_reply_bot"] <= load["cpu_ms_per_reply_bot"], run.stdout
    assert 0 < engine["loop_cpu_ms_per_reply"] <= engine["cpu_ms_per_reply"], run.stdout
    assert load["cpu_ms_per_reply_fake"] > 0
    expected = engine["cpu_ms_per_reply"] / load["cpu_ms_per_reply_bot"]
    assert abs(result["cpu_ratio"] - expected) < 0.01, run.stdout
    steady = result["steady"]
    # 4 messages a second for 3 s from 6 chats taking turns: 12 questions, each shown and
    # answered once; the first visible reply never comes after the answer.
    assert steady["questions"] == steady["shown"] == steady["answered"] == 12, run.stdout
    assert steady["lost"] == steady["duplicated"] == steady["flood_notices"] == 0
    assert steady["first_visible_p99_ms"] <= steady["answer_p99_ms"]
    assert steady["exit_code"] == 0
    assert result["passed"] and run.returncode == 0, run.stderr[-2000:]
