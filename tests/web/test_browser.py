"""The web chat in a real browser (Debian's Chromium driven by Playwright), with a real operator
desk: the Telegram bot on the fake Bot API takes the web hand-over in a forum topic.

Screenshots of every step are saved as PNG files in the test's tmp_path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web as aioweb
from playwright import async_api as playwright

from engine.log import ConversationLog
from engine.rating import QUESTION as RATING_QUESTION
from engine.settings import WebConfig
from retrieval import KnowledgeBase, RetrievalConfig
from tests.bot.conftest import running_bot
from tests.ports import free_port
from tests.telegram.fake_api import FakeTelegram
from tests.web.conftest import HashKb
from tests.web.server import serve_web

GROUP = -1001234
MARIA = 900
RETURN_WINDOW = "How long do I have to return an item?"
HOSTILE = "<b>bold</b><img src=x onerror=\"document.title='owned'\"> & more"


def field(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, dict) else getattr(message, name, None)


def group_texts(tg: FakeTelegram) -> list[str]:
    return [str(field(m, "text") or "") for m in tg.messages(GROUP)]


async def until(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_customer_chats_rates_asks_for_a_person_and_gets_the_reply(
    tmp_path: Path, hash_kb: HashKb, chromium: Path
) -> None:
    kb_dir, embedder = hash_kb
    log_path = tmp_path / "conversations.db"
    config = WebConfig(
        listen_port=free_port(),
        keys_path=tmp_path / "keys.db",
        operator_desk=True,
        poll_interval_s=0.1,
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()
    bot_kb = KnowledgeBase(kb_dir, embedder, RetrievalConfig(kb_dir=kb_dir))
    async with (
        FakeTelegram() as tg,
        await ConversationLog.open(log_path) as bot_log,
        running_bot(tg, bot_kb, bot_log, operator_chat_id=GROUP),
        playwright.async_playwright() as pw,
        ShopSite() as site,
    ):
        tg.set_member(GROUP, MARIA, "member")
        with serve_web(tmp_path, kb_dir, embedder, config=config, log_path=log_path) as web:
            shop = (
                "<!doctype html><title>Northwind shop</title><h1>Northwind shop</h1>"
                f'<script src="{web.url}/widget.js" data-key="{web.keys.chat}" async></script>'
            )
            browser = await pw.chromium.launch(executable_path=str(chromium))
            page = await browser.new_page(viewport={"width": 1000, "height": 760})
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.on("pageerror", lambda e: console.append(str(e)))
            await page.goto(site.serve(shop))
            await page.click("button[data-supportbot=open]")
            chat = page.frame_locator("iframe[data-supportbot=chat]")
            messages = chat.locator("#messages")
            await page.screenshot(path=shots / "1-opened.png")

            # A question, answered as it streams, with its source and rating buttons.
            await chat.locator("#text").fill(RETURN_WINDOW)
            await chat.locator("#text").press("Enter")
            answer = messages.locator("li[data-action=answer]").last
            await answer.wait_for()
            assert "30 days" in await answer.inner_text()
            assert RETURN_WINDOW in await answer.locator(".sources").inner_text()
            await answer.locator("button[data-vote='1']").click()
            await answer.locator(".feedback[data-sent='1']").wait_for()
            await page.screenshot(path=shots / "2-answered-and-rated.png")

            # Hostile text is shown as text: no element is made of it, no script runs.
            await chat.locator("#text").fill(HOSTILE)
            await chat.locator("#send").click()
            mine = messages.locator("li[data-role=customer]").last
            await mine.wait_for()
            await messages.locator("li[data-role=bot]").nth(1).locator(".text").wait_for()
            assert await mine.inner_text() == HOSTILE
            assert await messages.locator("b, img").count() == 0
            assert await page.title() == "Northwind shop"

            # The conversation survives a reload of the page.
            await page.reload()
            await page.click("button[data-supportbot=open]")
            await messages.locator("li[data-role=customer]").first.wait_for()
            restored = await messages.inner_text()
            assert RETURN_WINDOW in restored and HOSTILE in restored
            voted = messages.locator("li[data-role=bot] button[data-vote='1']").first
            assert await voted.get_attribute("aria-pressed") == "true"
            await page.screenshot(path=shots / "3-after-reload.png")

            # "Talk to a person": the desk opens a forum topic for the web customer.
            await chat.locator("#person").click()
            await messages.locator("li[data-action=handoff]").wait_for()
            await until(lambda: bool(tg.calls_for("createForumTopic")))
            [created] = tg.calls_for("createForumTopic")
            assert str(created["name"]).startswith("web · site:")
            await until(lambda: any("Hand-over" in t for t in group_texts(tg)))
            post = group_texts(tg)[-1]
            assert RETURN_WINDOW in post and "human_requested" in post
            topic = field(tg.messages(GROUP)[-1], "message_thread_id")

            # While the operator has the chat, the customer's messages go to the topic.
            await chat.locator("#text").fill("Is anyone there?")
            await chat.locator("#text").press("Enter")
            await messages.locator("li[data-action=relayed]").wait_for()
            await until(lambda: "Is anyone there?" in group_texts(tg))

            # The operator answers in the topic; the customer sees it live.
            tg.send_text(
                GROUP,
                "Hi, Maria here. Your refund left today.",
                user_id=MARIA,
                chat_type="supergroup",
                message_thread_id=topic,
            )
            from_operator = messages.locator("li[data-role=operator]").last
            await from_operator.wait_for(timeout=15000)
            assert "Maria here" in await from_operator.inner_text()
            await page.screenshot(path=shots / "4-operator-replied.png")

            # /close in the topic gives the customer back to the bot.
            tg.send_text(
                GROUP, "/close", user_id=MARIA, chat_type="supergroup", message_thread_id=topic
            )
            await messages.get_by_text("You are back with the bot").wait_for(timeout=15000)
            # ... and asks for a rating; the customer's "5" is stored and thanked for.
            await messages.get_by_text("How did we do?").wait_for(timeout=15000)
            await chat.locator("#text").fill("5")
            await chat.locator("#text").press("Enter")
            await messages.get_by_text("Thank you for your rating!").wait_for(timeout=15000)
            await page.screenshot(path=shots / "5-back-with-the-bot.png")
            await browser.close()

        [conversation] = await bot_log.list_conversations("web")
        turns = await bot_log.recent_turns(conversation.id, 50)
        assert [t.text for t in turns if t.role == "operator"] == [
            "Hi, Maria here. Your refund left today.",
            RATING_QUESTION,
        ]
        assert await bot_log.handover_ratings() == [5]
        assert any(t.feedback == 1 for t in turns)
        assert await bot_log.open_handover_for(conversation.id) is None
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-opened.png",
        "2-answered-and-rated.png",
        "3-after-reload.png",
        "4-operator-replied.png",
        "5-back-with-the-bot.png",
    ]
    assert all(p.stat().st_size > 1000 for p in shots.iterdir())


class ShopSite:
    """The company's own site on another origin (localhost), with the embed snippet in it."""

    def __init__(self) -> None:
        self._page = ""
        self._runner: aioweb.AppRunner | None = None
        self.port = free_port()

    def serve(self, page: str) -> str:
        self._page = page
        return f"http://localhost:{self.port}/"

    async def _index(self, request: aioweb.Request) -> aioweb.Response:
        return aioweb.Response(text=self._page, content_type="text/html")

    async def __aenter__(self) -> ShopSite:
        app = aioweb.Application()
        app.router.add_get("/", self._index)
        self._runner = aioweb.AppRunner(app, access_log=None)
        await self._runner.setup()
        await aioweb.TCPSite(self._runner, "localhost", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
