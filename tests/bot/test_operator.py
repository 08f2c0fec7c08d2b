"""End to end: the operator desk in a forum supergroup, through the fake Bot API over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.log import ConversationLog, Handover
from retrieval import KnowledgeBase
from tests.bot.conftest import StartBot, running_bot
from tests.telegram.fake_api import FakeTelegram

GROUP = -1001234
MARIA = 900
OUTSIDER = 901
RETURN_WINDOW = "How long do I have to return an item?"


def field(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, dict) else getattr(message, name, None)


def texts(tg: FakeTelegram, chat_id: int) -> list[str]:
    return [str(field(m, "text") or field(m, "caption") or "") for m in tg.messages(chat_id)]


async def hand_over(tg: FakeTelegram, customer: int, posts: int = 1) -> int:
    """The customer asks for a person; returns the forum topic the desk posted in."""
    tg.send_text(customer, "/human", user_id=customer, chat_type="private")
    await tg.wait_for(lambda: len(tg.messages(GROUP)) >= posts)
    await tg.wait_for(lambda: any("join this chat" in t for t in texts(tg, customer)))
    await tg.wait_idle()
    topic = field(tg.messages(GROUP)[-1], "message_thread_id")
    assert isinstance(topic, int)
    return topic


def from_operator(tg: FakeTelegram, topic: int, text: str, user_id: int = MARIA) -> None:
    tg.send_text(GROUP, text, user_id=user_id, chat_type="supergroup", message_thread_id=topic)


async def operator_turns(log: ConversationLog, customer: int) -> list[str]:
    conversation = await log.latest_conversation_id("telegram", str(customer))
    assert conversation is not None
    return [t.text for t in await log.recent_turns(conversation, 100) if t.role == "operator"]


async def test_human_opens_a_topic_with_the_transcript_and_suggestion(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    async with start_bot(operator_chat_id=GROUP):
        tg.send_text(201, RETURN_WINDOW, user_id=201, chat_type="private")
        await tg.wait_for(lambda: any("30 days" in t for t in texts(tg, 201)))
        topic = await hand_over(tg, 201)
    [created] = tg.calls_for("createForumTopic")
    assert str(created["chat_id"]) == str(GROUP) and "#201" in created["name"]
    post = texts(tg, GROUP)[-1]
    assert "Hand-over" in post and "human_requested" in post
    assert RETURN_WINDOW in post and "30 days" in post  # the transcript
    assert "Sentiment:" in post
    conversation = await conversation_log.latest_conversation_id("telegram", "201")
    assert conversation is not None
    handover = await conversation_log.open_handover_for(conversation)
    assert handover is not None and handover.topic_id == topic


async def test_operator_text_photo_and_document_reach_the_customer_and_are_logged(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    tg.set_member(GROUP, MARIA, "member")
    async with start_bot(operator_chat_id=GROUP):
        topic = await hand_over(tg, 202)
        from_operator(tg, topic, "Hi, I'm Maria. Your refund is on its way <today>.")
        await tg.wait_for(lambda: any("on its way" in t for t in texts(tg, 202)))
        tg.send_photo(
            GROUP, user_id=MARIA, chat_type="supergroup", message_thread_id=topic, caption="Label"
        )
        tg.send_document(GROUP, user_id=MARIA, chat_type="supergroup", message_thread_id=topic)
        await tg.wait_for(lambda: len(tg.calls_for("copyMessage")) >= 2)
        await tg.wait_idle()
    customer = texts(tg, 202)
    joined = [t for t in customer if "has joined" in t]
    assert len(joined) == 1 and "from our team" in joined[0]
    assert any("Your refund is on its way" in t for t in customer)
    copies = tg.calls_for("copyMessage")
    assert all(str(c["chat_id"]) == "202" and str(c["from_chat_id"]) == str(GROUP) for c in copies)
    assert await operator_turns(conversation_log, 202) == [
        "Hi, I'm Maria. Your refund is on its way <today>.",
        "Label",
        "[document]",
    ]


async def test_customer_messages_go_to_the_topic_and_the_bot_stays_quiet(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    tg.set_member(GROUP, MARIA, "administrator")
    async with start_bot(operator_chat_id=GROUP):
        topic = await hand_over(tg, 203)
        before = len(texts(tg, 203))
        tg.send_text(203, RETURN_WINDOW, user_id=203, chat_type="private")
        await tg.wait_for(lambda: texts(tg, GROUP)[-1] == RETURN_WINDOW)
        tg.send_sticker(203, user_id=203, chat_type="private")
        await tg.wait_for(lambda: len(tg.calls_for("copyMessage")) >= 1)
        await tg.wait_idle()
    assert len(texts(tg, 203)) == before  # the engine did not answer
    assert field(tg.messages(GROUP)[-1], "message_thread_id") == topic
    [copy] = tg.calls_for("copyMessage")
    assert str(copy["chat_id"]) == str(GROUP) and int(copy["message_thread_id"]) == topic
    conversation = await conversation_log.latest_conversation_id("telegram", "203")
    assert conversation is not None
    last = (await conversation_log.recent_turns(conversation, 2))[-2:]
    assert [(t.role, t.text) for t in last] == [
        ("customer", RETURN_WINDOW),
        ("customer", "[sticker]"),
    ]


async def test_close_hands_the_customer_back_and_the_bot_answers_again(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    tg.set_member(GROUP, MARIA, "creator")
    async with start_bot(operator_chat_id=GROUP):
        topic = await hand_over(tg, 204)
        from_operator(tg, topic, "/close")
        await tg.wait_for(lambda: any("left the chat" in t for t in texts(tg, 204)))
        tg.send_text(204, RETURN_WINDOW, user_id=204, chat_type="private")
        await tg.wait_for(lambda: any("30 days" in t for t in texts(tg, 204)))
        await tg.wait_idle()
    assert [c["message_thread_id"] for c in tg.calls_for("closeForumTopic")] == [topic]
    conversation = await conversation_log.latest_conversation_id("telegram", "204")
    assert conversation is not None
    assert await conversation_log.open_handover_for(conversation) is None
    assert await conversation_log.handover_for_topic(topic) is None
    # Named as the holder is: analytics counts one operator, not a name and a number.
    logged = await conversation_log.get_conversation(conversation)
    assert logged is not None and logged.handovers[-1].operator_id == "Alice (Telegram)"


async def test_non_members_other_chats_and_the_general_topic_are_not_operator_input(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    tg.set_member(GROUP, MARIA, "member")
    tg.set_member(GROUP, OUTSIDER, "left")
    elsewhere = -1009999
    async with start_bot(operator_chat_id=GROUP):
        topic = await hand_over(tg, 205)
        before = len(texts(tg, 205))
        from_operator(tg, topic, "I am not on the team", user_id=OUTSIDER)
        from_operator(tg, topic, "/close", user_id=OUTSIDER)
        tg.send_text(
            elsewhere,
            "Fake operator",
            user_id=MARIA,
            chat_type="supergroup",
            message_thread_id=topic,
        )
        tg.send_text(GROUP, "In the General topic", user_id=MARIA, chat_type="supergroup")
        await asyncio.sleep(0.5)
        await tg.wait_idle()
        assert len(texts(tg, 205)) == before
        # The customer is still with the desk: their message goes to the topic.
        tg.send_text(205, "still there?", user_id=205, chat_type="private")
        await tg.wait_for(lambda: texts(tg, GROUP)[-1] == "still there?")
        await tg.wait_idle()
    assert await operator_turns(conversation_log, 205) == []
    assert not tg.calls_for("closeForumTopic")
    assert not tg.messages(elsewhere)


async def test_a_second_hand_over_reuses_the_customers_topic(
    start_bot: StartBot, tg: FakeTelegram
) -> None:
    tg.set_member(GROUP, MARIA, "member")
    async with start_bot(operator_chat_id=GROUP):
        topic = await hand_over(tg, 206)
        from_operator(tg, topic, "/close")
        await tg.wait_for(lambda: any("left the chat" in t for t in texts(tg, 206)))
        second = await hand_over(tg, 206, posts=len(tg.messages(GROUP)) + 1)
    assert second == topic
    assert len(tg.calls_for("createForumTopic")) == 1


async def test_the_topic_and_the_hand_over_survive_a_restart(
    tg: FakeTelegram, sample_kb: KnowledgeBase, tmp_path: Path
) -> None:
    tg.set_member(GROUP, MARIA, "member")
    path = tmp_path / "desk.db"
    async with (
        await ConversationLog.open(path) as log,
        running_bot(tg, sample_kb, log, operator_chat_id=GROUP),
    ):
        topic = await hand_over(tg, 207)
    async with (
        await ConversationLog.open(path) as log,
        running_bot(tg, sample_kb, log, operator_chat_id=GROUP),
    ):
        before = len(texts(tg, 207))
        tg.send_text(207, "hello again", user_id=207, chat_type="private")
        await tg.wait_for(lambda: texts(tg, GROUP)[-1] == "hello again")
        assert len(texts(tg, 207)) == before
        from_operator(tg, topic, "Back after the restart")
        await tg.wait_for(lambda: "Back after the restart" in texts(tg, 207))
        await tg.wait_idle()
        assert await operator_turns(log, 207) == ["Back after the restart"]
    assert field(tg.messages(GROUP)[-1], "message_thread_id") == topic


async def test_close_racing_a_console_resolve_asks_for_one_rating(
    start_bot: StartBot,
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The console resolves between the desk finding the hand-over and closing it: the console
    asks for the rating, the desk does not ask a second time."""
    tg.set_member(GROUP, MARIA, "member")
    looked_up = conversation_log.handover_for_topic

    async def resolved_in_the_console_meanwhile(topic: int) -> Handover | None:
        found = await looked_up(topic)
        if found is not None:
            assert await conversation_log.close_handover(found.id, operator_id="olaf")
        return found

    async with start_bot(operator_chat_id=GROUP):
        topic = await hand_over(tg, 209)
        monkeypatch.setattr(
            conversation_log, "handover_for_topic", resolved_in_the_console_meanwhile
        )
        from_operator(tg, topic, "/close")
        await tg.wait_for(lambda: any("already resolved" in t for t in texts(tg, GROUP)))
        await tg.wait_idle()
    assert not any("How did we do?" in t for t in texts(tg, 209))
    assert "How did we do?" not in " ".join(await operator_turns(conversation_log, 209))
    conversation = await conversation_log.latest_conversation_id("telegram", "209")
    assert conversation is not None
    logged = await conversation_log.get_conversation(conversation)
    assert logged is not None and logged.handovers[-1].operator_id == "olaf"
