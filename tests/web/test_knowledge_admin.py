"""The knowledge base's admin behind the REST and console routes: uploads written for an import,
and concurrent edits of one entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.web.errors import ApiError
from bot.web.knowledge_admin import importer_refusals, write_uploads
from retrieval import ImportBusy, ImportReport, NothingToImport, Problem


def test_uploads_keep_their_own_safe_names_in_order(tmp_path: Path) -> None:
    paths = write_uploads(
        tmp_path,
        [
            ("faq.csv", b"one"),
            ("../../etc/passwd", b"two"),
            ("faq.csv", b"three"),
            ("...", b"four"),
            ("Preise & Zahlung.md", b"five"),
        ],
    )
    assert [p.name for p in paths] == [
        "faq.csv",
        "passwd",
        "2-faq.csv",
        "upload-3",
        "Preise_Zahlung.md",
    ]
    assert all(p.parent == tmp_path for p in paths)
    assert [p.read_bytes() for p in paths] == [b"one", b"two", b"three", b"four", b"five"]


@pytest.mark.parametrize(
    ("refusal", "status", "code", "message"),
    [
        (KeyError("x"), 404, "entry_not_found", "no entry 'x'"),
        (
            NothingToImport(ImportReport()),
            400,
            "nothing_to_import",
            "nothing to import: no valid entry was found",
        ),
        (ImportBusy("another import is running"), 409, "import_busy", "another import is running"),
    ],
)
def test_importer_refusals_become_api_errors(
    refusal: Exception, status: int, code: str, message: str
) -> None:
    with pytest.raises(ApiError) as caught, importer_refusals(missing="no entry 'x'"):
        raise refusal
    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, message)


def test_nothing_to_import_is_the_last_entry_only_where_the_caller_says_so() -> None:
    """A delete names its answer; an import, a save or a revert gets what was rejected."""
    rejected = ImportReport(
        skipped_files=[Problem("/tmp/up/notes.exe", "", "unsupported file type")],
        rejected=[Problem("/tmp/up/pets.jsonl", "line 2", "empty answer")],
    )
    with pytest.raises(ApiError) as caught, importer_refusals(last="that is the last entry"):
        raise NothingToImport(rejected)
    assert (caught.value.code, caught.value.message) == ("last_entry", "that is the last entry")
    with pytest.raises(ApiError) as caught, importer_refusals():
        raise NothingToImport(rejected)
    assert (caught.value.status, caught.value.code) == (400, "nothing_to_import")
    assert caught.value.message == (
        "nothing to import: notes.exe: unsupported file type; pets.jsonl: empty answer"
    )


def test_a_key_error_where_no_entry_is_named_stays_a_bug() -> None:
    with pytest.raises(KeyError), importer_refusals():
        raise KeyError("x")
