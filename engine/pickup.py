"""Promoted models picked up by a running engine, without a restart.

Retraining (training/registry.py) keeps each kind of model under `<models_dir>/<kind>/<version>/`
and names the live version in `<models_dir>/<kind>/CURRENT`, a small file replaced atomically.
`ModelPickup` reads those pointers at the start of a reply (at most every `check_interval_s`),
loads a newly promoted sentiment classifier off the event loop and swaps it in with one
assignment, and hands a new LoRA adapter to the generator when it can load one. A reply keeps
the `LiveModels` it started with, so one in flight finishes on the old versions.

A new embedder is not swapped here: it only makes sense together with the knowledge base
re-embedded with it, so the knowledge base follows the embedder its live version names
(`registry_embedders` loads those).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from engine.generators import Generator
from engine.heap import release_frozen
from engine.sentiment import ClassifierSentiment, SentimentModel
from engine.sentiment.classifier import classifier_embedder
from retrieval import Embedder, RetrievalConfig, configured_embedder

log = logging.getLogger(__name__)

MODEL_KINDS = ("embedder", "lora", "sentiment")
POINTER = "CURRENT"


def live_version(models_dir: Path, kind: str) -> str | None:
    """The version the registry's pointer names as live for `kind`, or None."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(MODEL_KINDS)}")
    try:
        name = (models_dir / kind / POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


@runtime_checkable
class AdapterLoading(Protocol):
    """A generator that can switch LoRA adapters while running (vllm, transformers)."""

    async def load_adapter(self, path: Path | None) -> None: ...


@dataclass(frozen=True, slots=True, weakref_slot=True)
class LiveModels:
    """The swappable models one reply uses from its start to its end, and their versions."""

    sentiment: SentimentModel
    # Registry versions in use, by kind ("sentiment", "lora"); empty while none was promoted.
    versions: Mapping[str, str] = field(default_factory=dict)


class ModelPickup:
    """Watches the registry under `models_dir`; swaps promoted models into a running engine.

    `sentiment` is the configured model, used until a classifier is promoted. A promoted
    classifier's embedder runs as `retrieval` runs the knowledge base's (backend, threads).
    """

    def __init__(
        self,
        models_dir: Path,
        generator: Generator,
        sentiment: SentimentModel,
        *,
        check_interval_s: float = 1.0,
        retrieval: RetrievalConfig | None = None,
    ) -> None:
        self._dir = models_dir
        self._retrieval = retrieval
        self._generator = generator
        self._live = LiveModels(sentiment)
        self._interval = check_interval_s
        self._checked = -math.inf
        self._applied: dict[str, str | None] = {"lora": None, "sentiment": None}
        self._lock = asyncio.Lock()
        # The embedder the live classifier uses, by name: a later promotion naming it reuses it.
        self._embedders: dict[str, Embedder] = {}
        # The LiveModels replaced sentiment models were used through, until no reply holds them.
        self._retired: list[weakref.ref[LiveModels]] = []

    @property
    def live(self) -> LiveModels:
        return self._live

    async def check(self) -> LiveModels:
        """Swap in what was promoted since the last look; the models for a reply starting now.

        While another reply is loading a new model, this one goes ahead on the current models.
        """
        now = time.monotonic()
        if now - self._checked < self._interval or self._lock.locked():
            return self._live
        async with self._lock:
            self._checked = now
            pointers = await asyncio.to_thread(self._pointers)
            if pointers["sentiment"] != self._applied["sentiment"]:
                await self._swap_sentiment(pointers["sentiment"])
            if pointers["lora"] != self._applied["lora"]:
                await self._swap_adapter(pointers["lora"])
            self._release_retired()
        return self._live

    def _release_retired(self) -> None:
        # A replaced model may have been frozen with the start-up heap (engine/heap.py): once
        # no reply uses it any more, collect it.
        if self._retired and all(ref() is None for ref in self._retired):
            self._retired.clear()
            release_frozen()

    def _pointers(self) -> dict[str, str | None]:
        return {kind: live_version(self._dir, kind) for kind in self._applied}

    async def _swap_sentiment(self, version: str | None) -> None:
        self._applied["sentiment"] = version
        if version is None:
            return  # never happens through the registry, which cannot un-promote
        folder = self._dir / "sentiment" / version
        try:
            model = await asyncio.to_thread(self._load_classifier, folder)
        except (OSError, ValueError, KeyError) as error:
            # A broken model folder must not break the replies: keep the current model.
            log.error(
                "sentiment version=%s not loaded: %s; kept %s",
                version,
                error,
                self._live.sentiment.name,
            )
            return
        versions = {**self._live.versions, "sentiment": version}
        self._retired.append(weakref.ref(self._live))
        self._live = LiveModels(model, versions)
        log.info("sentiment swapped version=%s name=%s", version, model.name)

    def _load_classifier(self, folder: Path) -> ClassifierSentiment:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        name = str(meta["embedder"])
        embedder = self._embedders.get(name) or classifier_embedder(name, self._retrieval)
        model = ClassifierSentiment.load(folder, embedder)
        # Only the embedder the new live classifier uses stays: the one a replaced classifier
        # used goes with it.
        self._embedders = {name: embedder}
        return model

    async def _swap_adapter(self, version: str | None) -> None:
        self._applied["lora"] = version
        generator = self._generator
        if not isinstance(generator, AdapterLoading):
            log.warning(
                "lora version=%s promoted but generator %s loads no adapters; not used",
                version,
                generator.name,
            )
            return
        folder = self._dir / "lora" / version if version is not None else None
        try:
            await generator.load_adapter(folder)
        except (OSError, ValueError, RuntimeError) as error:
            log.error("lora version=%s not loaded: %s; kept %s", version, error, generator.name)
            return
        versions = {k: v for k, v in self._live.versions.items() if k != "lora"}
        if version is not None:
            versions["lora"] = version
        self._live = LiveModels(self._live.sentiment, versions)
        log.info("adapter swapped version=%s generator=%s", version, generator.name)
        release_frozen()  # the replaced adapter's modules may have been frozen at start-up


def registry_embedders(
    models_dir: Path, config: RetrievalConfig | None = None
) -> Callable[[str], Embedder | None]:
    """Loads an embedder a knowledge base names when it is one of the registry's embedders,
    run as `config` runs the configured one (backend, batch size, ONNX folder, threads).

    Any other name gives None, so a knowledge base embedded with an unrelated model is still
    refused as a mismatch.
    """
    config = config or RetrievalConfig()
    root = (models_dir / "embedder").resolve()

    def load(name: str) -> Embedder | None:
        path = Path(name)
        if not path.is_absolute() or path.parent != root or not path.is_dir():
            return None
        return configured_embedder(config, str(path))

    return load
