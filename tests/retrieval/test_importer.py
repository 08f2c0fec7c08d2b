"""Import into a real on-disk knowledge base: incremental updates, removal, bad input."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from retrieval import (
    ImportBusy,
    ImportConfig,
    ImportReport,
    KnowledgeBase,
    RetrievalConfig,
    current_version,
    import_paths,
)
from retrieval.entries import FaqEntry
from retrieval.importer import edit_entries
from retrieval.store import import_lock
from tests.fakes import HashEmbedder

FAQ: list[dict[str, object]] = [
    {
        "id": "return-window",
        "question": "How long do I have to return an item?",
        "answer": "You can return items within 30 days of delivery.",
        "alt_questions": ["What is the return period?"],
    },
    {
        "id": "delivery-time",
        "question": "How long does delivery take?",
        "answer": "Standard delivery takes 2 to 4 working days.",
    },
    {
        "id": "payment-methods",
        "question": "Which payment methods do you accept?",
        "answer": "We accept Visa, Mastercard, PayPal and gift cards.",
    },
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_import(
    paths: list[Path], kb: Path, embedder: HashEmbedder, *, replace: bool = False
) -> ImportReport:
    return import_paths(
        paths,
        kb,
        embedder,
        RetrievalConfig(kb_dir=kb),
        ImportConfig(keep_versions=2),
        replace=replace,
        progress=False,
    )


def test_first_import_makes_searchable_version(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    src = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    report = run_import([src], tmp_path / "kb", hash_embedder)
    assert (report.added, report.updated, report.unchanged, report.removed) == (3, 0, 0, 0)
    assert report.embedded == 4  # three questions and one alternative
    kb = KnowledgeBase(tmp_path / "kb", hash_embedder, RetrievalConfig(default_threshold=0.3))
    assert kb.search("what is the return period").best.entry.id == "return-window"  # type: ignore[union-attr]
    assert kb.search("which payment methods").hits[0].entry.id == "payment-methods"


def test_reimport_unchanged_embeds_nothing_and_keeps_version(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    src = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    first = run_import([src], tmp_path / "kb", hash_embedder)
    hash_embedder.encoded.clear()
    again = run_import([src], tmp_path / "kb", hash_embedder)
    assert hash_embedder.encoded == []
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 3, 0)
    assert again.version == first.version == current_version(tmp_path / "kb")


def test_changed_entry_is_updated_and_only_it_is_embedded(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    src = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    run_import([src], tmp_path / "kb", hash_embedder)
    changed = [dict(FAQ[0], alt_questions=["Can I still send it back?"]), *FAQ[1:]]
    write_jsonl(src, changed)
    hash_embedder.encoded.clear()
    report = run_import([src], tmp_path / "kb", hash_embedder)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 2)
    assert hash_embedder.encoded == ["Can I still send it back?"]
    kb = KnowledgeBase(tmp_path / "kb", hash_embedder, RetrievalConfig())
    assert len(kb.snapshot.entries) == 3
    assert kb.search("can i still send it back").hits[0].entry.id == "return-window"


def test_replace_removes_missing_entries_and_merge_keeps_them(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    src = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    kb_dir = tmp_path / "kb"
    run_import([src], kb_dir, hash_embedder)
    write_jsonl(src, FAQ[:2])
    merged = run_import([src], kb_dir, hash_embedder)
    assert merged.removed == 0
    replaced = run_import([src], kb_dir, hash_embedder, replace=True)
    assert replaced.removed == 1
    kb = KnowledgeBase(kb_dir, hash_embedder, RetrievalConfig())
    assert {e.id for e in kb.snapshot.entries} == {"return-window", "delivery-time"}


def test_replace_keeps_entries_of_a_file_that_failed(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", FAQ[:1])
    b = write_jsonl(tmp_path / "b.jsonl", FAQ[1:])
    kb_dir = tmp_path / "kb"
    run_import([a, b], kb_dir, hash_embedder)
    b.write_bytes(b"\x00\x01binary garbage")
    report = run_import([a, b], kb_dir, hash_embedder, replace=True)
    assert [p.path for p in report.skipped_files] == [str(b)]
    assert report.removed == 0 and report.kept_from_skipped == 2


def test_duplicate_id_with_different_content_is_rejected_with_both_places(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    rows = [*FAQ, dict(FAQ[1], answer="Delivery takes a week.")]
    src = write_jsonl(tmp_path / "faq.jsonl", rows)
    report = run_import([src], tmp_path / "kb", hash_embedder)
    assert report.added == 3
    [problem] = report.rejected
    assert problem.location == "line 4"
    assert "duplicate id 'delivery-time'" in problem.reason and "line 2" in problem.reason


def test_empty_answer_is_rejected_and_the_rest_imported(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    src = write_jsonl(
        tmp_path / "faq.jsonl", [*FAQ, {"question": "Do you ship to Mars?", "answer": " "}]
    )
    report = run_import([src], tmp_path / "kb", hash_embedder)
    assert report.added == 3
    [problem] = report.rejected
    assert (problem.path, problem.location) == (str(src), "line 4")
    assert "empty answer" in problem.reason


def test_missing_path_is_reported_and_other_files_import(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    src = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    report = run_import([tmp_path / "nope.md", src], tmp_path / "kb", hash_embedder)
    assert report.added == 3
    assert "nope.md" in report.skipped_files[0].path


def test_nothing_valid_raises_and_leaves_no_version(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="nothing to import"):
        run_import([src], tmp_path / "kb", hash_embedder)
    assert current_version(tmp_path / "kb") is None


def test_failed_write_leaves_previous_version_live(
    tmp_path: Path, hash_embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_jsonl(tmp_path / "faq.jsonl", FAQ[:2])
    kb_dir = tmp_path / "kb"
    first = run_import([src], kb_dir, hash_embedder)
    write_jsonl(src, FAQ)

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("retrieval.store.write_index", broken)
    with pytest.raises(OSError, match="disk full"):
        run_import([src], kb_dir, hash_embedder)
    assert current_version(kb_dir) == first.version
    assert not list((kb_dir / "versions").glob(".tmp-*"))
    kb = KnowledgeBase(kb_dir, hash_embedder, RetrievalConfig())
    assert len(kb.snapshot.entries) == 2


def test_second_import_while_locked_fails_fast(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    src = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    with import_lock(tmp_path / "kb"), pytest.raises(ImportBusy, match="another import"):
        run_import([src], tmp_path / "kb", hash_embedder)


def test_old_versions_are_pruned(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    src = tmp_path / "faq.jsonl"
    kb_dir = tmp_path / "kb"
    for n in range(4):
        write_jsonl(src, [dict(FAQ[0], answer=f"Within {30 + n} days.")])
        run_import([src], kb_dir, hash_embedder)
    assert sorted(p.name for p in (kb_dir / "versions").iterdir()) == ["v000003", "v000004"]


def test_large_knowledge_bases_use_hnsw_with_the_same_answers(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    src = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    results = {}
    for kind, min_rows in (("flat", 10**9), ("hnsw", 1)):
        kb_dir = tmp_path / kind
        config = RetrievalConfig(kb_dir=kb_dir, hnsw_min_rows=min_rows)
        import_paths([src], kb_dir, hash_embedder, config, ImportConfig(), progress=False)
        kb = KnowledgeBase(kb_dir, hash_embedder, config)
        assert kb.snapshot.meta.index == kind
        results[kind] = [(h.entry.id, round(h.score, 5)) for h in kb.search("return period").hits]
    assert results["flat"] == results["hnsw"]


def test_an_amending_edit_waits_for_the_lock_and_reads_under_it(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    kb_dir = tmp_path / "kb"
    run_import([write_jsonl(tmp_path / "faq.jsonl", FAQ)], kb_dir, hash_embedder)
    config, imports = RetrievalConfig(kb_dir=kb_dir), ImportConfig()

    def ask_also(question: str) -> Callable[[FaqEntry], FaqEntry]:
        return lambda e: replace(e, alt_questions=(*e.alt_questions, question))

    def amend(question: str, wait: float) -> ImportReport:
        return edit_entries(
            kb_dir,
            hash_embedder,
            config,
            imports,
            amend={"delivery-time": ask_also(question)},
            wait=wait,
        )

    with pytest.raises(KeyError, match="gone-entry"):
        edit_entries(kb_dir, hash_embedder, config, imports, amend={"gone-entry": ask_also("x")})
    with import_lock(kb_dir), pytest.raises(ImportBusy):
        amend("refused?", 0.0)
    # A writer holds the lock while two amending edits wait: each reads the entry once it
    # holds the lock, so neither loses the other's question.
    with ThreadPoolExecutor(2) as pool:
        with import_lock(kb_dir):
            waiting = [pool.submit(amend, q, 60.0) for q in ("how fast?", "when will it come?")]
            time.sleep(0.3)
            assert not any(f.done() for f in waiting)
        assert [f.result().updated for f in waiting] == [1, 1]
    entry = KnowledgeBase(kb_dir, hash_embedder, config).entry("delivery-time")
    assert entry is not None
    assert sorted(entry.alt_questions) == ["how fast?", "when will it come?"]
