"""`python -m bot`: start-up errors are one line with exit status 2; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.__main__ import StartupError, main, serve
from engine.settings import BotConfig, Settings
from retrieval import Embedder, ImportConfig, RetrievalConfig, import_paths
from tests.bot.test_chat import answered, text_of
from tests.conftest import EXAMPLES, ROOT
from tests.telegram.fake_api import FakeTelegram

TOKEN = "123456:" + "A" * 35


def run_main(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> int:
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return main(list(args))


def test_missing_or_malformed_token_is_one_line_and_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, {}) == 2
    assert capsys.readouterr().err == (
        "error: TELEGRAM_BOT_TOKEN is not set; get a token from @BotFather\n"
    )
    assert run_main(monkeypatch, {"TELEGRAM_BOT_TOKEN": "not a token"}) == 2
    assert "TELEGRAM_BOT_TOKEN is malformed" in capsys.readouterr().err


def test_webhook_mode_needs_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[bot]\nmode = "webhook"\nwebhook_url = "https://bot.example.com"\n')
    assert run_main(monkeypatch, {"TELEGRAM_BOT_TOKEN": TOKEN}, "--config", str(config)) == 2
    assert "TELEGRAM_WEBHOOK_SECRET" in capsys.readouterr().err


async def test_missing_knowledge_base_and_rejected_token_are_start_up_errors(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    settings = Settings(
        retrieval=RetrievalConfig(kb_dir=tmp_path / "nothing"),
        bot=BotConfig(api_base_url=tg.base_url),
    )
    with pytest.raises(StartupError, match=r"no knowledge base at .*import_faq\.py"):
        await serve(settings, tg.token, "")
    with pytest.raises(StartupError, match="Telegram rejected TELEGRAM_BOT_TOKEN"):
        await serve(settings, TOKEN, "")


async def test_the_bot_process_answers_and_exits_cleanly_on_sigterm(
    tg: FakeTelegram, minilm: Embedder, tmp_path: Path
) -> None:
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
    db = tmp_path / "conversations.db"
    config = tmp_path / "bot.toml"
    config.write_text(
        f'[retrieval]\nkb_dir = "{kb_dir}"\n[log]\npath = "{db}"\n'
        f'[bot]\napi_base_url = "{tg.base_url}"\nstream_interval_s = 0.2\n'
    )
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": tg.token}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(config),
        cwd=ROOT,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        tg.send_text(301, "How long do I have to return an item?")
        await tg.wait_for(lambda: bool(tg.messages(301)), timeout=60)
        messages = await answered(tg, 301)
        assert "30 days" in text_of(messages[-1])
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM turns").fetchone() == (2,)
    assert [c["commands"] for c in tg.calls_for("setMyCommands")]
