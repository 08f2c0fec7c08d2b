"""A running fake Bot API and an aiogram Bot pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from tests.telegram.fake_api import FakeTelegram


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(webhook_retry_delay=0.05) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    """aiogram's real Bot over HTTP to the fake, HTML parse mode by default like the bot's."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    bot = Bot(tg.token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    yield bot
    await bot.session.close()
