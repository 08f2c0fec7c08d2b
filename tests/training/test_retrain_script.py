"""scripts/retrain.py run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.training.conftest import fill_log
from training.registry import ModelRegistry


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "retrain.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "supportbot.toml"
    config.write_text(
        f'[retrieval]\nkb_dir = "{tmp_path / "kb"}"\n'
        f'[training]\nmodels_dir = "{tmp_path / "models"}"\nruns_dir = "{tmp_path / "runs"}"\n'
        "min_dialogues = 1\nmin_held_out = 6\n"
    )
    return config


async def test_dry_run_counts_without_training(tmp_path: Path) -> None:
    log_db = tmp_path / "conversations.db"
    await fill_log(log_db)
    result = _run(
        "--log-db", str(log_db), "--dry-run", "--config", str(_config(tmp_path)), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "dialogues: " in result.stdout
    # The log's few conversations hash into no held-out dialogue: the gate could not judge one.
    assert "lora: not trained: no held-out dialogues" in result.stdout
    assert "(needs 6, [training] min_held_out; 2 dialogue examples" in result.stdout
    assert "sentiment: not trained" in result.stdout
    reports = list((tmp_path / "runs").glob("*/report.md"))
    assert len(reports) == 1 and "Dry run" in reports[0].read_text()
    assert (reports[0].parent / "data" / "dialogues.train.jsonl").is_file()
    assert not (tmp_path / "models").exists()


async def test_personal_data_stops_the_run(tmp_path: Path) -> None:
    log_db = tmp_path / "raw.db"
    await fill_log(log_db, redact_pii=False)
    result = _run(
        "--log-db", str(log_db), "--dry-run", "--config", str(_config(tmp_path)), cwd=tmp_path
    )
    assert result.returncode == 3
    assert "refusing to train" in result.stderr and "turn-" in result.stderr


def test_rollback_command(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    for name in ("a", "b"):
        source = tmp_path / name
        source.mkdir()
        registry.promote("sentiment", registry.add("sentiment", source, {}).version)
    first = registry.versions("sentiment")[0].version
    result = _run("rollback", "sentiment", "--config", str(_config(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{first} is live again" in result.stdout
    current = registry.current("sentiment")
    assert current is not None and current.version == first
