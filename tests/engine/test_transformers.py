"""The transformers backend beyond the contract: LoRA switching, constrained choice, registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.generators import GenerationRequest, load_generator
from engine.generators.base import GeneratorConfig
from engine.generators.models import ModelUnavailable
from engine.generators.transformers import TransformersGenerator
from retrieval import FaqEntry

pytestmark = pytest.mark.slow

SOURCE = FaqEntry(
    "refunds", "How long does a refund take?", "Refunds reach you within 5 working days."
)
QUESTION = GenerationRequest(SOURCE.question, (SOURCE,), max_tokens=8)


async def collect(generator: TransformersGenerator, request: GenerationRequest) -> str:
    return "".join([piece async for piece in generator.stream(request)])


async def test_a_new_adapter_applies_to_new_requests_only(
    smollm_dir: Path, lora_adapter: Path
) -> None:
    generator = TransformersGenerator(GeneratorConfig(model_path=smollm_dir, device="cpu"))
    base = await collect(generator, QUESTION)
    stream = generator.stream(QUESTION)
    first = await anext(stream)  # started on the base model
    await generator.load_adapter(lora_adapter)
    assert generator.name == f"transformers:{smollm_dir.name}+{lora_adapter.name}"
    in_flight = first + "".join([piece async for piece in stream])
    assert in_flight == base
    assert await collect(generator, QUESTION) != base
    await generator.load_adapter(None)
    assert generator.name == f"transformers:{smollm_dir.name}"
    assert await collect(generator, QUESTION) == base


async def test_adapter_from_config_and_bad_adapter(
    smollm_dir: Path, lora_adapter: Path, tmp_path: Path
) -> None:
    config = GeneratorConfig(
        backend="transformers", model_path=smollm_dir, adapter_path=lora_adapter, device="cpu"
    )
    generator = load_generator(config)
    assert isinstance(generator, TransformersGenerator)
    assert generator.name.endswith(f"+{lora_adapter.name}")
    with pytest.raises(ModelUnavailable, match=r"adapter_config\.json"):
        await generator.load_adapter(tmp_path)


def test_choose_returns_one_of_the_options(
    transformers_generator: TransformersGenerator,
) -> None:
    messages = [{"role": "user", "content": "Is the sky blue? Answer yes or no."}]
    choice = transformers_generator.choose(messages, ["yes", "no"])
    assert choice in ("yes", "no")
    assert transformers_generator.choose(messages, ["yes", "no"]) == choice
    with pytest.raises(ValueError, match="at least one"):
        transformers_generator.choose(messages, [])


async def test_concurrent_streams_each_finish(
    transformers_generator: TransformersGenerator,
) -> None:
    answers = await asyncio.gather(*(collect(transformers_generator, QUESTION) for _ in range(2)))
    assert all(answers)
    assert transformers_generator.unfinished_requests() == 0


def test_unknown_device_is_refused(smollm_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown device"):
        TransformersGenerator(GeneratorConfig(model_path=smollm_dir, device="tpu"))
