"""The fake Bot API driven by aiogram's real Bot and Dispatcher over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from tests.ports import free_port
from tests.telegram.fake_api import FakeTelegram

SECRET = "hook-secret_1"


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=d, callback_data=d) for d in data]]
    )


async def test_get_me_answers_the_bot_user_and_a_wrong_token_is_unauthorized(
    tg: FakeTelegram, bot: Bot
) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (tg.bot_user["id"], tg.bot_user["username"], True)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}/bot1:wrong/getMe") as response:
            assert response.status == 401
            assert await response.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.post(f"{tg.base_url}/bot{tg.token}/sendMessag") as response:
            assert response.status == 404
        async with http.post(
            f"{tg.base_url}/bot{tg.token}/sendmessage", data={"chat_id": "5"}
        ) as r:
            assert r.status == 400
            assert (await r.json())["description"] == "Bad Request: message text is empty"
    assert [c.status for c in tg.calls] == [200, 401, 404, 400]


async def test_html_is_parsed_into_entities_and_broken_html_is_rejected(
    tg: FakeTelegram, bot: Bot
) -> None:
    sent = await bot.send_message(
        7, '<b>Hi</b> &amp; <a href="https://x.test/?a=1&amp;b=2">🙂 go</a>'
    )
    assert sent.text == "Hi & 🙂 go"
    assert sent.entities is not None
    assert [(e.type, e.offset, e.length, e.url) for e in sent.entities] == [
        ("bold", 0, 2, None),
        ("text_link", 5, 5, "https://x.test/?a=1&b=2"),
    ]
    for broken, reason in [
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'expected "</i>", found "</b>"'),
        ("<blink>x</blink>", 'Unsupported start tag "blink"'),
        ("1 < 2", 'Unsupported start tag ""'),
    ]:
        with pytest.raises(TelegramBadRequest, match="can't parse entities") as error:
            await bot.send_message(7, broken)
        assert reason in error.value.message
    code = await bot.send_message(7, '<pre><code class="language-python">x = 1</code></pre>')
    assert code.entities is not None
    assert [(e.type, e.language) for e in code.entities] == [("pre", "python")]
    plain = await bot.send_message(7, "1 <2 is <b>not</b> parsed", parse_mode=None)
    assert plain.text == "1 <2 is <b>not</b> parsed"
    assert [m["text"] for m in tg.messages(7)] == ["Hi & 🙂 go", "x = 1", plain.text]


async def test_text_is_limited_to_4096_utf16_units(bot: Bot) -> None:
    emoji = "😀"  # two UTF-16 units
    assert (await bot.send_message(8, emoji * 2048)).text == emoji * 2048
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(8, emoji * 2048 + "a")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(8, "<b> </b>")


async def test_edits_change_the_current_text_and_an_identical_edit_is_not_modified(
    tg: FakeTelegram, bot: Bot
) -> None:
    sent = await bot.send_message(9, "Thinking", reply_markup=keyboard("up"))
    await bot.edit_message_text("Thinking", chat_id=9, message_id=sent.message_id)  # drops keys
    edited = await bot.edit_message_text(
        "<i>Done</i>", chat_id=9, message_id=sent.message_id, reply_markup=keyboard("up", "down")
    )
    assert isinstance(edited, Message) and edited.text == "Done" and edited.edit_date
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "<i>Done</i>",
            chat_id=9,
            message_id=sent.message_id,
            reply_markup=keyboard("up", "down"),
        )
    await bot.edit_message_reply_markup(chat_id=9, message_id=sent.message_id)
    [message] = tg.messages(9)
    assert message["text"] == "Done" and "reply_markup" not in message
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=9, message_id=999)
    user_message = tg.send_text(9, "mine")
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=9, message_id=user_message["message_id"])
    assert await bot.delete_message(9, sent.message_id)
    assert tg.messages(9) == []


async def test_get_updates_confirms_by_offset_and_long_polls_for_new_ones(
    tg: FakeTelegram, bot: Bot
) -> None:
    first = tg.send_text(1, "one")
    second = tg.send_text(1, "two")
    assert second["message_id"] == first["message_id"] + 1
    updates = await bot.get_updates(limit=1)
    assert [u.message.text for u in updates if u.message] == ["one"]
    again = await bot.get_updates()
    assert [u.update_id for u in again] == [updates[0].update_id, updates[0].update_id + 1]
    assert tg.delivery_counts[updates[0].update_id] == 2  # unconfirmed updates come back
    assert await bot.get_updates(offset=again[-1].update_id + 1, timeout=0) == []
    assert tg.pending_updates() == []
    assert tg.confirmed_update_ids == [u.update_id for u in again]

    started = time.monotonic()
    waiting = asyncio.create_task(bot.get_updates(offset=again[-1].update_id + 1, timeout=5))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    tg.send_text(1, "three")
    [third] = await waiting
    assert third.message is not None and third.message.text == "three"
    assert 0.2 <= time.monotonic() - started < 2
    assert tg.delivered_update_ids == [u.update_id for u in again] + [third.update_id]

    started = time.monotonic()
    assert await bot.get_updates(offset=third.update_id + 1, timeout=1) == []
    assert time.monotonic() - started >= 0.9


async def test_user_media_edits_and_allowed_updates_parse_as_aiogram_updates(
    tg: FakeTelegram, bot: Bot
) -> None:
    text = tg.send_text(-1005, "hi @support_test_bot /help", user_id=77, first_name="Li")
    tg.send_photo(6, caption="receipt")
    tg.send_sticker(6)
    tg.send_voice(6, duration=4)
    tg.send_document(6, file_name="label.pdf")
    tg.edit_text(-1005, text["message_id"], "hi again")
    updates = await bot.get_updates()
    messages = [u.message for u in updates if u.message]
    assert messages[0].chat.type == "supergroup" and messages[0].from_user is not None
    assert messages[0].from_user.id == 77
    assert [e.type for e in messages[0].entities or []] == ["mention", "bot_command"]
    assert messages[1].photo and messages[1].caption == "receipt"
    assert messages[2].sticker and messages[3].voice and messages[3].voice.duration == 4
    assert messages[4].document and messages[4].document.file_name == "label.pdf"
    [edited] = [u.edited_message for u in updates if u.edited_message]
    assert edited.text == "hi again" and edited.edit_date
    voice = await bot.get_file(messages[3].voice.file_id)
    assert voice.file_size == len(tg.files[voice.file_id].data)

    sent = await bot.send_message(6, "rate me", reply_markup=keyboard("up"))
    tg.send_text(6, "ignored")
    tg.press_button(6, sent.message_id, "up")
    [callback] = await bot.get_updates(
        offset=updates[-1].update_id + 1, allowed_updates=["callback_query"]
    )
    assert callback.callback_query is not None and callback.callback_query.message is not None
    assert [u["update_id"] for u in tg.pending_updates()] == [callback.update_id]
    assert tg.confirmed_update_ids[-1] == callback.update_id - 1  # the unwanted message


async def test_a_newer_get_updates_ends_the_older_with_a_conflict(bot: Bot) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    assert await bot.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await older


async def test_a_polling_dispatcher_echoes_a_message(tg: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        tg.send_text(42, "hello")
        call = await tg.wait_for("sendMessage")
        await tg.wait_idle(quiet=0.1)
    finally:
        await dp.stop_polling()
        await polling
    assert call["chat_id"] == 42
    assert [m["text"] for m in tg.messages(42)] == ["echo: hello"]


async def test_an_abandoned_long_poll_hands_nothing_out(tg: FakeTelegram, bot: Bot) -> None:
    abandoned = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    update = tg.send_text(2, "sent while the bot was down")
    await asyncio.sleep(0.1)
    assert tg.delivered_update_ids == []
    [again] = await bot.get_updates()
    assert again.message is not None and again.message.message_id == update["message_id"]
    assert tg.delivery_counts[again.update_id] == 1


@pytest.fixture
async def webhook_app() -> AsyncIterator[tuple[str, list[tuple[str | None, dict[str, object]]]]]:
    """A small webhook receiver that fails its first request with 500."""
    received: list[tuple[str | None, dict[str, object]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.json_response({}, status=500 if len(received) == 1 else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/hook", received
    await runner.cleanup()


async def test_webhook_delivers_with_the_secret_and_retries_failures(
    tg: FakeTelegram,
    bot: Bot,
    webhook_app: tuple[str, list[tuple[str | None, dict[str, object]]]],
) -> None:
    url, received = webhook_app
    assert await bot.set_webhook(url, secret_token=SECRET)
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()
    update = tg.send_text(3, "via webhook")
    await tg.wait_for(lambda: len(received) >= 2)
    await tg.wait_idle(quiet=0.1)
    assert [secret for secret, _ in received] == [SECRET, SECRET]
    assert received[0][1] == received[1][1]
    assert received[1][1]["message"] == update
    assert [status for _, status in tg.webhook_attempts] == [500, 200]
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == (url, 0)
    assert info.last_error_message == "Wrong response from the webhook: 500"

    assert await bot.delete_webhook()
    tg.send_text(3, "via polling")
    [polled] = await bot.get_updates()
    assert polled.message is not None and polled.message.text == "via polling"
    assert len(received) == 2


async def test_aiogram_webhook_checks_the_secret_and_replies_in_the_webhook_answer(
    tg: FakeTelegram, bot: Bot
) -> None:
    dp = Dispatcher()

    @dp.message()
    async def reply(message: Message) -> SendMessage:
        return message.answer(f"<b>got</b> {message.text}")

    app = web.Application()
    handler = SimpleRequestHandler(dp, bot, handle_in_background=False, secret_token=SECRET)
    handler.register(app, path="/telegram")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/telegram", secret_token="wrong-secret")
        tg.send_text(5, "first")
        await tg.wait_for(lambda: len(tg.webhook_attempts) >= 2)
        assert {status for _, status in tg.webhook_attempts} == {401}
        await bot.set_webhook(f"http://127.0.0.1:{port}/telegram", secret_token=SECRET)
        call = await tg.wait_for("sendMessage")
        await tg.wait_idle(quiet=0.1)
    finally:
        await bot.delete_webhook()
        await runner.cleanup()
    assert call["chat_id"] == 5
    assert [m["text"] for m in tg.messages(5)] == ["got first"]
    assert tg.webhook_attempts[-1][1] == 200 and tg.pending_updates() == []


async def test_rate_limits_answer_429_that_aiogram_raises_as_retry_after(
    tg: FakeTelegram, bot: Bot
) -> None:
    tg.rate_limit(11, retry_after=3, times=1)
    with pytest.raises(TelegramRetryAfter) as error:
        await bot.send_message(11, "first")
    assert error.value.retry_after == 3
    await bot.send_message(11, "second")
    await bot.send_message(12, "elsewhere")

    tg.flood_limit(per_chat_per_second=2)
    await bot.send_message(13, "a")
    await bot.send_message(13, "b")
    with pytest.raises(TelegramRetryAfter) as flood:
        await bot.send_message(13, "c")
    assert flood.value.retry_after == 1
    await bot.send_message(14, "another chat is fine")
    assert tg.too_many_requests == 2
    assert [c.status for c in tg.calls_for("sendMessage")] == [429, 200, 200, 200, 200, 429, 200]


async def test_forum_topics_carry_thread_ids(tg: FakeTelegram, bot: Bot) -> None:
    group = -1001234
    topic = await bot.create_forum_topic(group, "Customer 77")
    posted = await bot.send_message(group, "transcript", message_thread_id=topic.message_thread_id)
    assert (posted.message_thread_id, posted.is_topic_message) == (topic.message_thread_id, True)
    await bot.send_message(group, "in General")
    assert [m["text"] for m in tg.messages(group, topic.message_thread_id)] == ["transcript"]
    assert len(tg.messages(group)) == 2  # the topic's service message is not the bot's text

    reply = tg.send_text(
        group, "operator here", user_id=900, message_thread_id=topic.message_thread_id
    )
    assert reply["is_topic_message"] and reply["chat"]["is_forum"]
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(group, "lost", message_thread_id=topic.message_thread_id + 100)
    assert await bot.close_forum_topic(group, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(group, topic.message_thread_id)
    assert await bot.reopen_forum_topic(group, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="not a forum"):
        await bot.create_forum_topic(-5, "plain group")


async def test_send_document_uploads_multipart_and_files_round_trip(
    tg: FakeTelegram, bot: Bot
) -> None:
    data = b"order,total\n1,9.99\n"
    sent = await bot.send_document(
        21, BufferedInputFile(data, "orders.csv"), caption="<b>Your</b> orders"
    )
    assert sent.document is not None and sent.document.file_name == "orders.csv"
    assert sent.caption == "Your orders"
    [call] = tg.calls_for("sendDocument")
    assert (call.files["document"].file_name, call.files["document"].data) == ("orders.csv", data)
    again = await bot.send_document(22, sent.document.file_id)
    assert again.document is not None and again.document.file_id == sent.document.file_id
    file = await bot.get_file(sent.document.file_id)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == data
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(22, "no-such-file-id")

    form = aiohttp.FormData()
    form.add_field("chat_id", "23")
    form.add_field("document", b"%PDF-1.4", filename="direct.pdf", content_type="application/pdf")
    url = f"{tg.base_url}/bot{tg.token}/sendDocument"
    async with aiohttp.ClientSession() as http, http.post(url, data=form) as response:
        body = await response.json()
    assert body["ok"] and body["result"]["document"]["file_name"] == "direct.pdf"
    stored = tg.calls_for("sendDocument")[-1].files["document"]
    assert (stored.data, stored.mime_type) == (b"%PDF-1.4", "application/pdf")


async def test_user_media_can_be_copied_into_a_topic(tg: FakeTelegram, bot: Bot) -> None:
    photo = tg.send_photo(31, caption="broken box")
    group = -1009
    topic = await bot.create_forum_topic(group, "Customer 31")
    copied = await bot.copy_message(
        group, 31, photo["message_id"], message_thread_id=topic.message_thread_id
    )
    [message] = tg.messages(group, topic.message_thread_id)
    assert message["message_id"] == copied.message_id
    assert message["caption"] == "broken box" and message["photo"] == photo["photo"]
    forwarded = await bot.forward_message(group, 31, photo["message_id"])
    assert forwarded.forward_origin is not None
    with pytest.raises(TelegramBadRequest, match="message to copy not found"):
        await bot.copy_message(group, 31, 999)


async def test_commands_members_callbacks_actions_and_drafts(tg: FakeTelegram, bot: Bot) -> None:
    commands = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    assert await bot.set_my_commands(commands)
    assert [(c.command, c.description) for c in await bot.get_my_commands()] == [
        ("start", "Start"),
        ("help", "Help"),
    ]
    assert await bot.get_my_commands(language_code="zh") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])
    assert tg.calls_for("setMyCommands", ok=True)[0]["commands"][0] == {
        "command": "start",
        "description": "Start",
    }

    tg.set_member(-1001, 900, "administrator")
    assert (await bot.get_chat_member(-1001, 900)).status == "administrator"
    assert (await bot.get_chat_member(-1001, 901)).status == "left"

    sent = await bot.send_message(
        41, "Was this helpful?", reply_markup=keyboard("fb:up", "fb:down")
    )
    with pytest.raises(ValueError, match="no button"):
        tg.press_button(41, sent.message_id, "fb:maybe")
    query_id = tg.press_button(41, sent.message_id, "fb:down")
    [update] = await bot.get_updates()
    assert update.callback_query is not None and update.callback_query.data == "fb:down"
    assert await bot.answer_callback_query(query_id, text="Thanks")
    assert tg.callback_answer(query_id) == {"callback_query_id": query_id, "text": "Thanks"}
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)

    assert await bot.send_chat_action(41, "typing")
    with pytest.raises(TelegramBadRequest, match="action"):
        await bot.send_chat_action(41, "dancing")
    assert await bot.send_message_draft(41, draft_id=1, text="<b>Partial</b> ans")
    with pytest.raises(TelegramBadRequest, match="private chats"):
        await bot.send_message_draft(-1001, draft_id=1, text="no")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message_draft(41, draft_id=1, text="<b>Partial")
    assert [c["text"] for c in tg.calls_for("sendMessageDraft", ok=True)] == ["<b>Partial</b> ans"]
    assert len(tg.messages(41)) == 1  # drafts are not messages


async def test_a_user_who_blocked_the_bot_answers_403_until_they_write_again(
    tg: FakeTelegram, bot: Bot
) -> None:
    tg.send_text(31, "hello")
    tg.block(31)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(31, "anyone there?")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_chat_action(31, "typing")
    tg.send_text(31, "back again")
    assert (await bot.send_message(31, "welcome back")).text == "welcome back"


async def test_chats_speak_with_a_placeholder_sender_and_any_queued_press_is_answerable_once(
    tg: FakeTelegram, bot: Bot
) -> None:
    tg.add_chat(-1005, "channel", title="News")
    post = tg.send_text(-6, "from the channel", sender_chat_id=-1005)
    admin = tg.send_text(-6, "from an admin", sender_chat_id=-6, author_signature="Ann")
    assert (post["from"]["id"], post["sender_chat"]["type"]) == (777000, "channel")
    assert (admin["from"]["username"], admin["author_signature"]) == ("GroupAnonymousBot", "Ann")
    sent = await bot.send_message(7, "hi")
    query = {
        "id": "made-up",
        "from": {"id": 7, "is_bot": False, "first_name": "A"},
        "chat_instance": "1",
        "data": "anything",
        "message": sent.model_dump(mode="json"),
    }
    tg.add_update({"callback_query": query})
    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.answer_callback_query("made-up", text="x" * 201)
    assert await bot.answer_callback_query("made-up", text="x" * 200)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("made-up")
