"""Fakes for tests that are about something other than the model itself."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

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
