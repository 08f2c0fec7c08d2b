"""End to end: the real bot and engine answer customers through the fake Bot API over HTTP."""

from __future__ import annotations

from typing import Any

from engine.log import ConversationLog
from tests.bot.conftest import SlowGenerator, StartBot
from tests.telegram.fake_api import FakeTelegram

RETURN_WINDOW = "How long do I have to return an item?"


def text_of(message: Any) -> str:
    return str(message["text"] if isinstance(message, dict) else message.text)


def markup_of(message: Any) -> Any:
    return message.get("reply_markup") if isinstance(message, dict) else message.reply_markup


def buttons(message: Any) -> list[dict[str, str]]:
    markup = markup_of(message) or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


async def answered(tg: FakeTelegram, chat_id: int, count: int = 1) -> list[Any]:
    """The chat's bot messages once `count` of them carry buttons or the chat went idle."""
    await tg.wait_for(lambda: sum(bool(buttons(m)) for m in tg.messages(chat_id)) >= count)
    await tg.wait_idle()
    return tg.messages(chat_id)


async def test_a_question_is_answered_with_its_source_and_feedback_buttons_and_logged(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    async with start_bot():
        tg.send_text(101, RETURN_WINDOW)
        messages = await answered(tg, 101)
    answer = messages[-1]
    assert "30 days" in text_of(answer)
    assert "Source: How long do I have to return an item?" in text_of(answer)
    assert [b["text"] for b in buttons(answer)] == ["👍", "👎"]
    conversation_id = await conversation_log.latest_conversation_id("telegram", "101")
    assert conversation_id is not None
    turns = await conversation_log.recent_turns(conversation_id)
    assert [t.role for t in turns] == ["customer", "bot"]
    assert turns[0].text == RETURN_WINDOW and turns[1].action == "answer"


async def test_answers_stream_as_drafts_then_one_final_message(
    start_bot: StartBot, tg: FakeTelegram
) -> None:
    async with start_bot(generator=SlowGenerator(), stream_interval_s=0.05):
        tg.send_text(102, RETURN_WINDOW)
        messages = await answered(tg, 102)
    drafts = [c for c in tg.calls_for("sendMessageDraft")]
    assert len(drafts) >= 2
    assert len(messages) == 1 and "31 January" in text_of(messages[0])


async def test_a_slow_reply_shows_typing_until_its_answer_is_sent(
    start_bot: StartBot, tg: FakeTelegram
) -> None:
    # About 30 words, a pause of 0.2 s every 4: well past the half second typing waits for.
    async with start_bot(generator=SlowGenerator(pause_s=0.2)):
        tg.send_text(106, RETURN_WINDOW)
        await answered(tg, 106)
    methods = [c.method for c in tg.calls if c.get("chat_id") == 106]
    assert "sendChatAction" in methods
    assert methods[-1] == "sendMessage"  # nothing more, so no typing outlasts the answer
    assert all(c["action"] == "typing" for c in tg.calls_for("sendChatAction"))


async def test_without_drafts_one_message_is_edited_until_complete(
    start_bot: StartBot, tg: FakeTelegram
) -> None:
    async with start_bot(generator=SlowGenerator(), stream_interval_s=0.05, drafts=False):
        tg.send_text(103, RETURN_WINDOW)
        messages = await answered(tg, 103)
    assert not tg.calls_for("sendMessageDraft")
    assert len(tg.calls_for("editMessageText")) >= 2
    assert len(messages) == 1
    final = text_of(messages[0])
    assert final.startswith("You can return most items") and "not the order date" in final


async def test_feedback_press_is_stored_in_the_log(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    async with start_bot():
        tg.send_text(104, RETURN_WINDOW)
        answer = (await answered(tg, 104))[-1]
        down = next(b for b in buttons(answer) if b["text"] == "👎")
        tg.press_button(104, answer_id(answer), down["callback_data"])
        await tg.wait_for("answerCallbackQuery")
        await tg.wait_idle()
    conversation_id = await conversation_log.latest_conversation_id("telegram", "104")
    assert conversation_id is not None
    bot_turn = (await conversation_log.recent_turns(conversation_id))[-1]
    assert bot_turn.feedback == -1


def answer_id(message: Any) -> int:
    return int(message["message_id"] if isinstance(message, dict) else message.message_id)


async def test_a_clarifying_question_offers_its_options_as_buttons(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    async with start_bot():
        tg.send_text(105, "How do I return an item?")
        await answered(tg, 105)
        tg.send_text(105, "and how long does that take?")
        question = (await answered(tg, 105, count=2))[-1]
        options = buttons(question)
        assert "Which of these do you mean?" in text_of(question)
        assert len(options) >= 2 and options[0]["text"].startswith("1. ")
        tg.press_button(105, answer_id(question), options[1]["callback_data"])
        await tg.wait_for(lambda: len(tg.messages(105)) >= 3)
        await tg.wait_idle()
    conversation_id = await conversation_log.latest_conversation_id("telegram", "105")
    assert conversation_id is not None
    turns = await conversation_log.recent_turns(conversation_id)
    assert turns[-2].role == "customer" and turns[-2].text == "2"


async def test_human_hands_over_and_records_it(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    async with start_bot():
        tg.send_text(106, "/human")
        await tg.wait_for(lambda: len(tg.messages(106)) >= 2)
        await tg.wait_idle()
    texts = [text_of(m) for m in tg.messages(106)]
    assert "passing you to a colleague" in texts[0]
    assert "follow up" in texts[1]
    conversation_id = await conversation_log.latest_conversation_id("telegram", "106")
    assert conversation_id is not None
    handover = await conversation_log.open_handover_for(conversation_id)
    assert handover is not None and handover.reason == "human_requested"


async def test_forget_erases_the_customer_after_confirmation(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    async with start_bot():
        tg.send_text(107, RETURN_WINDOW)
        await answered(tg, 107)
        tg.send_text(107, "/forget")
        await tg.wait_for(lambda: len(tg.messages(107)) >= 2)
        confirm = tg.messages(107)[-1]
        delete = buttons(confirm)[0]
        assert delete["text"] == "Delete my data"
        tg.press_button(107, answer_id(confirm), delete["callback_data"])
        await tg.wait_for(lambda: "deleted" in text_of(tg.messages(107)[-1]))
        await tg.wait_idle()
    assert await conversation_log.latest_conversation_id("telegram", "107") is None


async def test_a_429_storm_delays_replies_but_loses_none(
    start_bot: StartBot, tg: FakeTelegram
) -> None:
    tg.rate_limit(108, retry_after=1, times=3)
    async with start_bot():
        tg.send_text(108, RETURN_WINDOW)
        tg.send_text(108, "How do I return an item?")
        messages = await answered(tg, 108, count=2)
    assert "30 days" in text_of(messages[0])
    assert "Return items" in text_of(messages[1])


async def test_non_text_and_edited_messages_get_a_helpful_reply(
    start_bot: StartBot, tg: FakeTelegram
) -> None:
    async with start_bot(max_message_chars=200):
        tg.send_sticker(109)
        await tg.wait_for(lambda: len(tg.messages(109)) >= 1)
        tg.send_text(109, "word " * 100)
        await tg.wait_for(lambda: len(tg.messages(109)) >= 2)
        await tg.wait_idle()
    texts = [text_of(m) for m in tg.messages(109)]
    assert "only read text" in texts[0]
    assert "too long" in texts[1]


async def test_one_chat_is_answered_in_order(start_bot: StartBot, tg: FakeTelegram) -> None:
    questions = [
        RETURN_WINDOW,
        "How do I return an item?",
        "How long is the warranty on your products?",
        "How do I make a warranty claim?",
    ]
    async with start_bot(generator=SlowGenerator(pause_s=0.01)):
        for question in questions:
            tg.send_text(110, question)
        messages = await answered(tg, 110, count=len(questions))
    texts = [text_of(m) for m in messages]
    assert len(texts) == 4
    assert "30 days" in texts[0]
    assert "Return items" in texts[1]
    assert "2-year warranty" in texts[2]
    assert "Warranty claim" in texts[3]


async def test_a_flood_gets_one_notice_and_other_chats_are_unaffected(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    # A window far longer than the test, however slow a loaded machine makes the replies.
    async with start_bot(flood_messages=3, flood_window_s=600.0):
        for _ in range(8):
            tg.send_text(111, RETURN_WINDOW)
        tg.send_text(112, RETURN_WINDOW)
        await answered(tg, 112)
        await tg.wait_for(lambda: sum(bool(buttons(m)) for m in tg.messages(111)) >= 3)
        await tg.wait_idle()
    texts = [text_of(m) for m in tg.messages(111)]
    assert sum("faster than I can answer" in t for t in texts) == 1
    assert sum("30 days" in t for t in texts) == 3
    conversation_id = await conversation_log.latest_conversation_id("telegram", "111")
    assert conversation_id is not None
    assert len(await conversation_log.recent_turns(conversation_id, 100)) == 6


async def test_in_groups_only_mentions_and_replies_are_answered(
    start_bot: StartBot, tg: FakeTelegram
) -> None:
    group = -1001
    async with start_bot() as harness:
        me = await harness.bot.me()
        tg.send_text(group, RETURN_WINDOW, user_id=5, chat_type="supergroup")
        await tg.wait_idle(quiet=0.5)  # handed out, and nothing sent for half a second
        assert not tg.messages(group)
        mention = f"@{me.username}"
        tg.send_text(
            group,
            f"{mention} {RETURN_WINDOW}",
            user_id=5,
            chat_type="supergroup",
            entities=[{"type": "mention", "offset": 0, "length": len(mention)}],
        )
        messages = await answered(tg, group)
    assert len(messages) == 1 and "30 days" in text_of(messages[0])
    assert not tg.calls_for("sendMessageDraft")
