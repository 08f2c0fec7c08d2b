"""Imports swap versions under a reader in another process without ever breaking it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from retrieval import ImportConfig, RetrievalConfig, import_paths
from tests.conftest import ROOT
from tests.fakes import HashEmbedder

READER = """
import sys, time
from pathlib import Path
from retrieval import KnowledgeBase, RetrievalConfig
from tests.fakes import HashEmbedder
kb_dir, stop = Path(sys.argv[1]), Path(sys.argv[2])
kb = KnowledgeBase(kb_dir, HashEmbedder(), RetrievalConfig())
versions, searches = {kb.version}, 0
print("ready", flush=True)
while not stop.exists():
    kb.refresh()
    result = kb.search("how long does delivery take")
    assert result.hits and result.hits[0].entry.id.startswith("q"), result
    versions.add(result.kb_version)
    searches += 1
print(len(versions), searches)
"""


def write_faq(path: Path, generation: int) -> None:
    rows = [
        {"id": f"q{i}", "question": f"how long does delivery take {i}", "answer": f"v{generation}"}
        for i in range(200)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_reader_never_fails_while_imports_swap_versions(tmp_path: Path) -> None:
    src, kb_dir, stop = tmp_path / "faq.jsonl", tmp_path / "kb", tmp_path / "stop"
    embedder = HashEmbedder()

    def run_import(generation: int) -> None:
        write_faq(src, generation)
        import_paths(
            [src],
            kb_dir,
            embedder,
            RetrievalConfig(kb_dir=kb_dir),
            ImportConfig(keep_versions=1),
            replace=True,
            progress=False,
        )

    run_import(0)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(kb_dir), str(stop)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready"
        for generation in range(1, 16):
            run_import(generation)
            time.sleep(0.05)
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    versions, searches = map(int, out.split())
    assert searches > 15
    assert versions >= 3, f"reader saw only {versions} versions in {searches} searches"
