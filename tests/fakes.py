"""Fakes for tests that are about something other than the model itself."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncGenerator, Sequence

import numpy as np

from engine.generators import GenerationRequest, Generator
from retrieval.embedders import Embedder, Vectors


class HashEmbedder:
    """Bag-of-words vectors from hashed tokens: texts sharing words are similar, no model needed."""

    def __init__(self, dim: int = 64, name: str = "hash-64") -> None:
        self._dim = dim
        self._name = name
        self.encoded: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for token in re.findall(r"\w+", text.lower()) or [""]:
                digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
                out[i, int.from_bytes(digest[:4], "little") % self._dim] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


_check: Embedder = HashEmbedder()


class ScriptedGenerator:
    """Streams canned replies word by word and records every request and early close.

    Without a script it replays the first source's answer. Like the extractive generator it
    counts words as tokens, keeps `max_tokens`, cuts at the first stop string, and yields
    nothing when there is neither a script nor a source.
    """

    def __init__(self, *replies: str) -> None:
        self._replies = list(replies)
        self.requests: list[GenerationRequest] = []
        self.closed_early = 0

    @property
    def name(self) -> str:
        return "scripted"

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        self.requests.append(request)
        if self._replies:
            reply = self._replies.pop(0)
        elif request.sources:
            reply = request.sources[0].answer
        else:
            return
        cut = min((reply.find(s) for s in request.stop if s and s in reply), default=-1)
        text = reply[:cut] if cut >= 0 else reply
        words = text.split(" ")[: request.max_tokens] if text else []
        finished = False
        try:
            for i, word in enumerate(words):
                yield word if i == len(words) - 1 else word + " "
                await asyncio.sleep(0)
            finished = True
        finally:
            if not finished:
                self.closed_early += 1


_check_generator: Generator = ScriptedGenerator()
