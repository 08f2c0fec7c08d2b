"""A running engine picks up promoted models: sentiment, LoRA adapter, re-embedded knowledge base.

Everything is real files: a knowledge base imported with MiniLM, a model registry in tmp_path, a
trained sentiment classifier, a PEFT adapter on the packaged model, and a copy of MiniLM promoted
as a "new" embedder with the knowledge base re-embedded by it. Only the generator is a fake, one
that loads adapters the way the vllm and transformers backends do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import shutil
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine import Engine, EngineConfig, FinalReply
from engine.generators import ExtractiveGenerator, GenerationRequest, Generator
from engine.heap import release_frozen, settle_heap
from engine.log import ConversationLog, LogConfig
from engine.pickup import AdapterLoading, ModelPickup, live_version, registry_embedders
from engine.runtime import open_engine
from engine.sentiment import LabelledText, LexiconSentiment, train
from engine.settings import Settings, TrainingConfig
from retrieval import (
    Embedder,
    EmbedderMismatch,
    ImportConfig,
    KnowledgeBase,
    RetrievalConfig,
    import_paths,
    load_embedder,
    resolve_model,
)
from retrieval.embedders import OnnxEmbedder, library_threads, serving_threads
from tests.conftest import EXAMPLES
from training.kb import reembed_knowledge_base
from training.registry import ModelRegistry

if TYPE_CHECKING:
    from engine.generators.vllm import VllmGenerator

QUESTION = "how long does delivery take?"
DELIVERY = "orders-and-delivery/how-long-does-delivery-take"


class AdapterGenerator:
    """Answers with the entry's text; like vllm, a stream keeps the adapter it started with."""

    def __init__(self) -> None:
        self.adapter: Path | None = None
        self.used: list[str] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    @property
    def name(self) -> str:
        return f"adapters+{self.adapter.name}" if self.adapter else "adapters"

    async def load_adapter(self, path: Path | None) -> None:
        if path is not None and not (path / "adapter_config.json").is_file():
            raise ValueError(f"{path} is not a LoRA adapter folder")
        self.adapter = path

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        self.used.append(self.name)
        words = request.sources[0].answer.split(" ")
        yield words[0]
        self.started.set()
        await self.release.wait()
        for word in words[1:]:
            yield " " + word


_check: Generator = AdapterGenerator()
_check_loading: AdapterLoading = AdapterGenerator()


@dataclasses.dataclass
class Setup:
    kb_dir: Path
    models: ModelRegistry
    settings: Settings


@pytest.fixture
def setup(tmp_path: Path, minilm: Embedder) -> Setup:
    retrieval = RetrievalConfig(kb_dir=tmp_path / "kb")
    import_paths(
        [EXAMPLES / "kb"], retrieval.kb_dir, minilm, retrieval, ImportConfig(), progress=False
    )
    settings = Settings(
        retrieval=retrieval,
        log=LogConfig(path=tmp_path / "log.db"),
        training=TrainingConfig(models_dir=tmp_path / "models"),
    )
    return Setup(retrieval.kb_dir, ModelRegistry(tmp_path / "models"), settings)


@pytest.fixture
async def conversation_log(tmp_path: Path) -> AsyncIterator[ConversationLog]:
    log = await ConversationLog.open(tmp_path / "log.db")
    yield log
    await log.close()


def promote_sentiment(setup: Setup, minilm: Embedder, tmp_path: Path) -> str:
    rows = [LabelledText(f"I love this {w}", "positive") for w in ("shop", "lamp", "sofa")]
    rows += [LabelledText(f"this {w} is awful", "negative") for w in ("shop", "lamp", "sofa")]
    folder = tmp_path / "sentiment-src"
    train(rows, minilm, cv_folds=0).save(folder)
    version = setup.models.add("sentiment", folder, {"metrics": {}}).version
    setup.models.promote("sentiment", version)
    return version


def promote_adapter(setup: Setup, adapter: Path) -> str:
    version = setup.models.add("lora", adapter, {"metrics": {}}).version
    setup.models.promote("lora", version)
    return version


def promote_embedder(setup: Setup, tmp_path: Path) -> tuple[str, str]:
    """A copy of MiniLM promoted as a new embedder, the knowledge base re-embedded with it."""
    copy = tmp_path / "embedder-src"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), copy)
    version = setup.models.add("embedder", copy, {"metrics": {}})
    setup.models.promote("embedder", version.version)
    kb_version = reembed_knowledge_base(setup.settings, load_embedder(str(version.path)))
    return str(version.path.resolve()), kb_version


