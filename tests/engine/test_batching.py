"""Concurrent replies share embedding calls, with the same results as searching one by one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from engine import Engine, FinalReply
from engine.batching import SearchBatcher
from engine.generators import ExtractiveGenerator
from engine.log import ConversationLog
from engine.sentiment import LexiconSentiment
from retrieval import (
    Embedder,
    ImportConfig,
    KnowledgeBase,
    RetrievalConfig,
    SearchResult,
    import_paths,
)
from retrieval.embedders import CountingEmbedder
from tests.conftest import EXAMPLES


async def test_concurrent_replies_share_encode_calls(minilm: Embedder, tmp_path: Path) -> None:
    embedder = CountingEmbedder(minilm)
    config = RetrievalConfig(kb_dir=tmp_path / "kb")
    import_paths([EXAMPLES / "kb"], config.kb_dir, embedder, config, ImportConfig(), progress=False)
    kb = KnowledgeBase(config.kb_dir, embedder, config)
    lines = (EXAMPLES / "queries.jsonl").read_text().splitlines()
    questions = [json.loads(line)["query"] for line in lines][:24]

    async with await ConversationLog.open(tmp_path / "log.db") as log:
        engine = Engine(kb, ExtractiveGenerator(), LexiconSentiment(), log)

        async def reply(i: int, text: str) -> FinalReply:
            cid = await engine.conversation("bench", f"u{i}")
            async for event in engine.reply(cid, text):
                if isinstance(event, FinalReply):
                    return event
            raise AssertionError("no FinalReply")

        embedder.calls = 0
        finals = await asyncio.gather(*(reply(i, q) for i, q in enumerate(questions)))
        batched_calls = embedder.calls

    assert batched_calls < len(questions) / 4, batched_calls
    for question, final in zip(questions, finals, strict=True):
        alone = kb.search(question)
        assert [h.entry.id for h in final.hits] == [h.entry.id for h in alone.hits]
        assert [h.score for h in final.hits] == pytest.approx(
            [h.score for h in alone.hits], abs=1e-5
        )


def result(query: str) -> SearchResult:
    return SearchResult(query, (), False, 0.5, "v1")


async def test_batcher_splits_results_per_caller_and_shares_errors() -> None:
    seen: list[list[str]] = []

    def search(queries: list[str]) -> list[SearchResult]:
        seen.append(queries)
        if "boom" in queries:
            raise RuntimeError("index broken")
        return [result(q) for q in queries]

    batcher = SearchBatcher(search, max_wait_s=0.01)
    one, two = await asyncio.gather(batcher.search(["a"]), batcher.search(["b", "c"]))
    assert [r.query for r in one] == ["a"] and [r.query for r in two] == ["b", "c"]
    assert seen == [["a", "b", "c"]]
    outcomes = await asyncio.gather(
        batcher.search(["x"]), batcher.search(["boom"]), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)


async def test_a_caller_that_gives_up_does_not_stop_the_others() -> None:
    def search(queries: list[str]) -> list[SearchResult]:
        return [result(q) for q in queries]

    batcher = SearchBatcher(search, max_wait_s=0.01)
    impatient = asyncio.create_task(batcher.search(["a"]))
    patient = asyncio.create_task(batcher.search(["b"]))
    await asyncio.sleep(0)
    impatient.cancel()
    assert [r.query for r in await patient] == ["b"]
    with pytest.raises(asyncio.CancelledError):
        await impatient
