"""The packaged embedders load offline and put paraphrases closer than unrelated texts."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval import Embedder, load_embedder


def closer(embedder: Embedder, anchor: str, near: str, far: str, margin: float = 0.1) -> bool:
    a, n, f = embedder.encode([anchor, near, far])
    return float(a @ n) > float(a @ f) + margin


def test_minilm_is_packaged_normalised_and_meaningful(minilm: Embedder) -> None:
    vectors = minilm.encode(["How do I return an item?", "hello"])
    assert minilm.name == "all-MiniLM-L6-v2" and minilm.dim == 384
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert closer(
        minilm,
        "How do I return an item?",
        "Can I send my order back?",
        "What is the weather today?",
    )
    assert minilm.encode([]).shape == (0, 384)


def test_multilingual_embedder_handles_chinese_and_english() -> None:
    e5 = load_embedder("multilingual-e5-small")
    assert e5.dim == 384
    assert closer(e5, "花呗怎么还款", "花呗如何还钱", "今天天气怎么样")
    # E5's cosine scores crowd together (unrelated texts score about 0.75), so across
    # languages the gap is smaller: 0.85 against 0.75 here.
    assert closer(e5, "How do I return an item?", "怎么退货", "今天天气怎么样", margin=0.05)
    batch = e5.encode(["怎么退货", "hello"])
    assert np.allclose(batch[0], e5.encode(["怎么退货"])[0], atol=1e-4)


def test_unknown_embedder_names_the_choices() -> None:
    with pytest.raises(
        ValueError, match=r"all-MiniLM-L6-v2, multilingual-e5-small.*never downloaded"
    ):
        load_embedder("sentence-transformers/some-hub-model")