async def ask(engine: Engine, conversation: int, text: str) -> FinalReply:
    final = None
    async for event in engine.reply(conversation, text):
        if isinstance(event, FinalReply):
            final = event
    assert final is not None
    return final


async def test_the_next_reply_uses_promoted_models(
    setup: Setup,
    minilm: Embedder,
    lora_adapter: Path,
    conversation_log: ConversationLog,
    tmp_path: Path,
) -> None:
    config = setup.settings.retrieval
    others = registry_embedders(setup.settings.training.models_dir)
    kb = KnowledgeBase(setup.kb_dir, minilm, config, other_embedders=others)
    generator = AdapterGenerator()
    lexicon = LexiconSentiment()
    pickup = ModelPickup(setup.models.root, generator, lexicon, check_interval_s=0)
    engine = Engine(kb, generator, lexicon, conversation_log, pickup=pickup)
    cid = await engine.conversation("test", "alice")

    before = await ask(engine, cid, QUESTION)
    assert before.versions["generator"] == "adapters"
    assert before.versions["sentiment"] == lexicon.name
    assert before.versions["embedder"] == "all-MiniLM-L6-v2"
    old_kb = before.versions["kb"]

    sentiment = promote_sentiment(setup, minilm, tmp_path)
    lora = promote_adapter(setup, lora_adapter)
    embedder, new_kb = promote_embedder(setup, tmp_path)

    after = await ask(engine, cid, QUESTION)
    assert after.hits[0].entry.id == DELIVERY
    assert after.versions["generator"] == f"adapters+{lora}"
    assert after.versions["sentiment"].startswith("classifier-all-MiniLM-L6-v2")
    assert after.versions["sentiment_version"] == sentiment
    assert after.versions["embedder"] == embedder and embedder.endswith(
        live_version(setup.models.root, "embedder") or "?"
    )
    assert after.versions["kb"] == new_kb != old_kb
    conversation = await conversation_log.get_conversation(cid)
    assert conversation is not None
    customer, bot = conversation.turns[2:]
    assert customer.models == {
        "sentiment": after.versions["sentiment"],
        "sentiment_version": sentiment,
    }
    assert dict(bot.models) == after.versions and bot.kb_version == new_kb


async def test_a_reply_in_flight_finishes_on_the_old_models(
    setup: Setup,
    minilm: Embedder,
    lora_adapter: Path,
    conversation_log: ConversationLog,
    tmp_path: Path,
) -> None:
    config = setup.settings.retrieval
    others = registry_embedders(setup.settings.training.models_dir)
    kb = KnowledgeBase(setup.kb_dir, minilm, config, other_embedders=others)
    generator = AdapterGenerator()
    lexicon = LexiconSentiment()
    pickup = ModelPickup(setup.models.root, generator, lexicon, check_interval_s=0)
    engine = Engine(kb, generator, lexicon, conversation_log, pickup=pickup)
    first = await engine.conversation("test", "alice")
    second = await engine.conversation("test", "bob")

    generator.release.clear()
    in_flight = asyncio.create_task(ask(engine, first, QUESTION))
    await generator.started.wait()
    sentiment = promote_sentiment(setup, minilm, tmp_path)
    lora = promote_adapter(setup, lora_adapter)
    _, new_kb = promote_embedder(setup, tmp_path)
    generator.release.set()
    new = await ask(engine, second, QUESTION)
    old = await in_flight

    assert old.text == new.text == old.hits[0].entry.answer
    assert old.versions == {
        "kb": old.versions["kb"],
        "embedder": "all-MiniLM-L6-v2",
        "generator": "adapters",
        "sentiment": LexiconSentiment().name,
    }
    assert old.versions["kb"] != new_kb == new.versions["kb"]
    assert new.versions["generator"] == f"adapters+{lora}"
    assert new.versions["sentiment_version"] == sentiment
    assert generator.used == ["adapters", f"adapters+{lora}"]
    logged = await conversation_log.get_conversation(first)
    assert logged is not None and dict(logged.turns[1].models) == old.versions


async def test_a_generator_without_adapters_ignores_a_promoted_one(
    setup: Setup, minilm: Embedder, conversation_log: ConversationLog, tmp_path: Path
) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    promote_adapter(setup, folder)
    kb = KnowledgeBase(setup.kb_dir, minilm, setup.settings.retrieval)
    generator, lexicon = ExtractiveGenerator(), LexiconSentiment()
    pickup = ModelPickup(setup.models.root, generator, lexicon, check_interval_s=0)
    engine = Engine(kb, generator, lexicon, conversation_log, pickup=pickup)
    reply = await ask(engine, await engine.conversation("test", "alice"), QUESTION)
    assert reply.action == "answer" and reply.versions["generator"] == "extractive"


