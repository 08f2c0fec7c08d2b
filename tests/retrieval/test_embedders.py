"""The packaged embedders load offline and put paraphrases closer than unrelated texts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval import (
    Embedder,
    ImportConfig,
    KnowledgeBase,
    RetrievalConfig,
    import_paths,
    load_embedder,
    onnx_encoder,
    resolve_model,
)
from retrieval.embedders import (
    BACKENDS,
    DeferredEmbedder,
    OnnxEmbedder,
    configured_embedder,
    document_embedder,
    library_threads,
    serving_threads,
)
from retrieval.onnx_encoder import FP32_NODES, OnnxUnsupported, cache_folder


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


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONNX cache of this module's own, exported into once."""
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def minilm_int8(onnx_dir: Path) -> Embedder:
    return load_embedder("all-MiniLM-L6-v2", backend="onnx-int8", onnx_dir=onnx_dir)


PARAPHRASES = [
    ("How do I return an item?", "Can I send my order back?"),
    ("How long does delivery take?", "When will my parcel arrive?"),
    ("Do you ship abroad?", "Can I get my order delivered to another country?"),
    ("How do I reset my password?", "I forgot my login password"),
    ("Can I pay with PayPal?", "Which payment methods do you accept?"),
    ("Where is my refund?", "I still have not got my money back"),
    ("How do I cancel my subscription?", "Stop my monthly plan"),
    ("Is there a warranty?", "What guarantee comes with the product?"),
]


def test_onnx_export_is_cached_and_reused(
    onnx_dir: Path, minilm_int8: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder,) = [p for p in onnx_dir.iterdir() if p.is_dir()]
    assert folder == cache_folder(Path(resolve_model("all-MiniLM-L6-v2")), onnx_dir)
    files = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.onnx")}
    assert set(files) == {"model.onnx", "model.int8.onnx"}

    def no_export(*args: object) -> None:
        raise AssertionError("the cached ONNX files were exported again")

    monkeypatch.setattr(onnx_encoder, "_export", no_export)
    monkeypatch.setattr(onnx_encoder, "_quantize", no_export)
    again = load_embedder("all-MiniLM-L6-v2", backend="onnx-int8", onnx_dir=onnx_dir)
    fp32 = load_embedder("all-MiniLM-L6-v2", backend="onnx", onnx_dir=onnx_dir)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.onnx")} == files
    texts = ["How do I return an item?", "hello"]
    assert np.allclose(again.encode(texts), minilm_int8.encode(texts), atol=1e-6)
    assert fp32.name == "all-MiniLM-L6-v2" and fp32.dim == 384


def test_int8_export_keeps_the_early_feed_forward_and_embeddings_fp32(
    onnx_dir: Path, minilm_int8: Embedder
) -> None:
    import onnx

    folder = cache_folder(Path(resolve_model("all-MiniLM-L6-v2")), onnx_dir)
    graph = onnx.load(str(folder / "model.int8.onnx")).graph
    float_products = {n.name for n in graph.node if n.op_type == "MatMul"}
    # Attention's own products (query x key, weights x value) have no weights to quantise.
    assert float_products - set(FP32_NODES) == {
        f"/model/encoder/layer.{layer}/attention/self/MatMul{suffix}"
        for layer in range(6)
        for suffix in ("", "_1")
    }
    assert set(FP32_NODES) <= float_products and len(FP32_NODES) == 8
    # 6 layers x 6 weight products, less the 8 kept at fp32.
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 28
    # The word-embedding lookup is not quantised: no Gather reads int8 weights.
    int8 = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8}
    assert not any(n.op_type == "Gather" and n.input[0] in int8 for n in graph.node)


def test_onnx_fp32_gives_the_torch_vectors(minilm: Embedder, onnx_dir: Path) -> None:
    fp32 = load_embedder("all-MiniLM-L6-v2", backend="onnx", onnx_dir=onnx_dir)
    texts = [t for pair in PARAPHRASES for t in pair] + ["a " * 400]  # longer than 256 tokens
    cosine = np.sum(fp32.encode(texts) * minilm.encode(texts), axis=1)
    assert cosine.min() > 0.9999, cosine


