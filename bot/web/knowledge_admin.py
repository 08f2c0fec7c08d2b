"""Reading and changing the knowledge base for the REST API, always through the importer.

Every change (one entry saved or deleted, files imported) is a new atomic version: readers see
the old version or the new one, never half of a change. The methods are synchronous (embedding,
FAISS, file I/O); routes call them with asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bot.web.errors import ApiError
from retrieval import (
    FaqEntry,
    ImportBusy,
    ImportConfig,
    ImportReport,
    KnowledgeBase,
    NothingToImport,
    RetrievalConfig,
    SearchResult,
    import_paths,
)
from retrieval.entries import chunk_answer, clean_text, derive_id, normalize_text
from retrieval.importer import edit_entries
from retrieval.store import (
    KbChange,
    KbMeta,
    Origin,
    kept_versions,
    read_changes,
    record_change,
    restore_version,
    version_entries,
)

SOURCE = "api"
# How long adding questions to an entry waits for another edit or import to finish.
EDIT_WAIT_S = 60.0
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def write_uploads(folder: Path, uploads: Sequence[tuple[str, bytes]]) -> list[Path]:
    """Write uploaded (file name, content) pairs into `folder`, in order, for an import.

    Each file keeps its own name, made safe, because entry ids and sources derive from it as
    with scripts/import_faq.py; a repeated name gets its position as a prefix.
    """
    paths: list[Path] = []
    for number, (filename, content) in enumerate(uploads):
        name = _SAFE_NAME.sub("_", Path(filename).name).strip("._")
        path = folder / (name or f"upload-{number}")
        if path in paths:
            path = path.with_name(f"{number}-{path.name}")
        path.write_bytes(content)
        paths.append(path)
    return paths


@contextmanager
def importer_refusals(missing: str | None = None, last: str | None = None) -> Iterator[None]:
    """Turn the importer's refusals into errors for the caller: no entry left to publish
    (NothingToImport) 400, answered with `last` where the caller removes an entry (then only
    removing the last one leaves none) and otherwise with what the importer rejected, per
    file; another writer holding the lock (ImportBusy) 409; and, where the caller names an
    entry and says what to answer, no such entry (KeyError) 404."""
    try:
        yield
    except KeyError:
        if missing is None:
            raise
        raise ApiError(404, missing, code="entry_not_found") from None
    except NothingToImport as refused:
        if last is not None:
            raise ApiError(400, last, code="last_entry") from None
        raise ApiError(400, nothing_imported(refused.report), code="nothing_to_import") from None
    except ImportBusy as error:
        raise ApiError(409, str(error), code="import_busy") from None


def nothing_imported(report: ImportReport) -> str:
    """Why an import published nothing: each rejected file or entry, by file name."""
    problems = "; ".join(f"{Path(p.path).name}: {p.reason}" for p in report.problems)
    return f"nothing to import: {problems or 'no valid entry was found'}"


class KnowledgeAdmin:
    """The live knowledge base and the importer behind the knowledge routes."""

    def __init__(
        self,
        kb: KnowledgeBase,
        kb_dir: Path,
        config: RetrievalConfig,
        import_config: ImportConfig,
    ) -> None:
        self._kb = kb
        self._kb_dir = kb_dir
        self._config = config
        self._import_config = import_config

    @property
    def version(self) -> str:
        return self._kb.version

    def entries(self) -> tuple[FaqEntry, ...]:
        """Every live entry, in stored order."""
        self._kb.refresh()
        return self._kb.snapshot.entries

    def entry(self, entry_id: str) -> FaqEntry | None:
        self._kb.refresh()
        return self._kb.entry(entry_id)

    def search(self, query: str, k: int) -> SearchResult:
        self._kb.refresh()
        return self._kb.search(query, k)

    def save(
        self,
        question: str,
        answer: str,
        alt_questions: Sequence[str] = (),
        *,
        entry_id: str | None = None,
        source: str = SOURCE,
    ) -> tuple[FaqEntry, ImportReport]:
        """Create an entry (no id: one is derived from `source` and the question) or replace one
        by id."""
        question, answer = clean_text(question), clean_text(answer)
        if not question or not answer:
            raise ValueError("an entry needs a non-empty question and answer")
        before = self.entry(entry_id) if entry_id else None
        entry = FaqEntry(
            id=entry_id or derive_id(source, question),
            question=question,
            answer=answer,
            alt_questions=tuple(a for a in (clean_text(x) for x in alt_questions) if a),
            source=before.source if before else source,
            location=before.location if before else "",
            chunks=chunk_answer(answer, self._import_config.chunk_chars),
        )
        report = edit_entries(
            self._kb_dir, self._kb.embedder, self._config, self._import_config, upsert=[entry]
        )
        self._kb.refresh()
        return entry, report

    def add_questions(
        self, entry_id: str, questions: Sequence[str]
    ) -> tuple[FaqEntry, ImportReport, int]:
        """Add questions the entry does not have yet as alternatives; returns the entry, the
        report and how many were new. The entry is read and rewritten under the importer's
        lock (waiting for another writer), so concurrent additions all survive."""
        wanted = [q for q in (clean_text(x) for x in questions) if q]
        done: list[tuple[FaqEntry, int]] = []

        def extend(entry: FaqEntry) -> FaqEntry:
            known = {normalize_text(q) for q in entry.questions}
            new: dict[str, str] = {}
            for question in wanted:
                if normalize_text(question) not in known:
                    new.setdefault(normalize_text(question), question)
            changed = dataclasses.replace(
                entry, alt_questions=(*entry.alt_questions, *new.values())
            )
            done.append((changed, len(new)))
            return changed

        try:
            report = edit_entries(
                self._kb_dir,
                self._kb.embedder,
                self._config,
                self._import_config,
                amend={entry_id: extend},
                wait=EDIT_WAIT_S,
            )
        except KeyError:
            raise ValueError(
                "the entry chosen to add the question to is gone; pick another"
            ) from None
        self._kb.refresh()
        entry, added = done[-1]
        return entry, report, added

    def delete(self, entry_id: str) -> ImportReport:
        """Remove one entry; KeyError when there is none with that id."""
        report = edit_entries(
            self._kb_dir, self._kb.embedder, self._config, self._import_config, remove=[entry_id]
        )
        self._kb.refresh()
        return report

    def import_files(self, paths: Sequence[Path], *, replace: bool = False) -> ImportReport:
        """Import uploaded files as the command-line importer does; raises NothingToImport."""
        report = import_paths(
            paths,
            self._kb_dir,
            self._kb.embedder,
            self._config,
            self._import_config,
            replace=replace,
            progress=False,
        )
        self._kb.refresh()
        return report

    # History.

    def versions(self) -> list[KbMeta]:
        """The versions still on disk (the live one and those a revert can go back to)."""
        return kept_versions(self._kb_dir)

    def version_entries(self, version: str) -> tuple[FaqEntry, ...]:
        return version_entries(self._kb_dir, version)

    def changes(self) -> list[KbChange]:
        """Who made each version and from where, oldest first."""
        return read_changes(self._kb_dir)

    def record(self, change: KbChange) -> None:
        record_change(self._kb_dir, change)

    def revert(self, version: str) -> KbMeta:
        """Make a kept version's content live again, as a new version."""
        meta = restore_version(
            self._kb_dir, version, self._config, keep=self._import_config.keep_versions
        )
        self._kb.refresh()
        return meta


async def note_change(
    admin: KnowledgeAdmin,
    made: ImportReport | KbMeta,
    author: str,
    origin: Origin,
    summary: str,
    *,
    entry_id: str | None = None,
    conversation_id: int | None = None,
    turn_id: int | None = None,
    operator: str | None = None,
) -> bool:
    """Write who made a new version, now, and from where into the change log (an fsync'd
    append, so in a worker thread). A report that changed nothing made no version: nothing is
    written and the answer is False."""
    changed = made.changed if isinstance(made, ImportReport) else True
    if made.version is None or not changed:
        return False
    change = KbChange(
        made.version,
        time.time(),
        author,
        origin,
        summary,
        entry_id=entry_id,
        conversation_id=conversation_id,
        turn_id=turn_id,
        operator=operator,
    )
    await asyncio.to_thread(admin.record, change)
    return True
