"""The operator desk takes hand-overs of other channels (the web chat) through the log."""

from __future__ import annotations

from engine.log import ConversationLog
from tests.bot.conftest import StartBot
from tests.bot.test_operator import GROUP, MARIA, field, texts
from tests.telegram.fake_api import FakeTelegram


async def test_a_web_hand_over_gets_a_topic_and_the_operator_reply_is_logged(
    start_bot: StartBot, tg: FakeTelegram, conversation_log: ConversationLog
) -> None:
    tg.set_member(GROUP, MARIA, "member")
    conversation = await conversation_log.start_conversation("web", "site:visitor-1")
    await conversation_log.add_turn(conversation, "customer", "Where is my parcel?")
    await conversation_log.open_handover(conversation, "human_requested")
    async with start_bot(operator_chat_id=GROUP):
        await tg.wait_for("createForumTopic")
        await tg.wait_for(lambda: any("Hand-over" in t for t in texts(tg, GROUP)))
        [created] = tg.calls_for("createForumTopic")
        assert created["name"] == "web · site:visitor-1"
        post = texts(tg, GROUP)[-1]
        assert "Where is my parcel?" in post and "human_requested" in post
        topic = field(tg.messages(GROUP)[-1], "message_thread_id")

        # The customer writes again on the web: the message is posted in the topic.
        await conversation_log.add_turn(conversation, "customer", "Hello? <b>anyone</b>")
        await tg.wait_for(lambda: "Hello? <b>anyone</b>" in texts(tg, GROUP))

        sent_before = len(tg.calls_for("sendMessage"))
        tg.send_text(
            GROUP,
            "It arrives tomorrow.",
            user_id=MARIA,
            chat_type="supergroup",
            message_thread_id=topic,
        )
        await tg.wait_idle()
        turns = await conversation_log.recent_turns(conversation, 10)
        assert [t.text for t in turns if t.role == "operator"] == ["It arrives tomorrow."]
        # Nothing went to a Telegram chat: the web channel delivers from the log.
        assert len(tg.calls_for("sendMessage")) == sent_before

        tg.send_text(
            GROUP, "/close", user_id=MARIA, chat_type="supergroup", message_thread_id=topic
        )
        await tg.wait_for(lambda: any("Closed" in t for t in texts(tg, GROUP)))
        assert await conversation_log.open_handover_for(conversation) is None
    assert len(tg.calls_for("createForumTopic")) == 1
