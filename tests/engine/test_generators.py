"""Contract cases every generator backend that runs here must pass, fakes included."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from engine.generators import ExtractiveGenerator, GenerationRequest, Generator, load_generator
from engine.generators.base import GeneratorConfig
from retrieval import FaqEntry
from tests.fakes import ScriptedGenerator

SOURCE = FaqEntry(
    "refunds", "How long does a refund take?", "Refunds reach you within 5 working days."
)
BACKENDS: dict[str, Callable[[], Generator]] = {
    "extractive": ExtractiveGenerator,
    "scripted": ScriptedGenerator,
}


@pytest.fixture(params=sorted(BACKENDS))
def generator(request: pytest.FixtureRequest) -> Generator:
    return BACKENDS[request.param]()


async def collect(generator: Generator, request: GenerationRequest) -> list[str]:
    return [piece async for piece in generator.stream(request)]


async def test_streams_several_pieces_in_order(generator: Generator) -> None:
    pieces = await collect(generator, GenerationRequest("refund?", (SOURCE,)))
    assert len(pieces) > 3
    assert "".join(pieces) == SOURCE.answer


async def test_max_tokens_limits_the_answer(generator: Generator) -> None:
    if isinstance(generator, ScriptedGenerator):
        pytest.skip("the scripted fake replays its script whole; it has no token budget")
    pieces = await collect(generator, GenerationRequest("refund?", (SOURCE,), max_tokens=2))
    assert "".join(pieces).split() == ["Refunds", "reach"]


async def test_stop_string_ends_the_answer() -> None:
    pieces = await collect(
        ExtractiveGenerator(), GenerationRequest("refund?", (SOURCE,), stop=(" within",))
    )
    assert "".join(pieces) == "Refunds reach you"


async def test_unicode_survives(generator: Generator) -> None:
    entry = FaqEntry("zh", "退款要多久？", "退款会在 5 个工作日内到账 ✅")
    pieces = await collect(generator, GenerationRequest("退款", (entry,)))
    assert "".join(pieces) == entry.answer


async def test_closing_early_stops_the_stream(generator: Generator) -> None:
    stream = generator.stream(GenerationRequest("refund?", (SOURCE,)))
    async with contextlib.aclosing(stream):
        first = await anext(stream)
    assert first
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_extractive_never_answers_without_a_source() -> None:
    assert await collect(ExtractiveGenerator(), GenerationRequest("anything?", ())) == []


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: extractive"):
        load_generator(GeneratorConfig(backend="gpt-9"))
