"""Answer generators behind one streaming Protocol, chosen by name from a registry."""

from collections.abc import Callable

from engine.generators.base import GenerationRequest, Generator, GeneratorConfig
from engine.generators.extractive import ExtractiveGenerator
from engine.log.records import Role

GENERATORS: dict[str, Callable[[GeneratorConfig], Generator]] = {
    "extractive": ExtractiveGenerator,
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
    "GenerationRequest",
    "Generator",
    "GeneratorConfig",
    "Role",
    "load_generator",
]
