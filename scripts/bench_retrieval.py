"""Benchmark the embedder backends and the knowledge base on a 10k-entry knowledge base.

    python scripts/bench_retrieval.py [--entries 10000] [--queries 300] \
        [--backends torch,onnx,onnx-int8] [--skip-index-kinds] [--json]

Builds the knowledge base from the paraphrases of ../shared/data (clinc150 and banking77),
then measures, in the same run and interleaved so load affects all alike:
  * each embedder backend: single-query encode p50/p95 and batched sentences/s, and the
    ratios to torch (targets for onnx-int8: >= 2x on both);
  * single-query latency of `KnowledgeBase.search` vs `Embedder.encode([query])`;
  * batched throughput of `KnowledgeBase.search_batch` vs `Embedder.encode(queries)`;
  * the first import and the re-import of the unchanged knowledge base, each as a run of
    scripts/import_faq.py (wall and CPU seconds; target for the re-import <= 2 s and no model
    loaded), and the unchanged re-import in process;
  * exact (flat) vs HNSW search: latency and recall@10 at growing index sizes, which is how
    the default `hnsw_min_rows` was chosen.
Targets: p95 single ratio <= 1.3, batched throughput ratio >= 0.8.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
from _cli import add_common, setup

from retrieval import ImportConfig, KnowledgeBase, RetrievalConfig, import_paths
from retrieval.embedders import BACKENDS, DeferredEmbedder, Embedder, configured_embedder
from retrieval.index import build_index

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def make_faq(path: Path, entries: int) -> list[str]:
    """Write a FAQ of `entries` entries (a question and two paraphrases each); return queries."""
    texts: list[str] = []
    queries: list[str] = []
    for name in ("clinc150", "banking77"):
        folder = DATA / name
        if not folder.is_dir():
            sys.exit(f"benchmark data missing: {folder} (the shared evaluation data)")
        for line in (folder / "faq.jsonl").open(encoding="utf-8"):
            row = json.loads(line)
            texts.extend([row["question"], *row["alt_questions"]])
        queries.extend(json.loads(line)["query"] for line in (folder / "queries_dev.jsonl").open())
    rng = np.random.default_rng(0)
    rng.shuffle(texts)
    need = entries * 3
    pool = [
        f"{t} ({i // len(texts)})" if i >= len(texts) else t
        for i, t in enumerate(texts[j % len(texts)] for j in range(need))
    ]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(entries):
            q, a1, a2 = pool[3 * i : 3 * i + 3]
            row = {"id": f"e{i}", "question": q, "answer": f"answer {i}", "alt_questions": [a1, a2]}
            fh.write(json.dumps(row) + "\n")
    return queries


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def bench_single(kb: KnowledgeBase, embedder: Embedder, queries: list[str]) -> dict[str, float]:
    raw, full = [], []
    for q in queries[:20]:  # warm-up
        kb.search(q)
    for q in queries:
        t0 = time.perf_counter()
        embedder.encode([q])
        t1 = time.perf_counter()
        kb.search(q)
        t2 = time.perf_counter()
        raw.append((t1 - t0) * 1000)
        full.append((t2 - t1) * 1000)
    (r50, r95), (f50, f95) = percentiles(raw), percentiles(full)
    return {
        "raw_p50_ms": r50,
        "raw_p95_ms": r95,
        "search_p50_ms": f50,
        "search_p95_ms": f95,
        "p95_ratio": f95 / r95,
    }


def bench_batch(kb: KnowledgeBase, embedder: Embedder, queries: list[str]) -> dict[str, float]:
    raw_s, full_s = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        embedder.encode(queries)
        t1 = time.perf_counter()
        kb.search_batch(queries)
        t2 = time.perf_counter()
        raw_s.append(t1 - t0)
        full_s.append(t2 - t1)
    raw_qps, full_qps = len(queries) / min(raw_s), len(queries) / min(full_s)
    return {"raw_qps": raw_qps, "search_qps": full_qps, "throughput_ratio": full_qps / raw_qps}


def bench_backends(
    config: RetrievalConfig, names: list[str], queries: list[str]
) -> dict[str, dict[str, float]]:
    """Single-query and batched encode speed of each backend, interleaved query by query."""
    embedders = {name: configured_embedder(replace(config, backend=name)) for name in names}
    for embedder in embedders.values():
        embedder.encode(queries[:20])  # warm-up
    single: dict[str, list[float]] = {name: [] for name in names}
    for q in queries:
        for name, embedder in embedders.items():
            t0 = time.perf_counter()
            embedder.encode([q])
            single[name].append((time.perf_counter() - t0) * 1000)
    batched: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(3):
        for name, embedder in embedders.items():
            t0 = time.perf_counter()
            embedder.encode(queries)
            batched[name].append(time.perf_counter() - t0)
    out = {}
    for name in names:
        p50, p95 = percentiles(single[name])
        out[name] = {
            "single_p50_ms": p50,
            "single_p95_ms": p95,
            "batched_per_s": len(queries) / min(batched[name]),
        }
    if "torch" in out:
        base = out["torch"]
        for row in out.values():
            row["single_p50_speedup"] = base["single_p50_ms"] / row["single_p50_ms"]
            row["batched_speedup"] = row["batched_per_s"] / base["batched_per_s"]
    return out


def run_import_cli(
    faq: Path, kb_dir: Path, config_file: Path | None, expect: str
) -> tuple[float, float]:
    """Run `scripts/import_faq.py` as a user does (the benchmark's config, same working
    folder); its wall and CPU seconds (user + system)."""
    script = Path(__file__).resolve().parent / "import_faq.py"
    command = [sys.executable, str(script), str(faq), "--kb", str(kb_dir), "--no-progress"]
    if config_file is not None:
        command += ["--config", str(config_file)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or expect not in done.stdout:
        sys.exit(f"import failed (wanted {expect!r}): {done.stdout}{done.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def bench_reimport(
    faq: Path, config: RetrievalConfig, config_file: Path | None
) -> dict[str, object]:
    """Re-import the unchanged knowledge base: as `scripts/import_faq.py`, then in process."""
    cli, cli_cpu = run_import_cli(faq, config.kb_dir, config_file, "nothing changed")
    deferred = DeferredEmbedder(config)
    t0 = time.perf_counter()
    report = import_paths([faq], config.kb_dir, deferred, config, ImportConfig(), progress=False)
    in_process = time.perf_counter() - t0
    assert not report.changed, report.summary()
    return {
        "reimport_cli_s": cli,
        "reimport_cli_cpu_s": cli_cpu,
        "reimport_unchanged_s": in_process,
        "reimport_loaded_model": deferred.loaded,
    }


def bench_index_kinds(vectors: np.ndarray, queries: np.ndarray) -> list[dict[str, float]]:
    """Flat vs HNSW at growing sizes (real vectors plus jittered copies)."""
    rng = np.random.default_rng(1)
    rows = []
    for size in (25_000, 100_000, 200_000):
        reps = -(-size // len(vectors))
        data = np.concatenate(
            [vectors + (rng.normal(0, 0.02, vectors.shape) if r else 0) for r in range(reps)]
        )[:size].astype(np.float32)
        faiss.normalize_L2(data)
        flat = build_index(data, RetrievalConfig(hnsw_min_rows=10**12))
        t0 = time.perf_counter()
        hnsw = build_index(data, RetrievalConfig(hnsw_min_rows=0))
        build_s = time.perf_counter() - t0
        timings: dict[str, list[float]] = {"flat": [], "hnsw": []}
        found: dict[str, np.ndarray] = {}
        for name, index in (("flat", flat), ("hnsw", hnsw)):
            out = []
            for q in queries:
                t = time.perf_counter()
                out.append(index.search(q[None, :], 10)[1][0])
                timings[name].append((time.perf_counter() - t) * 1000)
            found[name] = np.array(out)
        recall = np.mean(
            [len(set(a) & set(b)) / 10 for a, b in zip(found["flat"], found["hnsw"], strict=True)]
        )
        rows.append(
            {
                "rows": size,
                "flat_p50_ms": percentiles(timings["flat"])[0],
                "hnsw_p50_ms": percentiles(timings["hnsw"])[0],
                "hnsw_recall_at_10": float(recall),
                "hnsw_build_s": build_s,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--skip-index-kinds", action="store_true")
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"embedder backends to compare (default: {','.join(BACKENDS)})",
    )
    parser.add_argument("--json", action="store_true")
    add_common(parser)
    args = parser.parse_args(argv)
    settings = setup(args)
    names = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; valid: {', '.join(BACKENDS)}")
    embedder = configured_embedder(settings.retrieval)
    results: dict[str, object] = {"entries": args.entries, "backend": settings.retrieval.backend}
    with tempfile.TemporaryDirectory(prefix="bench-kb-") as tmp:
        faq, kb_dir = Path(tmp) / "faq.jsonl", Path(tmp) / "kb"
        queries = make_faq(faq, args.entries)
        rng = np.random.default_rng(2)
        sample = [queries[i] for i in rng.choice(len(queries), args.queries, replace=False)]
        config = replace(settings.retrieval, kb_dir=kb_dir)
        results["import_cli_s"], results["import_cli_cpu_s"] = run_import_cli(
            faq, kb_dir, args.config, "embedded"
        )
        results.update(bench_reimport(faq, config, args.config))
        results["backends"] = bench_backends(config, names, sample)
        kb = KnowledgeBase(kb_dir, embedder, config)
        results["index"] = kb.snapshot.meta.index
        results["rows"] = kb.snapshot.meta.rows
        results["single"] = bench_single(kb, embedder, sample)
        results["batch"] = bench_batch(kb, embedder, sample)
        if not args.skip_index_kinds:
            results["index_kinds"] = bench_index_kinds(
                kb.snapshot.vectors(), embedder.encode(sample[:100])
            )
    single, batch = results["single"], results["batch"]
    assert isinstance(single, dict) and isinstance(batch, dict)
    print(f"knowledge base: {args.entries} entries, {results['rows']} rows, {results['index']}")
    print(
        f"scripts/import_faq.py ({results['backend']}): first import "
        f"{results['import_cli_s']:.1f} s ({results['import_cli_cpu_s']:.1f} s CPU), unchanged "
        f"re-import {results['reimport_cli_s']:.2f} s ({results['reimport_cli_cpu_s']:.2f} s CPU;"
        f" target <= 2 s); in process {results['reimport_unchanged_s']:.2f} s (model loaded: "
        f"{results['reimport_loaded_model']})"
    )
    backends = results["backends"]
    assert isinstance(backends, dict)
    for name, row in backends.items():
        ratios = (
            f", {row['single_p50_speedup']:.2f}x / {row['batched_speedup']:.2f}x torch"
            if "batched_speedup" in row
            else ""
        )
        print(
            f"{name:>10}: single p50/p95 {row['single_p50_ms']:.2f}/{row['single_p95_ms']:.2f} ms"
            f", batched {row['batched_per_s']:.0f} sentences/s{ratios}"
        )
    print(
        f"single query p50/p95: raw encode {single['raw_p50_ms']:.1f}/{single['raw_p95_ms']:.1f}"
        f" ms, search {single['search_p50_ms']:.1f}/{single['search_p95_ms']:.1f} ms, "
        f"p95 ratio {single['p95_ratio']:.2f} (target <= 1.3)"
    )
    print(
        f"batched: raw encode {batch['raw_qps']:.0f} q/s, search {batch['search_qps']:.0f} q/s, "
        f"ratio {batch['throughput_ratio']:.2f} (target >= 0.8)"
    )
    for row in results.get("index_kinds", []):  # type: ignore[attr-defined]
        print(
            f"{row['rows']:>7} rows: flat {row['flat_p50_ms']:.2f} ms, hnsw "
            f"{row['hnsw_p50_ms']:.2f} ms, hnsw recall@10 {row['hnsw_recall_at_10']:.3f}, "
            f"hnsw build {row['hnsw_build_s']:.1f} s"
        )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
