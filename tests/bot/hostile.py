"""Checks shared by the hostile-input tests: nothing the Bot API refused, no traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.telegram.fake_api import Call, FakeTelegram

APOLOGY = "Sorry, something went wrong"


def refused_calls(tg: FakeTelegram) -> list[Call]:
    """Calls Telegram would have refused (getUpdates' 409 at shutdown aside)."""
    return [c for c in tg.calls if not c.ok and c.method != "getUpdates"]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def apologies(tg: FakeTelegram, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in tg.messages(chat_id) if m.get("text", "").startswith(APOLOGY)]


def press(
    tg: FakeTelegram,
    message: dict[str, Any],
    data: str | None,
    user_id: int,
    query_id: str,
) -> str:
    """A press on `message` with any data at all, as a modified client could send it."""
    query: dict[str, Any] = {
        "id": query_id,
        "from": tg.world.user(user_id),
        "message": message,
        "chat_instance": "1",
    }
    if data is not None:
        query["data"] = data
    tg.add_update({"callback_query": query})
    return query_id
