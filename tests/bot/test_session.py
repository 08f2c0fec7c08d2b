"""Bot API requests as JSON bodies (bot.session), files still as multipart form, on the fake."""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import BanChatMember, SendDocument, SendMessage
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from bot import make_bot
from engine.settings import BotConfig
from tests.telegram.fake_api import FakeTelegram

KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="👍", callback_data="fb:1:up")]]
)


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    bot = make_bot(tg.token, BotConfig(api_base_url=tg.base_url))
    yield bot
    await bot.session.close()


def test_a_request_without_files_is_one_json_object_with_typed_values(bot: Bot) -> None:
    session = bot.session
    assert hasattr(session, "build_json")
    method = SendMessage(chat_id=5, text="<b>Hi</b>", reply_markup=KEYBOARD, message_thread_id=None)
    body = json.loads(session.build_json(bot, method))
    # The bot's default parse mode filled in; None left out, as the form leaves it out.
    assert body == {
        "chat_id": 5,
        "text": "<b>Hi</b>",
        "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": [[{"text": "👍", "callback_data": "fb:1:up"}]]},
    }
    until = datetime.datetime(2030, 1, 2, tzinfo=datetime.UTC)
    ban = BanChatMember(chat_id=-1001, user_id=7, until_date=until, revoke_messages=False)
    assert json.loads(session.build_json(bot, ban)) == {
        "chat_id": -1001,
        "user_id": 7,
        "until_date": int(until.timestamp()),
        "revoke_messages": False,
    }
    upload = SendDocument(chat_id=5, document=BufferedInputFile(b"x", "a.txt"))
    assert session.build_json(bot, upload) is None


async def test_json_requests_and_a_file_upload_reach_the_fake_as_sent(
    tg: FakeTelegram, bot: Bot
) -> None:
    sent = await bot.send_message(41, "<b>Was</b> this helpful?", reply_markup=KEYBOARD)
    assert sent.text == "Was this helpful?"
    [call] = tg.calls_for("sendMessage")
    assert call.params["chat_id"] == 41
    assert call.params["reply_markup"] == KEYBOARD.model_dump(exclude_none=True)
    query_id = tg.press_button(41, sent.message_id, "fb:1:up")
    assert await bot.answer_callback_query(query_id, text="Thanks")
    assert tg.callback_answer(query_id) == {"callback_query_id": query_id, "text": "Thanks"}
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(41, "")

    data = b"order,total\n1,9.99\n"
    document = await bot.send_document(41, BufferedInputFile(data, "orders.csv"), caption="Yours")
    assert document.document is not None and document.document.file_name == "orders.csv"
    [upload] = tg.calls_for("sendDocument")
    assert (upload.files["document"].file_name, upload.files["document"].data) == (
        "orders.csv",
        data,
    )
