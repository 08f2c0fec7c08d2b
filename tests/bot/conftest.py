"""The real bot and engine against the fake Bot API: sample knowledge base, SQLite log on disk."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher

from bot import build_dispatcher, make_bot
from engine import Engine
from engine.generators import ExtractiveGenerator, GenerationRequest
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from engine.settings import BotConfig
from retrieval import KnowledgeBase
from tests.telegram.fake_api import FakeTelegram


class SlowGenerator:
    """The extractive answer, a few words at a time with pauses, so streaming shows."""

    def __init__(self, pause_s: float = 0.05, words: int = 4) -> None:
        self._inner = ExtractiveGenerator()
        self._pause_s = pause_s
        self._words = words

    @property
    def name(self) -> str:
        return "slow-extractive"

    async def stream(self, request: GenerationRequest) -> AsyncIterator[str]:
        count = 0
        async for piece in self._inner.stream(request):
            yield piece
            count += 1
            if count % self._words == 0:
                await asyncio.sleep(self._pause_s)


@dataclass
class Harness:
    """A running bot: the fake Telegram it talks to, its engine and log."""

    tg: FakeTelegram
    bot: Bot
    dp: Dispatcher
    engine: Engine
    log: ConversationLog


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def conversation_log(tmp_path: Path) -> AsyncIterator[ConversationLog]:
    log = await ConversationLog.open(tmp_path / "conversations.db")
    yield log
    await log.close()


@contextlib.asynccontextmanager
async def running_bot(
    tg: FakeTelegram,
    kb: KnowledgeBase,
    conversation_log: ConversationLog,
    *,
    generator: Any = None,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """Poll the fake with the real dispatcher until the block ends, then stop like on SIGTERM."""
    config = dataclasses.replace(
        BotConfig(api_base_url=tg.base_url, stream_interval_s=0.2, shutdown_grace_s=5.0),
        **overrides,
    )
    engine = Engine(kb, generator or ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    bot = make_bot(tg.token, config)
    dp = build_dispatcher(engine, config)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        yield Harness(tg, bot, dp, engine, conversation_log)
    finally:
        await dp.stop_polling()
        await polling


@pytest.fixture
def start_bot(
    tg: FakeTelegram, sample_kb: KnowledgeBase, conversation_log: ConversationLog
) -> Callable[..., contextlib.AbstractAsyncContextManager[Harness]]:
    def start(**overrides: Any) -> contextlib.AbstractAsyncContextManager[Harness]:
        return running_bot(tg, sample_kb, conversation_log, **overrides)

    return start


StartBot = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]
