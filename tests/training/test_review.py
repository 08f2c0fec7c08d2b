"""scripts/retrain.py review as a person runs it, and the prompt one draft at a time."""

from __future__ import annotations

import json
from pathlib import Path

from retrieval import Embedder, ImportConfig, RetrievalConfig
from retrieval.importer import edit_entries
from tests.training.test_drafts import GIFT, PARKING, RETURNS, SHIPPING, fill
from tests.training.test_retrain_script import _run
from training.drafts import Draft, read_drafts
from training.review import review_interactively


def test_the_prompt_approves_edits_rejects_and_stops() -> None:
    drafts = [
        Draft("d-1", "new", "where can I park", PARKING),
        Draft("d-2", "new", "gift cards?", GIFT),
        Draft("d-3", "new", "what about x", "x"),
        Draft("d-4", "new", "what about y", "y"),
    ]
    replies = iter(["?", "a", "e", "", "Gift cards cost ten euros.", "r", "q"])
    shown: list[str] = []

    out = review_interactively(drafts, lambda _: next(replies), shown.append)

    assert [(d.status, d.answer) for d in out] == [
        ("approved", PARKING),
        ("approved", "Gift cards cost ten euros."),
        ("rejected", "x"),
        ("pending", "y"),
    ]
    assert any("[a]pprove" in line for line in shown)


async def test_review_proposes_decides_and_applies(tmp_path: Path, minilm: Embedder) -> None:
    retrieval = RetrievalConfig(kb_dir=tmp_path / "kb")
    edit_entries(retrieval.kb_dir, minilm, retrieval, ImportConfig(), upsert=[SHIPPING, RETURNS])
    await fill(tmp_path / "log.db")
    config = tmp_path / "supportbot.toml"
    config.write_text(f'[retrieval]\nkb_dir = "{retrieval.kb_dir}"\n')
    drafts = tmp_path / "drafts.jsonl"
    common = (
        "--config",
        str(config),
        "--log-db",
        str(tmp_path / "log.db"),
        "--drafts",
        str(drafts),
    )

    listed = _run("review", *common, "--held-out-share", "0", cwd=tmp_path)

    assert listed.returncode == 0, listed.stderr
    proposed = read_drafts(drafts)
    assert proposed and all(d.status == "pending" for d in proposed)
    assert f"A: {PARKING}" in listed.stdout
    first, *rest = proposed
    decided = _run(
        "review", *common, "--no-propose", "--reject", first.id, "--approve-all", cwd=tmp_path
    )
    assert decided.returncode == 0, decided.stderr
    assert [d.status for d in read_drafts(drafts)] == ["rejected"] + ["approved"] * len(rest)

    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        json.dumps({"query": "how long does delivery take", "faq_id": "shipping"}) + "\n"
    )
    applied = _run(
        "review", *common, "--no-propose", "--apply", "--queries", str(queries), cwd=tmp_path
    )
    assert applied.returncode == 0, applied.stderr
    assert "knowledge base: " in applied.stdout  # live, or kept with the gate's reason

    unknown = _run("review", *common, "--no-propose", "--approve", "d-nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "no draft 'd-nope'" in unknown.stderr