async def test_a_broken_promoted_sentiment_model_keeps_the_current_one(
    setup: Setup, minilm: Embedder, conversation_log: ConversationLog, tmp_path: Path
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "meta.json").write_text('{"embedder": "all-MiniLM-L6-v2", "format": "other"}')
    setup.models.promote("sentiment", setup.models.add("sentiment", folder, {}).version)
    generator, lexicon = ExtractiveGenerator(), LexiconSentiment()
    pickup = ModelPickup(setup.models.root, generator, lexicon, check_interval_s=0)
    kb = KnowledgeBase(setup.kb_dir, minilm, setup.settings.retrieval)
    engine = Engine(kb, generator, lexicon, conversation_log, pickup=pickup)
    reply = await ask(engine, await engine.conversation("test", "alice"), QUESTION)
    assert reply.versions["sentiment"] == lexicon.name and "sentiment_version" not in reply.versions


def test_only_registry_embedders_are_followed(setup: Setup, minilm: Embedder) -> None:
    config = setup.settings.retrieval
    embedder, _ = promote_embedder(setup, setup.kb_dir.parent)
    with pytest.raises(EmbedderMismatch):
        KnowledgeBase(setup.kb_dir, minilm, config)
    elsewhere = registry_embedders(setup.kb_dir.parent / "other-models")
    with pytest.raises(EmbedderMismatch):
        KnowledgeBase(setup.kb_dir, minilm, config, other_embedders=elsewhere)
    others = registry_embedders(setup.settings.training.models_dir)
    kb = KnowledgeBase(setup.kb_dir, minilm, config, other_embedders=others)
    assert kb.embedder.name == embedder
    assert kb.search(QUESTION).best is not None


def loaded_model(embedder: Embedder) -> weakref.ref[object]:
    """The SentenceTransformer inside `embedder`: it sits in reference cycles."""
    return weakref.ref(vars(embedder)["_model"])


def test_a_reload_frees_the_embedder_frozen_at_start_up(
    setup: Setup, minilm: Embedder, tmp_path: Path
) -> None:
    config = setup.settings.retrieval
    promote_embedder(setup, tmp_path / "first")
    others = registry_embedders(setup.settings.training.models_dir)
    kb = KnowledgeBase(
        setup.kb_dir, minilm, config, other_embedders=others, embedder_dropped=release_frozen
    )
    first = loaded_model(kb.embedder)
    try:
        settle_heap()
        second, _ = promote_embedder(setup, tmp_path / "second")
        assert kb.refresh() and kb.embedder.name == second
        assert first() is None
        assert kb.search(QUESTION).best is not None
    finally:
        gc.unfreeze()


async def test_a_replaced_sentiment_model_is_freed_once_no_reply_uses_it(
    setup: Setup, minilm: Embedder, tmp_path: Path
) -> None:
    (tmp_path / "first").mkdir()
    promote_sentiment(setup, minilm, tmp_path / "first")
    pickup = ModelPickup(
        setup.models.root, ExtractiveGenerator(), LexiconSentiment(), check_interval_s=0
    )
    in_flight = await pickup.check()
    first = loaded_model(pickup._embedders["all-MiniLM-L6-v2"])
    copy = tmp_path / "minilm-copy"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), copy)
    other = load_embedder(str(copy))
    (tmp_path / "second").mkdir()
    try:
        settle_heap()
        second = promote_sentiment(setup, other, tmp_path / "second")
        live = await pickup.check()
        assert live.versions["sentiment"] == second != in_flight.versions["sentiment"]
        assert list(pickup._embedders) == [other.name]  # the replaced one's is not kept
        assert first() is not None  # a reply in flight still scores with it
        del in_flight
        await pickup.check()
        assert first() is None
    finally:
        gc.unfreeze()


async def test_open_engine_starts_on_the_promoted_models(
    setup: Setup, minilm: Embedder, tmp_path: Path
) -> None:
    sentiment = promote_sentiment(setup, minilm, tmp_path)
    embedder, kb_version = promote_embedder(setup, tmp_path)
    async with open_engine(setup.settings) as engine:
        cid = await engine.conversation("test", "alice")
        reply = await ask(engine, cid, QUESTION)
    assert reply.hits[0].entry.id == DELIVERY
    assert reply.versions["sentiment_version"] == sentiment
    assert (reply.versions["embedder"], reply.versions["kb"]) == (embedder, kb_version)


