"""What every answer generator receives and the Protocol it follows."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.log.records import Role
from retrieval import FaqEntry


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A customer question, the FAQ entries to answer from (best first) and recent turns."""

    question: str
    sources: tuple[FaqEntry, ...]
    history: tuple[tuple[Role, str], ...] = ()
    max_tokens: int = 256
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """Which generator runs and how; model paths are local folders, never hub names."""

    backend: str = "extractive"
    model_path: Path | None = None
    adapter_path: Path | None = None
    temperature: float = 0.0
    # OpenAI-compatible replicas (`vllm serve`), tried in order with fail-over.
    base_urls: tuple[str, ...] = field(default_factory=tuple)
    timeout_s: float = 30.0


class Generator(Protocol):
    """Streams an answer as text pieces; stopping iteration early cancels the work."""

    @property
    def name(self) -> str:
        """Identifies the model (and adapter) version for the conversation log."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]: ...
