"""The knowledge base's history: kept versions' entries, change records, exact revert."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from retrieval import ImportConfig, KnowledgeBase, RetrievalConfig
from retrieval.entries import FaqEntry
from retrieval.importer import edit_entries
from retrieval.store import (
    KbChange,
    current_version,
    kept_versions,
    read_changes,
    read_snapshot,
    record_change,
    restore_version,
    version_entries,
)
from tests.fakes import HashEmbedder

ENTRIES = [
    FaqEntry("ship", "How long does shipping take?", "3-5 days.", ("delivery time",)),
    FaqEntry("pay", "Can I pay by card?", "Yes, every card.", ("credit card",)),
]


def _kb(tmp_path: Path) -> tuple[Path, HashEmbedder, RetrievalConfig, ImportConfig]:
    kb_dir = tmp_path / "kb"
    embedder = HashEmbedder()
    config = RetrievalConfig(kb_dir=kb_dir, calibrate=False)
    importing = ImportConfig(keep_versions=5)
    edit_entries(kb_dir, embedder, config, importing, upsert=ENTRIES)
    return kb_dir, embedder, config, importing


def test_a_revert_brings_back_a_versions_exact_content(tmp_path: Path) -> None:
    kb_dir, embedder, config, importing = _kb(tmp_path)
    first = read_snapshot(kb_dir, config)
    changed = FaqEntry("pay", "Can I pay by card?", "Visa only.", ("credit card", "visa?"))
    edit_entries(kb_dir, embedder, config, importing, upsert=[changed], remove=["ship"])
    kb = KnowledgeBase(kb_dir, embedder, config)
    assert kb.search("How long does shipping take?").best.entry.id == "pay"  # type: ignore[union-attr]
    restored = restore_version(kb_dir, first.meta.version, config, keep=importing.keep_versions)
    assert restored.version == current_version(kb_dir) == "v000003"
    now = read_snapshot(kb_dir, config)
    assert now.entries == first.entries
    assert np.array_equal(now.vectors(), first.vectors())
    assert (now.meta.threshold, now.meta.embedder) == (first.meta.threshold, first.meta.embedder)
    assert kb.refresh() and kb.search("shipping time").best.entry.id == "ship"  # type: ignore[union-attr]
    assert [m.version for m in kept_versions(kb_dir)] == ["v000003", "v000002", "v000001"]
    assert version_entries(kb_dir, "v000002")[0].answer == "Visa only."


def test_unknown_or_malformed_versions_are_refused(tmp_path: Path) -> None:
    kb_dir, _, config, _ = _kb(tmp_path)
    for name in ("v000009", "../kb", "v1", ""):
        with pytest.raises(FileNotFoundError):
            restore_version(kb_dir, name, config, keep=3)
        with pytest.raises(FileNotFoundError):
            version_entries(kb_dir, name)
    assert current_version(kb_dir) == "v000001"


def test_change_records_round_trip_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    kb_dir, *_ = _kb(tmp_path)
    assert read_changes(kb_dir) == []
    learned = KbChange("v000002", 1.5, "ann", "conversation", "added x <b>é", "x", 4, 9, "olaf")
    record_change(kb_dir, learned)
    with (kb_dir / "changes.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"version": "v0000')  # a write cut short by a crash
    assert read_changes(kb_dir) == [learned]
    edit = KbChange("v000003", 2.0, "ann", "edit", "changed x", "x")
    record_change(kb_dir, edit)
    assert read_changes(kb_dir) == [learned, edit]


def test_a_change_record_keeps_ids_not_the_customers_words(tmp_path: Path) -> None:
    kb_dir, *_ = _kb(tmp_path)
    learned = KbChange("v000002", 1.0, "ann", "conversation", "added x", "x", 4, 9, "olaf")
    record_change(kb_dir, learned)
    assert set(json.loads((kb_dir / "changes.jsonl").read_text())) == {
        "version",
        "at",
        "author",
        "origin",
        "summary",
        "entry_id",
        "conversation_id",
        "turn_id",
        "operator",
    }
    # A record written when the customer's wording was still kept reads without it.
    legacy = {**dataclasses.asdict(learned), "version": "v000003", "questions": ["my words"]}
    with (kb_dir / "changes.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(legacy) + "\n")
    assert read_changes(kb_dir) == [learned, dataclasses.replace(learned, version="v000003")]