async def test_open_engine_leaves_a_cpu_to_the_event_loop(setup: Setup) -> None:
    import torch

    assert setup.settings.retrieval.threads == 0
    library_threads()  # read before the team is changed below
    previous = torch.get_num_threads()
    torch.set_num_threads(2)  # a team on both cores of a 2-core machine
    try:
        async with open_engine(setup.settings):
            assert torch.get_num_threads() == serving_threads(0)
    finally:
        torch.set_num_threads(previous)


async def test_vllm_answers_the_next_reply_with_a_promoted_adapter(
    setup: Setup,
    minilm: Embedder,
    lora_adapter: Path,
    vllm_generator: VllmGenerator,
    conversation_log: ConversationLog,
) -> None:
    kb = KnowledgeBase(setup.kb_dir, minilm, setup.settings.retrieval)
    lexicon = LexiconSentiment()
    pickup = ModelPickup(setup.models.root, vllm_generator, lexicon, check_interval_s=0)
    config = EngineConfig(max_tokens=24)
    engine = Engine(kb, vllm_generator, lexicon, conversation_log, config, pickup=pickup)
    try:
        before, base_text = await ask_streamed(engine, await engine.conversation("t", "a"))
        lora = promote_adapter(setup, lora_adapter)
        after, adapted_text = await ask_streamed(engine, await engine.conversation("t", "b"))
    finally:
        # The session's engine is shared: later tests expect the base model.
        await vllm_generator.load_adapter(None)
    assert before.versions["generator"] == "vllm:smollm2-135m-instruct"
    assert after.versions["generator"] == f"vllm:smollm2-135m-instruct+{lora}"
    assert adapted_text != base_text


async def ask_streamed(engine: Engine, conversation: int) -> tuple[FinalReply, str]:
    """The final reply and the text as generated, before any grounding correction."""
    pieces, final = [], None
    async for event in engine.reply(conversation, QUESTION):
        if isinstance(event, FinalReply):
            final = event
        else:
            pieces.append(event.text)
    assert final is not None and final.action == "answer"
    return final, "".join(pieces)


def session_threads(embedder: Embedder) -> int:
    """The intra-op threads of an ONNX embedder's Runtime session."""
    assert isinstance(embedder, OnnxEmbedder), embedder
    return int(embedder._encoder._session.get_session_options().intra_op_num_threads)


async def test_the_threads_setting_reaches_a_promoted_onnx_embedder(
    setup: Setup, minilm: Embedder, tmp_path: Path
) -> None:
    promote_sentiment(setup, minilm, tmp_path)
    promoted, _ = promote_embedder(setup, tmp_path)
    retrieval = dataclasses.replace(
        setup.settings.retrieval, backend="onnx", onnx_dir=tmp_path / "onnx", threads=1
    )
    # The registry's loader, as a knowledge base gets it.
    loaded = registry_embedders(setup.settings.training.models_dir, retrieval)(promoted)
    assert loaded is not None and session_threads(loaded) == 1
    # A running engine: its knowledge base follows the promoted embedder, run the same way.
    settings = dataclasses.replace(setup.settings, retrieval=retrieval)
    async with open_engine(settings) as engine:
        assert engine.knowledge_base.embedder.name == promoted
        assert session_threads(engine.knowledge_base.embedder) == 1
        # The promoted sentiment classifier's embedder runs the same way.
        assert engine._pickup is not None
        classifier_embedder = engine._pickup._embedders["all-MiniLM-L6-v2"]
        assert session_threads(classifier_embedder) == 1


async def test_a_promoted_classifier_embeds_as_the_retrieval_settings_say(
    setup: Setup, minilm: Embedder, tmp_path: Path
) -> None:
    version = promote_sentiment(setup, minilm, tmp_path)
    retrieval = dataclasses.replace(
        setup.settings.retrieval, backend="onnx", onnx_dir=tmp_path / "onnx", threads=1
    )
    pickup = ModelPickup(
        setup.models.root,
        ExtractiveGenerator(),
        LexiconSentiment(),
        check_interval_s=0,
        retrieval=retrieval,
    )
    live = await pickup.check()
    assert live.versions["sentiment"] == version
    assert session_threads(pickup._embedders["all-MiniLM-L6-v2"]) == 1
    assert live.sentiment.score("this sofa is awful").label == "negative"
