"""Contract cases every generator backend that runs here must pass, fakes included.

The same cases run over the extractive generator, the scripted fake and the real LLM backends
(transformers, in-process vLLM, `vllm serve` through the openai backend) on the packaged
SmolLM2-135M-Instruct. The deterministic backends must give exact text; for a model the cases
check properties: several pieces, a token budget kept, a stop string cut, clean unicode, and a
closed stream that leaves no work behind. A backend that cannot start here is skipped with its
reason (see llm_fixtures.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.generators import ExtractiveGenerator, GenerationRequest, Generator, load_generator
from engine.generators.base import GeneratorConfig
from retrieval import FaqEntry
from tests.fakes import ScriptedGenerator

SOURCE = FaqEntry(
    "refunds", "How long does a refund take?", "Refunds reach you within 5 working days."
)
UNICODE = FaqEntry("zh", "退款要多久？", "退款会在 5 个工作日内到账 ✅")
LLM_TOKENS = 8
FAKES: dict[str, Callable[[], Generator]] = {
    "extractive": ExtractiveGenerator,
    "scripted": ScriptedGenerator,
}
# The real backends, each from its session fixture in llm_fixtures.py.
LLMS = {
    "transformers": "transformers_generator",
    "vllm": "vllm_generator",
    "openai": "openai_generator",
}


@dataclass
class Backend:
    """A generator under test, and for a model the tokenizer that counts its tokens."""

    name: str
    generator: Generator
    tokenizer: Any = None

    @property
    def is_llm(self) -> bool:
        return self.tokenizer is not None

    def tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.fixture(scope="session")
def smollm_tokenizer(smollm_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm_dir))


@pytest.fixture(
    params=[
        *sorted(FAKES),
        *(pytest.param(name, marks=pytest.mark.slow) for name in LLMS),
    ]
)
def backend(request: pytest.FixtureRequest) -> Backend:
    name: str = request.param
    if name in FAKES:
        return Backend(name, FAKES[name]())
    generator = request.getfixturevalue(LLMS[name])
    return Backend(name, generator, request.getfixturevalue("smollm_tokenizer"))


async def collect(generator: Generator, request: GenerationRequest) -> list[str]:
    return [piece async for piece in generator.stream(request)]


async def test_streams_several_pieces_in_order(backend: Backend) -> None:
    request = GenerationRequest(SOURCE.question, (SOURCE,), max_tokens=LLM_TOKENS)
    pieces = await collect(backend.generator, request)
    assert all(isinstance(p, str) for p in pieces)
    if backend.is_llm:
        assert len(pieces) > 1
        assert "".join(pieces).strip()
    else:
        assert len(pieces) > 3
        assert "".join(pieces) == SOURCE.answer


async def test_max_tokens_limits_the_answer(backend: Backend) -> None:
    pieces = await collect(
        backend.generator, GenerationRequest(SOURCE.question, (SOURCE,), max_tokens=4)
    )
    text = "".join(pieces)
    if backend.is_llm:
        # Re-tokenizing decoded text can merge or split a token at the edges.
        assert text and backend.tokens(text) <= 5
    else:
        assert text.split() == ["Refunds", "reach", "you", "within"]


async def test_stop_string_ends_the_answer(backend: Backend) -> None:
    request = GenerationRequest(SOURCE.question, (SOURCE,), max_tokens=LLM_TOKENS)
    if backend.is_llm:
        # A word the model says anyway (greedy decoding) must cut the answer there.
        full = "".join(await collect(backend.generator, request))
        words = full.split()
        assert len(words) >= 3, full
        stop = " " + words[len(words) // 2]
    else:
        full, stop = SOURCE.answer, " within"
    stopped = "".join(
        await collect(
            backend.generator,
            GenerationRequest(SOURCE.question, (SOURCE,), max_tokens=LLM_TOKENS, stop=(stop,)),
        )
    )
    assert stop not in stopped
    assert len(stopped) < len(full)
    if not backend.is_llm:
        assert stopped == "Refunds reach you"


async def test_unicode_survives(backend: Backend) -> None:
    pieces = await collect(
        backend.generator, GenerationRequest(UNICODE.question, (UNICODE,), max_tokens=LLM_TOKENS)
    )
    text = "".join(pieces)
    if backend.is_llm:
        # Multi-byte characters split across tokens must not surface as replacement chars.
        assert text.strip() and "\ufffd" not in text
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text), text
    else:
        assert text == UNICODE.answer


async def test_closing_early_stops_the_stream(backend: Backend) -> None:
    request = GenerationRequest("Tell me a long story about refunds.", (SOURCE,), max_tokens=200)
    stream = backend.generator.stream(request)
    async with contextlib.aclosing(stream):
        first = await anext(stream)
    assert first
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    if isinstance(backend.generator, ScriptedGenerator):
        assert backend.generator.closed_early == 1
    unfinished = getattr(backend.generator, "unfinished_requests", None)
    if unfinished is not None:
        # vllm: the request was aborted in the engine; transformers: its thread has ended.
        assert unfinished() == 0


async def test_empty_context_does_not_invent_a_source(backend: Backend) -> None:
    pieces = await collect(
        backend.generator, GenerationRequest("anything?", (), max_tokens=LLM_TOKENS)
    )
    if backend.is_llm:
        # The model may say it does not know; it must still answer as a well-formed stream.
        assert all(isinstance(p, str) for p in pieces)
        assert "\ufffd" not in "".join(pieces)
    else:
        assert pieces == []


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: extractive, openai, transformers, vllm"):
        load_generator(GeneratorConfig(backend="gpt-9"))
