"""Assemble a running engine from the settings: embedder, knowledge base, models, log."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

from engine.engine import Engine
from engine.generators import load_generator
from engine.heap import release_frozen
from engine.log import open_store
from engine.pickup import ModelPickup, registry_embedders
from engine.sentiment import load_sentiment
from engine.settings import Settings
from retrieval import KnowledgeBase
from retrieval.embedders import configured_embedder, serving_threads

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def open_engine(settings: Settings) -> AsyncIterator[Engine]:
    """An engine over the configured knowledge base; the log is drained and closed on exit.

    Models promoted by retraining under `[training] models_dir` are used from the start and
    picked up while running. Raises `retrieval.IndexMissing` when nothing was imported yet.
    """
    config = settings.retrieval
    # Serving: threads 0 leaves a CPU to the event loop, for every embedder this engine loads.
    config = replace(config, threads=serving_threads(config.threads))
    log.info("query encoder threads=%d", config.threads)
    models_dir = settings.training.models_dir
    embedder = configured_embedder(config)
    others = registry_embedders(models_dir, config)
    # A model loaded before the bot froze its heap is freed only through release_frozen.
    kb = KnowledgeBase(
        config.kb_dir, embedder, config, other_embedders=others, embedder_dropped=release_frozen
    )
    generator = load_generator(settings.generator)
    sentiment = load_sentiment(settings.sentiment, generator, config)
    pickup = ModelPickup(models_dir, generator, sentiment, retrieval=config)
    await pickup.check()
    conversation_log = await open_store(settings.log)
    try:
        yield Engine(
            kb,
            generator,
            pickup.live.sentiment,
            conversation_log,
            settings.engine_config,
            pickup=pickup,
        )
    finally:
        await conversation_log.close()
