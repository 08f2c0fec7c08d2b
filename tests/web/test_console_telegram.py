"""The console and the Telegram operator desk are one inbox: the bot and the console share the log.

The real bot polls the fake Bot API over HTTP; the real web app serves the console; both open
the same SQLite log file, as two processes on one machine would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.web.users import UserStore
from engine.log import ConversationLog
from retrieval import KnowledgeBase, RetrievalConfig
from tests.bot.conftest import Harness, running_bot
from tests.bot.test_operator import GROUP, MARIA, field, hand_over, texts
from tests.telegram.fake_api import FakeTelegram
from tests.web.conftest import HashKb
from tests.web.console_helpers import PASSWORD, console_config
from tests.web.server import WebServer, serve_web
from tests.web.test_console import sign_in

CUSTOMER = 321


@dataclass
class Desk:
    """The bot with its operator desk, the console, and the log file both use."""

    tg: FakeTelegram
    harness: Harness
    site: WebServer
    log: ConversationLog


@pytest.fixture
async def desk(tmp_path: Path, hash_kb: HashKb) -> AsyncIterator[Desk]:
    kb_dir, embedder = hash_kb
    config = console_config(tmp_path)
    UserStore(config.users_path).create("olaf", "operator", PASSWORD)
    log = await ConversationLog.open(tmp_path / "conversations.db")
    kb = KnowledgeBase(kb_dir, embedder, RetrievalConfig(kb_dir=kb_dir))
    try:
        async with FakeTelegram() as tg:
            tg.set_member(GROUP, MARIA, "member")
            async with running_bot(
                tg, kb, log, operator_chat_id=GROUP, outbox_interval_s=0.05
            ) as harness:
                with serve_web(tmp_path, kb_dir, embedder, config=config) as site:
                    yield Desk(tg, harness, site, log)
    finally:
        await log.close()


async def post(http: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    # The bot runs on this event loop: the console is asked from a thread, never blocking it.
    return await asyncio.to_thread(http.post, path, data=data)


async def get(http: httpx.Client, path: str) -> str:
    return (await asyncio.to_thread(http.get, path)).text


async def test_taken_in_the_console_is_announced_and_the_reply_reaches_the_customer_once(
    desk: Desk,
) -> None:
    tg = desk.tg
    topic = await hand_over(tg, CUSTOMER)
    conversation = await desk.log.latest_conversation_id("telegram", str(CUSTOMER))
    assert conversation is not None
    here = f"/console/conversations/{conversation}"
    with sign_in(desk.site, "olaf") as (http, csrf):
        assert "waiting for an operator" in await get(http, here)
        assert (await post(http, f"{here}/assign", {"csrf": csrf})).status_code == 303
        await tg.wait_for(lambda: "Taken by olaf in the console." in texts(tg, GROUP))
        seen = (await desk.log.recent_turns(conversation, 1))[-1].id
        form = {"csrf": csrf, "text": "Refund sent <today>.", "after": str(seen)}
        # The form sent twice (a double click): one turn, one message.
        for _ in range(2):
            assert (await post(http, f"{here}/reply", form)).status_code == 303
        await tg.wait_for(lambda: "Refund sent <today>." in texts(tg, CUSTOMER))
        await tg.wait_for(lambda: any("Refund sent" in t for t in texts(tg, GROUP)))
        await tg.wait_idle(quiet=0.5)
    assert texts(tg, CUSTOMER).count("Refund sent <today>.") == 1
    announced = [
        m for m in tg.messages(GROUP) if field(m, "text") == "Taken by olaf in the console."
    ]
    assert len(announced) == 1 and field(announced[0], "message_thread_id") == topic
    handover = await desk.log.open_handover_for(conversation)
    assert handover is not None and handover.assignee == "olaf"
    logged = await desk.log.recent_turns(conversation, 20)
    assert [t.text for t in logged if t.role == "operator"] == ["Refund sent <today>."]


async def test_taken_in_a_topic_shows_as_taken_in_the_console(desk: Desk) -> None:
    tg = desk.tg
    topic = await hand_over(tg, CUSTOMER)
    conversation = await desk.log.latest_conversation_id("telegram", str(CUSTOMER))
    assert conversation is not None
    with sign_in(desk.site, "olaf") as (http, _):
        assert f'href="/console/conversations/{conversation}"' in await get(http, "/console")
        tg.send_text(
            GROUP, "I'm on it.", user_id=MARIA, chat_type="supergroup", message_thread_id=topic
        )
        await tg.wait_for(lambda: "I'm on it." in texts(tg, CUSTOMER))
        await tg.wait_idle(quiet=0.5)
        transcript = await get(http, f"/console/conversations/{conversation}")
        assert "taken by <strong>Alice (Telegram)</strong>" in transcript
        waiting = await get(http, "/console")
        assert f'href="/console/conversations/{conversation}"' not in waiting
        everything = await get(http, "/console?view=open")
        assert "Alice (Telegram)" in everything
    # Taken in the topic: nothing is announced back into it.
    assert not any("in the console" in t for t in texts(tg, GROUP))


async def test_resolved_in_the_console_the_customers_5_is_their_rating_not_a_question(
    desk: Desk,
) -> None:
    tg = desk.tg
    await hand_over(tg, CUSTOMER)
    conversation = await desk.log.latest_conversation_id("telegram", str(CUSTOMER))
    assert conversation is not None
    here = f"/console/conversations/{conversation}"
    with sign_in(desk.site, "olaf") as (http, csrf):
        assert (await post(http, f"{here}/resolve", {"csrf": csrf})).status_code == 303
        await tg.wait_for(lambda: any("How did we do?" in t for t in texts(tg, CUSTOMER)))
        await tg.wait_idle(quiet=0.5)
        before = len(texts(tg, CUSTOMER))
        tg.send_text(CUSTOMER, "5", user_id=CUSTOMER, chat_type="private")
        await tg.wait_for(lambda: len(texts(tg, CUSTOMER)) > before)
        await tg.wait_idle(quiet=0.5)
        assert texts(tg, CUSTOMER)[before:] == ["Thank you for your rating!"]
        resolved = await get(http, "/console?view=resolved")
        assert f'href="{here}"' in resolved
    logged = await desk.log.get_conversation(conversation)
    assert logged is not None
    assert logged.handovers[-1].rating == 5
    assert await desk.log.handover_ratings() == [5]
    # The "5" went to no search: no bot answer, only the thank-you without an action.
    last = logged.turns[-2:]
    assert [(t.role, t.text, t.action) for t in last] == [
        ("customer", "5", None),
        ("bot", "Thank you for your rating!", None),
    ]
    # Back with the bot: the next question is answered, not relayed to the topic.
    tg.send_text(
        CUSTOMER, "How long do I have to return an item?", user_id=CUSTOMER, chat_type="private"
    )
    await tg.wait_for(lambda: any("30 days" in t for t in texts(tg, CUSTOMER)))


async def test_closed_in_a_topic_the_customer_is_asked_and_a_thumbs_up_is_stored(
    desk: Desk,
) -> None:
    tg = desk.tg
    topic = await hand_over(tg, CUSTOMER)
    tg.send_text(GROUP, "/close", user_id=MARIA, chat_type="supergroup", message_thread_id=topic)
    await tg.wait_for(lambda: any("How did we do?" in t for t in texts(tg, CUSTOMER)))
    await tg.wait_idle(quiet=0.5)
    tg.send_text(CUSTOMER, "👍", user_id=CUSTOMER, chat_type="private")
    await tg.wait_for(lambda: "Thank you for your rating!" in texts(tg, CUSTOMER))
    assert await desk.log.handover_ratings() == [5]
    # A second "4" is an ordinary message now: the bot answers it (it does not know it).
    tg.send_text(CUSTOMER, "4", user_id=CUSTOMER, chat_type="private")
    await tg.wait_idle(quiet=0.5)
    assert texts(tg, CUSTOMER).count("Thank you for your rating!") == 1
    assert await desk.log.handover_ratings() == [5]
