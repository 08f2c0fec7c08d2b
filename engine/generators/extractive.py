"""The answer is the best FAQ entry's own text: no model, nothing invented."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

from engine.generators.base import GenerationRequest, GeneratorConfig

_PIECES = re.compile(r"\S+\s*|\s+")
# Pieces streamed between two turns of the event loop.
_TURN_EVERY = 32


class ExtractiveGenerator:
    """Streams the top source's answer word by word, honouring max_tokens and stop strings.

    Tokens are whitespace-separated words here. With no source it yields nothing: the engine
    never lets a generator answer from an empty context.
    """

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self._config = config or GeneratorConfig()

    @property
    def name(self) -> str:
        return "extractive"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        if not request.sources:
            return
        text = request.sources[0].answer
        cut = min((text.find(s) for s in request.stop if s and s in text), default=-1)
        if cut >= 0:
            text = text[:cut]
        for count, piece in enumerate(_PIECES.findall(text)):
            if count >= request.max_tokens:
                return
            yield piece
            if count % _TURN_EVERY == _TURN_EVERY - 1:
                # A cancellation point, and other replies' turn. Not after every word: with
                # 64 replies at once a loop turn per word cost about 0.5 ms CPU a reply, as
                # much as the rest of the reply beside its query's embedding.
                await asyncio.sleep(0)
