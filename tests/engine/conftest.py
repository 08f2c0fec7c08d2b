"""Fixtures for the engine tests; the real LLM backends live in llm_fixtures.py."""

from tests.engine.llm_fixtures import (
    lora_adapter,
    openai_generator,
    openai_server,
    smollm_dir,
    transformers_generator,
    vllm_generator,
)

__all__ = [
    "lora_adapter",
    "openai_generator",
    "openai_server",
    "smollm_dir",
    "transformers_generator",
    "vllm_generator",
]
