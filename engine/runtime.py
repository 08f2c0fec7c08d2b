"""Assemble a running engine from the settings: embedder, knowledge base, models, log."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from engine.engine import Engine
from engine.generators import load_generator
from engine.log import ConversationLog
from engine.sentiment import load_sentiment
from engine.settings import Settings
from retrieval import KnowledgeBase, load_embedder

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def open_engine(settings: Settings) -> AsyncIterator[Engine]:
    """An engine over the configured knowledge base; the log is drained and closed on exit.

    Raises `retrieval.IndexMissing` when nothing was imported yet.
    """
    config = settings.retrieval
    embedder = load_embedder(config.embedder, batch_size=config.batch_size)
    kb = KnowledgeBase(config.kb_dir, embedder, config)
    generator = load_generator(settings.generator)
    sentiment = load_sentiment(settings.sentiment)
    conversation_log = await ConversationLog.open(config=settings.log)
    try:
        yield Engine(kb, generator, sentiment, conversation_log, settings.engine_config)
    finally:
        await conversation_log.close()
