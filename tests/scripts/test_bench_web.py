"""scripts/bench_web.py at CI size: it serves `python -m bot.web` as deployed, asks through the
engine, the API and the stream, and reports every documented figure in its last JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PAIRS = (
    "engine_p50_p95_ms",
    "api_p50_p95_ms",
    "added_p50_p95_ms",
    "added_paired_p50_p95_ms",
    "stream_first_added_p50_p95_ms",
    "stream_whole_added_p50_p95_ms",
    "stream_first_added_paired_p50_p95_ms",
)
RATES = (
    "engine_replies_per_s",
    "api_replies_per_s",
    "throughput_ratio",
    "cpu_ms_per_reply_engine",
    "cpu_ms_per_reply_server",
    "cpu_ms_per_reply_client",
    "cpu_ratio",
)


@pytest.mark.slow
def test_bench_web_reports_latency_and_throughput_of_the_api_beside_the_engine() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "scripts/bench_web.py",
            "--questions=3",
            "--clients=4",
            "--messages=2",
            "--repeat=1",
            "--rounds=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    keys = {
        "backend",
        "threads",
        "encoder_threads",
        "questions",
        "clients",
        "replies",
        *PAIRS,
        *RATES,
    }
    assert set(result) == keys, result
    # [retrieval] backend from the config, and threads of both processes: the bench's default
    # 0, which resolves to one encoder thread (the tests cap torch's team at 1).
    assert (result["backend"], result["threads"], result["encoder_threads"]) == ("torch", 0, 1)
    assert (result["questions"], result["clients"], result["replies"]) == (3, 4, 8)
    for name in PAIRS:
        p50, p95 = result[name]
        assert isinstance(p50, float) and isinstance(p95, float), (name, result[name])
    # Whole replies take time on both sides; added latency is a difference and may be negative.
    for name in ("engine_p50_p95_ms", "api_p50_p95_ms"):
        p50, p95 = result[name]
        assert 0 < p50 <= p95 < 60_000, (name, result[name])
    for name in RATES:
        assert result[name] > 0, (name, result)
    assert result["throughput_ratio"] == pytest.approx(
        result["api_replies_per_s"] / result["engine_replies_per_s"], abs=0.01
    )
    assert result["cpu_ratio"] == pytest.approx(
        result["cpu_ms_per_reply_engine"] / result["cpu_ms_per_reply_server"], abs=0.01
    )
    # The human-readable lines above it say whether the targets were met.
    assert lines[-2].startswith("target: p95 added <= 10 ms ("), lines[-2]
