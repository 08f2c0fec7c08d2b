"""Probes, key management from the command line, and the [web] settings section."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from bot.web import KeyStore
from bot.web.__main__ import main, serve
from engine.log import LogConfig
from engine.settings import Settings, TrainingConfig, WebConfig, load_settings
from retrieval import Embedder, ImportConfig, RetrievalConfig, import_paths
from tests.conftest import EXAMPLES
from tests.web.server import WebServer


def test_health_needs_no_key_and_readiness_checks_the_log(web: WebServer) -> None:
    with web.client() as http:
        assert http.get("/health").json() == {"status": "ok", "checks": {}}
        ready = http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["log"] == "ok"
    assert ready.json()["checks"]["knowledge_base"].startswith("v")


def test_openapi_schema_is_served(web: WebServer) -> None:
    schema = httpx.get(f"{web.url}/openapi.json").json()
    assert "/v1/chat/completions" in schema["paths"]
    assert "/api/kb/entries" in schema["paths"]


def test_keys_are_printed_once_stored_hashed_and_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "web.toml"
    keys_path = tmp_path / "keys.db"
    config.write_text(f'[web]\nkeys_path = "{keys_path}"\n', encoding="utf-8")
    assert (
        main(["--config", str(config), "keys", "create", "--name", "shop", "--scope", "chat"]) == 0
    )
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("sb-") and len(secret) > 40
    assert secret.encode() not in keys_path.read_bytes()
    store = KeyStore(keys_path)
    found = store.find(secret)
    assert found is not None and (found.name, found.scope) == ("shop", "chat")
    assert (
        main(["--config", str(config), "keys", "create", "--name", "shop", "--scope", "chat"]) == 2
    )
    assert "exists" in capsys.readouterr().err
    assert main(["--config", str(config), "keys", "revoke", "shop"]) == 0
    assert store.find(secret) is None
    assert main(["--config", str(config), "keys", "revoke", "shop"]) == 1


def test_web_section_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[web]\nlisten_port = 9001\ncors_origins = ["https://shop.example"]\n')
    settings = load_settings(path)
    assert settings.web.listen_port == 9001
    assert settings.web.cors_origins == ("https://shop.example",)
    path.write_text("[web]\nlisten_prot = 9001\n")
    with pytest.raises(ValueError, match="listen_prot"):
        load_settings(path)


def test_metrics_count_the_replies_the_api_gave(web: WebServer) -> None:
    def replies(text: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("supportbot_replies_total{")
        )

    ask = {"model": "supportbot", "user": "m", "messages": [{"role": "user", "content": "hi"}]}
    with web.client(web.keys.chat) as http:
        before = http.get("/metrics/")
        assert http.post("/v1/chat/completions", json=ask).status_code == 200
        after = http.get("/metrics/").text
    assert before.status_code == 200
    assert replies(after) == replies(before.text) + 1
    assert "supportbot_reply_duration_seconds_bucket" in after


async def test_the_app_is_served_with_its_start_up_heap_frozen(
    tmp_path: Path, minilm: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb_dir = tmp_path / "kb"
    retrieval = RetrievalConfig(kb_dir=kb_dir)
    import_paths([EXAMPLES / "kb"], kb_dir, minilm, retrieval, ImportConfig(), progress=False)
    settings = Settings(
        retrieval=retrieval,
        log=LogConfig(path=tmp_path / "conversations.db"),
        web=WebConfig(keys_path=tmp_path / "keys.db", users_path=tmp_path / "console.db"),
        training=TrainingConfig(models_dir=tmp_path / "models"),
    )
    served: list[tuple[object, int]] = []

    async def record(server: uvicorn.Server, sockets: object = None) -> None:
        served.append((server.config.app, gc.get_freeze_count()))

    monkeypatch.setattr(uvicorn.Server, "serve", record)
    try:
        await serve(settings)
    finally:
        gc.unfreeze()  # the frozen heap is this test process's
    [(app, frozen)] = served
    assert isinstance(app, FastAPI)
    assert frozen > 0
