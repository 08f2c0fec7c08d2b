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
    # Keeps one conversation on one model server (the openai backend hashes it to a replica).
    affinity: str = ""
    # What the log should know besides the text, appended by the generator (a fail-over).
    notes: list[str] = field(default_factory=list, compare=False)


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """Which generator runs and how; model paths are local folders, never hub names."""

    backend: str = "extractive"
    # None: the packaged SmolLM2-135M-Instruct, exported once to export_dir.
    model_path: Path | None = None
    export_dir: Path = Path("var/models/base/smollm2-135m-instruct")
    adapter_path: Path | None = None
    temperature: float = 0.0
    # transformers: "auto" (CUDA when available, else CPU), "cpu" or "cuda".
    device: str = "auto"
    # vllm: context length, KV-cache share of GPU memory, largest LoRA rank accepted.
    max_model_len: int = 2048
    gpu_memory_utilization: float = 0.85
    max_lora_rank: int = 16
    # OpenAI-compatible replicas (`vllm serve`): a conversation stays on the one its id hashes
    # to while that one is healthy, and fails over to the next in its order.
    base_urls: tuple[str, ...] = field(default_factory=tuple)
    # The served model name; with adapter_name set, that LoRA adapter is asked for instead.
    model_name: str = ""
    adapter_name: str = ""
    # A replica that has not started its answer (response headers) in this long is skipped.
    timeout_s: float = 30.0
    # A replica silent this long in the middle of an answer has failed: another one finishes it.
    stall_timeout_s: float = 30.0
    retries: int = 2
    # Circuit breaker: this many failures in a row take a replica out for cooldown_s, then
    # one health check (GET /v1/models) decides whether it comes back.
    breaker_failures: int = 2
    breaker_cooldown_s: float = 10.0
    # How often a replica's served models (its loaded LoRA adapters) are read again.
    health_interval_s: float = 15.0


class GenerationFailed(RuntimeError):
    """The model stopped before the answer was complete; `partial` is the text already streamed.

    The engine answers with the retrieved entry instead, so no customer keeps a cut-off answer.
    """

    def __init__(self, message: str, *, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class Generator(Protocol):
    """Streams an answer as text pieces; stopping iteration early cancels the work."""

    @property
    def name(self) -> str:
        """Identifies the model (and adapter) version for the conversation log."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]: ...
