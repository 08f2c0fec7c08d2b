"""Answer generators behind one streaming Protocol, chosen by name from a registry."""

from collections.abc import Callable

from engine.generators.base import (
    GenerationFailed,
    GenerationRequest,
    Generator,
    GeneratorConfig,
)
from engine.generators.extractive import ExtractiveGenerator
from engine.generators.openai import OpenAIGenerator
from engine.log.records import Role


def _vllm(config: GeneratorConfig) -> Generator:
    # vllm is an optional extra: imported only when this backend is chosen.
    from engine.generators.vllm import VllmGenerator

    return VllmGenerator(config)


def _transformers(config: GeneratorConfig) -> Generator:
    # Imported when chosen, so other backends never pay for loading transformers' models.
    from engine.generators.transformers import TransformersGenerator

    return TransformersGenerator(config)


GENERATORS: dict[str, Callable[[GeneratorConfig], Generator]] = {
    "extractive": ExtractiveGenerator,
    "transformers": _transformers,
    "vllm": _vllm,
    "openai": OpenAIGenerator,
}


def load_generator(config: GeneratorConfig) -> Generator:
    """The generator named by `config.backend`."""
    factory = GENERATORS.get(config.backend)
    if factory is None:
        raise ValueError(
            f"unknown generator {config.backend!r}; valid: {', '.join(sorted(GENERATORS))}"
        )
    return factory(config)


__all__ = [
    "GENERATORS",
    "ExtractiveGenerator",
    "GenerationFailed",
    "GenerationRequest",
    "Generator",
    "GeneratorConfig",
    "OpenAIGenerator",
    "Role",
    "load_generator",
]
