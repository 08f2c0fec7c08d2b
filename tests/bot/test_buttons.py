"""Buttons under hostile presses, end to end through the fake Bot API: only the customer an
answer was for may rate it, every press is answered once, forged and stale data get a short
notice, and double taps change nothing twice."""

from __future__ import annotations

import pytest

from bot.keyboards import ButtonSeal, Choice
from engine.log import ConversationLog
from tests.bot.conftest import StartBot
from tests.bot.hostile import apologies, press, refused_calls, tracebacks
from tests.bot.test_chat import RETURN_WINDOW, answer_id, answered, buttons, text_of
from tests.telegram.fake_api import FakeTelegram


async def test_only_the_customer_an_answer_was_for_can_rate_it(
    start_bot: StartBot,
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = -2001
    async with start_bot():
        tg.send_text(group, f"@support_test_bot {RETURN_WINDOW}", user_id=5)
        answer = (await answered(tg, group))[-1]
        up, down = (b["callback_data"] for b in buttons(answer))
        # Another member of the group presses 👎 on the answer to customer 5.
        other = tg.press_button(group, answer_id(answer), down, user_id=6)
        # A customer copies the data into a press on the bot's message in their own chat.
        tg.send_text(7, "How do I return an item?")
        own = (await answered(tg, 7))[-1]
        forged = press(tg, own, down, user_id=7, query_id="forged-1")
        await tg.wait_for(lambda: all(tg.callback_answer(q) for q in (other, forged)))
        await tg.wait_idle()
        conversation = await conversation_log.latest_conversation_id("telegram", "5")
        assert conversation is not None
        assert (await conversation_log.recent_turns(conversation))[-1].feedback is None
        owner = tg.press_button(group, answer_id(answer), up, user_id=5)
        await tg.wait_for(lambda: tg.callback_answer(owner) is not None)
        await tg.wait_idle()
    for query in (other, forged):
        notice = tg.callback_answer(query)
        assert notice is not None and "Only the person" in notice["text"]
    thanks = {"callback_query_id": owner, "text": "Thanks for your feedback!"}
    assert tg.callback_answer(owner) == thanks
    assert (await conversation_log.recent_turns(conversation))[-1].feedback == 1
    assert [b["text"] for b in buttons(tg.messages(group)[-1])] == ["👍 ✓", "👎"]
    seven = await conversation_log.latest_conversation_id("telegram", "7")
    assert seven is not None
    assert all(t.feedback is None for t in await conversation_log.recent_turns(seven))
    assert not refused_calls(tg) and not tracebacks(caplog)


async def test_forged_and_stale_presses_each_get_a_short_notice_and_change_nothing(
    start_bot: StartBot,
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = 131
    async with start_bot():
        tg.send_text(chat, "How do I return an item?")
        await answered(tg, chat)
        tg.send_text(chat, "and how long does that take?")
        clarify = (await answered(tg, chat, count=2))[-1]
        assert "Which of these do you mean?" in text_of(clarify)
        conversation = await conversation_log.latest_conversation_id("telegram", str(chat))
        assert conversation is not None
        before = await conversation_log.recent_turns(conversation, 20)
        clarify_turn, customer_turn = before[-1].id, before[-2].id
        # Sealed with the bot's own key: data a client cannot make, for cases only a leaked key
        # or a bug would reach.
        seal = ButtonSeal.of(tg.token, chat, str(chat))
        cases = {
            "not callback data of ours": "vote:abc",
            "a made-up seal": f"vote:{clarify_turn}:-1:AAAAAAAAAAAAAAAAAAAAAA",
            "a vote on the customer's own turn": seal.vote(customer_turn, -1).pack(),
            "a vote on a turn that does not exist": seal.vote(10**9, 1).pack(),
            "an option never offered": seal.choice(clarify_turn, 9).pack(),
            "a choice with a forged seal": Choice(turn=clarify_turn, number=1, seal="x").pack(),
            "unknown kind": "order:42",
            "no data": None,
        }
        queries = {
            name: press(tg, clarify, data, chat, f"query-{n}")
            for n, (name, data) in enumerate(cases.items())
        }
        await tg.wait_for(lambda: all(tg.callback_answer(q) for q in queries.values()))
        await tg.wait_idle()
        after = await conversation_log.recent_turns(conversation, 20)
    for name, query in queries.items():
        notice = tg.callback_answer(query)
        assert notice is not None and 10 < len(notice.get("text", "")) <= 200, name
    assert [t.id for t in after] == [t.id for t in before]
    assert all(t.feedback is None for t in after)
    assert len(tg.messages(chat)) == 2
    assert not apologies(tg, chat)
    assert not refused_calls(tg) and not tracebacks(caplog)


async def test_a_stale_option_is_refused_once_the_conversation_moved_on(
    start_bot: StartBot,
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = 133
    async with start_bot():
        tg.send_text(chat, "How do I return an item?")
        await answered(tg, chat)
        tg.send_text(chat, "and how long does that take?")
        clarify = (await answered(tg, chat, count=2))[-1]
        tg.send_text(chat, "How long is the warranty on your products?")
        await answered(tg, chat, count=3)
        first = buttons(clarify)[0]["callback_data"]
        stale = tg.press_button(chat, answer_id(clarify), first)
        await tg.wait_for(lambda: tg.callback_answer(stale) is not None)
        await tg.wait_idle()
    notice = tg.callback_answer(stale)
    assert notice is not None and "no longer open" in notice["text"]
    assert len(tg.messages(chat)) == 3
    assert not refused_calls(tg) and not tracebacks(caplog)


async def test_double_taps_on_a_vote_and_on_delete_my_data_are_harmless(
    start_bot: StartBot,
    tg: FakeTelegram,
    conversation_log: ConversationLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = 132
    async with start_bot():
        tg.send_text(chat, RETURN_WINDOW)
        answer = (await answered(tg, chat))[-1]
        up = buttons(answer)[0]["callback_data"]
        taps = [tg.press_button(chat, answer_id(answer), up) for _ in range(2)]
        await tg.wait_for(lambda: all(tg.callback_answer(q) for q in taps))
        tg.send_text(chat, "/forget")
        await tg.wait_for(lambda: len(tg.messages(chat)) >= 2)
        confirm = tg.messages(chat)[-1]
        delete = buttons(confirm)[0]["callback_data"]
        taps += [tg.press_button(chat, answer_id(confirm), delete) for _ in range(2)]
        await tg.wait_for(lambda: all(tg.callback_answer(q) for q in taps))
        await tg.wait_idle()
    assert len(tg.calls_for("answerCallbackQuery")) == 4
    assert len(tg.calls_for("editMessageReplyMarkup")) == 1
    assert len(tg.calls_for("editMessageText")) == 1
    assert "has been deleted" in text_of(tg.messages(chat)[-1])
    assert await conversation_log.latest_conversation_id("telegram", str(chat)) is None
    assert not apologies(tg, chat)
    assert not refused_calls(tg) and not tracebacks(caplog)
