"""scripts/bench_wakeups.py at CI size, on the real Redis: both cases, both ways, in its last
JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT
from tests.services import RedisNamespace


def test_bench_wakeups_reports_both_ways_of_both_cases(redis_namespace: RedisNamespace) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "scripts/bench_wakeups.py",
            "--replies=2",
            "--rounds=1",
            f"--redis={redis_namespace.url}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["outbox_interval_s"] == 1.0 and summary["poll_interval_s"] == 0.5
    for case in ("outbox", "console"):
        for way in ("polling", "wakeups"):
            figures = summary[case][way]
            assert 0 < figures["p50_ms"] <= figures["max_ms"], (case, way, figures)
