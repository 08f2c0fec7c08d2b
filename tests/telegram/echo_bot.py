"""The ceiling for the bot's load benchmark: bare aiogram polling that echoes every text.

    TELEGRAM_BOT_TOKEN=... python -m tests.telegram.echo_bot http://127.0.0.1:PORT

Same library, same polling and one sendMessage per message as the real bot, no engine.
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message


async def echo(message: Message) -> None:
    await message.answer(message.text or "?")


async def run(base_url: str, token: str) -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(base_url))
    bot = Bot(token, session=session)
    dp = Dispatcher()
    dp.message.register(echo)
    await dp.start_polling(bot, handle_signals=True)


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], os.environ["TELEGRAM_BOT_TOKEN"]))
