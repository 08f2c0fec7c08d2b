"""An unchanged re-import through scripts/import_faq.py: no model, no new version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from retrieval import Embedder, ImportConfig, RetrievalConfig, current_version, import_paths
from tests.conftest import EXAMPLES, ROOT

# What loading a model (or the search-only scikit-learn) would bring into the process.
HEAVY = ("torch", "sentence_transformers", "transformers", "onnxruntime", "sklearn")

RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
import import_faq
status = import_faq.main(sys.argv[2:])
heavy = sorted(name for name in {heavy!r} if name in sys.modules)
print(json.dumps({{"status": status, "heavy": heavy}}))
"""


def test_unchanged_reimport_loads_no_model_and_keeps_the_version(
    tmp_path: Path, minilm: Embedder
) -> None:
    kb = tmp_path / "kb"
    config = RetrievalConfig(kb_dir=kb)
    first = import_paths([EXAMPLES / "kb"], kb, minilm, config, ImportConfig(), progress=False)
    assert first.changed and not first.problems
    before = current_version(kb)
    versions = sorted(p.name for p in (kb / "versions").iterdir())
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN.format(heavy=HEAVY),
            str(ROOT / "scripts"),
            str(EXAMPLES / "kb"),
            "--kb",
            str(kb),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no ./supportbot.toml: the defaults, as for the import above
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result == {"status": 0, "heavy": []}, done.stdout
    assert f"nothing changed; live version {before}" in lines
    assert current_version(kb) == before
    assert sorted(p.name for p in (kb / "versions").iterdir()) == versions
