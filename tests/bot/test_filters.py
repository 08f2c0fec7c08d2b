"""No handler or filter of the bot's routers runs in a worker thread."""

from __future__ import annotations

from aiogram.dispatcher.event.handler import CallableObject

from bot import build_dispatcher
from engine import Engine
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from engine.settings import BotConfig
from retrieval import KnowledgeBase


async def test_every_handler_and_filter_is_a_coroutine(
    sample_kb: KnowledgeBase, conversation_log: ConversationLog
) -> None:
    # aiogram runs a plain function handler or filter (an `F` magic filter too) through
    # asyncio.to_thread: a thread hop for every message it looks at.
    engine = Engine(sample_kb, ExtractiveGenerator(), LexiconSentiment(), conversation_log)
    dp = build_dispatcher(engine, BotConfig(operator_chat_id=-1001))
    checked: list[tuple[str, str, CallableObject]] = []
    for router in dp.chain_tail:
        for name, observer in router.observers.items():
            for handler in [observer._handler, *observer.handlers]:
                checked += [(router.name, name, f) for f in handler.filters or []]
                if handler is not observer._handler:
                    checked.append((router.name, name, handler))
    assert {router for router, _, _ in checked} >= {"operator", "customer"}
    sync = [(router, name, c.callback) for router, name, c in checked if not c.awaitable]
    assert sync == []