def test_int8_agrees_with_torch_on_vectors_and_rankings(
    minilm: Embedder, minilm_int8: Embedder
) -> None:
    questions = [q for q, _ in PARAPHRASES]
    queries = [p for _, p in PARAPHRASES]
    vectors = minilm_int8.encode([*questions, *queries])
    assert vectors.shape == (16, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(vectors * minilm.encode([*questions, *queries]), axis=1)
    assert cosine.min() > 0.95 and cosine.mean() > 0.98, cosine
    # The same nearest question for every paraphrase, as with full precision.
    torch_rank = (minilm.encode(queries) @ minilm.encode(questions).T).argmax(axis=1)
    int8_rank = (vectors[8:] @ vectors[:8].T).argmax(axis=1)
    assert list(int8_rank) == list(torch_rank) == list(range(8))
    # Batches are sorted by length inside; results come back in the caller's order. Dynamic
    # quantisation scales activations per batch, so a vector moves a little with its batch.
    one_by_one = np.stack([minilm_int8.encode([q])[0] for q in queries])
    assert np.sum(one_by_one * vectors[8:], axis=1).min() > 0.95
    assert minilm_int8.name == "all-MiniLM-L6-v2" and minilm_int8.encode([]).shape == (0, 384)


def test_threads_setting_sets_torch_threads() -> None:
    import torch

    previous = torch.get_num_threads()
    wanted = 2 if previous == 1 else 1  # differs from what torch has now, so it must be set
    try:
        configured_embedder(RetrievalConfig(threads=wanted))
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(previous)


def test_threads_setting_reaches_the_onnx_sessions(onnx_dir: Path) -> None:
    def session_threads(embedder: Embedder) -> int:
        assert isinstance(embedder, OnnxEmbedder)
        return int(embedder._encoder._session.get_session_options().intra_op_num_threads)

    config = RetrievalConfig(backend="onnx-int8", onnx_dir=onnx_dir, threads=1)
    queries = configured_embedder(config)
    # The fp32 twin that embeds indexed texts runs with the same threads.
    assert session_threads(queries) == session_threads(document_embedder(queries)) == 1
    assert session_threads(configured_embedder(replace(config, threads=0))) == 0  # ORT's own


def test_serving_threads_leave_a_cpu_to_the_event_loop() -> None:
    assert serving_threads(0, cpus=2, library=2) == 1
    assert serving_threads(0, cpus=1, library=1) == 1
    assert serving_threads(0, cpus=8, library=4) == 4  # never more than the library's team
    assert serving_threads(0, cpus=8, library=16) == 7
    assert serving_threads(0, cpus=8) == min(7, library_threads())
    assert serving_threads(3, cpus=2, library=2) == 3  # an explicit setting stays as it is


def test_serving_threads_stay_under_the_environment_cap() -> None:
    # torch's own team follows OMP_NUM_THREADS; auto must not raise a team it capped.
    script = "from retrieval.embedders import serving_threads; print(serving_threads(0, cpus=8))"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.split() == ["1"]


def test_threads_setting_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match=r"\[retrieval\] threads must be 0"):
        RetrievalConfig(threads=-1)


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: torch, onnx, onnx-int8"):
        load_embedder("all-MiniLM-L6-v2", backend="tensorrt")
    with pytest.raises(ValueError, match="valid: torch, onnx, onnx-int8"):
        DeferredEmbedder(RetrievalConfig(backend="onnx-fp16"))


def test_onnx_refuses_a_pipeline_it_cannot_reproduce(tmp_path: Path) -> None:
    model = tmp_path / "with-dense"
    shutil.copytree(resolve_model("all-MiniLM-L6-v2"), model)
    modules = json.loads((model / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "x.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(OnnxUnsupported, match='backend = "torch"'):
        load_embedder(str(model), backend="onnx-int8", onnx_dir=tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def test_unchanged_reimport_loads_no_model(
    tmp_path: Path, minilm: Embedder, minilm_int8: Embedder, onnx_dir: Path
) -> None:
    faq = tmp_path / "faq.jsonl"
    rows = [{"id": f"q{i}", "question": q, "answer": p} for i, (q, p) in enumerate(PARAPHRASES)]
    faq.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    config = RetrievalConfig(kb_dir=tmp_path / "kb", backend="onnx-int8", onnx_dir=onnx_dir)
    import_paths([faq], config.kb_dir, minilm, config, ImportConfig(), progress=False)
    for backend in BACKENDS:
        deferred = DeferredEmbedder(replace(config, backend=backend))
        report = import_paths(
            [faq], config.kb_dir, deferred, config, ImportConfig(), progress=False
        )
        assert not report.changed and report.unchanged == len(rows)
        assert not deferred.loaded, backend


def test_int8_queries_search_full_precision_documents(
    tmp_path: Path, minilm: Embedder, minilm_int8: Embedder
) -> None:
    faq = tmp_path / "faq.jsonl"
    rows = [{"id": f"q{i}", "question": q, "answer": "a"} for i, (q, _) in enumerate(PARAPHRASES)]
    faq.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    config = RetrievalConfig(kb_dir=tmp_path / "kb")
    report = import_paths([faq], config.kb_dir, minilm_int8, config, ImportConfig(), progress=False)
    assert report.embedded == len(rows)
    kb = KnowledgeBase(config.kb_dir, minilm_int8, config)
    # Indexed at fp32: the vectors torch gives, so either backend searches the same index.
    indexed = kb.snapshot.vectors()
    cosine = np.sum(indexed * minilm.encode([q for q, _ in PARAPHRASES]), axis=1)
    assert cosine.min() > 0.9999, cosine
    found = [
        r.best.entry.id if r.best else None for r in kb.search_batch([p for _, p in PARAPHRASES])
    ]
    assert found == [f"q{i}" for i in range(len(PARAPHRASES))]
