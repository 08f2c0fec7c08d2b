"""The knowledge base's admin behind the REST and console routes: uploads written for an import,
and concurrent edits of one entry."""

from __future__ import annotations

from pathlib import Path

from bot.web.knowledge_admin import write_uploads


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
