"""What the console tests share: a console's configuration and password, a customer asking
over the web API (and opening a hand-over), and signing in to the console in a browser."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright import async_api as playwright

from engine.settings import WebConfig
from tests.ports import free_port
from tests.web.server import WebServer

PASSWORD = "correct horse battery"


def console_config(folder: Path, *, secure: bool = False) -> WebConfig:
    """A web server's configuration with its keys and console accounts in `folder`."""
    return WebConfig(
        listen_port=free_port(),
        keys_path=folder / "keys.db",
        users_path=folder / "console.db",
        cookie_secure=secure,
        login_per_minute=0.5,  # no try comes back within a test
    )


def chat(web: WebServer, user: str, text: str, key: str | None = None) -> dict[str, Any]:
    """A simulated customer's message over the web API (the chat key unless `key`); the
    reply's `supportbot` field: action, reason, conversation_id, turn_id, text..."""
    with web.client(key or web.keys.chat) as http:
        response = http.post(
            "/v1/chat/completions",
            json={
                "model": "supportbot",
                "messages": [{"role": "user", "content": text}],
                "user": user,
            },
        )
    assert response.status_code == 200, response.text
    extension: dict[str, Any] = response.json()["supportbot"]
    return extension


def ask(web: WebServer, user: str, text: str, *, handover: bool = False) -> tuple[int, str]:
    """A simulated customer on the web API: asks, then asks for a person when `handover` says
    so; the conversation's id and the bot's reply."""
    reply = chat(web, user, text)
    conversation = int(reply["conversation_id"])
    if handover:
        with web.client(web.keys.chat) as api:
            handed = api.post(f"/api/conversations/{conversation}/handover", json={})
        assert handed.status_code == 200, handed.text
    return conversation, str(reply["text"])


def open_handover(web: WebServer, user: str, text: str, *, handover: bool = True) -> int:
    """The customer asks and opens a hand-over (only asks with `handover=False`); the id."""
    return ask(web, user, text, handover=handover)[0]


@contextlib.asynccontextmanager
async def console_page(chromium: Path) -> AsyncIterator[playwright.Page]:
    """A desktop-sized page in Chromium, closed when the block ends; the block fails if a
    script on any page it showed threw an error."""
    errors: list[str] = []
    async with playwright.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium))
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 800})
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page
        finally:
            await browser.close()
    assert errors == [], errors


async def browser_sign_in(
    page: playwright.Page, url: str, name: str, password: str, *, shot: Path | None = None
) -> None:
    """Open the console, land on its sign-in form (a screenshot of it to `shot`), sign in."""
    await page.goto(f"{url}/console")
    assert page.url.endswith("/console/login"), page.url
    if shot is not None:
        await page.screenshot(path=shot, full_page=True)
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", password)
    await page.click("button:has-text('Sign in')")


def saved_shots(folder: Path) -> list[str]:
    """The names of the screenshots a browser test saved in `folder`, sorted."""
    return sorted(path.name for path in folder.iterdir())
