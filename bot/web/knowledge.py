"""REST for the knowledge base: entries, search, edits and file imports (admin keys).

Every change goes through the importer and becomes a new atomic version.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, UploadFile
from pydantic import BaseModel, Field

from bot.web.access import AdminKey, Served
from bot.web.errors import ApiError, documented
from bot.web.keys import ApiKey
from bot.web.knowledge_admin import (
    KnowledgeAdmin,
    importer_refusals,
    note_change,
    write_uploads,
)
from retrieval import FaqEntry, ImportReport, NothingToImport
from retrieval.store import Origin

router = APIRouter(tags=["knowledge"])
_KEYED = documented(401, 403, 429)
_FOUND = documented(400, 401, 403, 404, 429)
_WRITE = documented(400, 401, 403, 404, 409, 429)
EntryId = Annotated[str, Path(min_length=1, max_length=200)]


class EntryOut(BaseModel):
    id: str
    question: str
    answer: str
    alt_questions: list[str]
    source: str


class EntryIn(BaseModel):
    """A new or changed entry; the id of a new one is derived from its question."""

    question: str = Field(min_length=1, max_length=1000)
    answer: str = Field(min_length=1, max_length=20000)
    alt_questions: list[Annotated[str, Field(max_length=1000)]] = Field(default=[], max_length=50)


class HitOut(BaseModel):
    entry: EntryOut
    score: float
    matched_question: str


class SearchOut(BaseModel):
    query: str
    in_scope: bool
    threshold: float
    kb_version: str
    hits: list[HitOut]


class ProblemOut(BaseModel):
    path: str
    location: str
    message: str


class ReportOut(BaseModel):
    """What a change did: counts, the new live version, and each file's or entry's problem."""

    version: str | None
    added: int
    updated: int
    unchanged: int
    removed: int
    files: list[str]
    problems: list[ProblemOut]


class SavedOut(BaseModel):
    entry: EntryOut
    report: ReportOut


@router.get("/api/kb/entries", responses=_KEYED)
async def list_entries(
    key: AdminKey,
    found: Served,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[EntryOut]:
    """Entries of the live version, in stored order."""
    entries = await asyncio.to_thread(_admin(found).entries)
    return [_entry(e) for e in entries[offset : offset + limit]]


@router.get("/api/kb/search", responses=_FOUND)
async def search(
    key: AdminKey,
    found: Served,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> SearchOut:
    """The entries the bot would consider for a question, with their scores."""
    result = await asyncio.to_thread(_admin(found).search, q, k)
    return SearchOut(
        query=result.query,
        in_scope=result.in_scope,
        threshold=result.threshold,
        kb_version=result.kb_version,
        hits=[
            HitOut(entry=_entry(h.entry), score=h.score, matched_question=h.matched_question)
            for h in result.hits
        ],
    )


@router.get("/api/kb/entries/{entry_id:path}", responses=_FOUND)
async def read_entry(entry_id: EntryId, key: AdminKey, found: Served) -> EntryOut:
    entry = await asyncio.to_thread(_admin(found).entry, entry_id)
    if entry is None:
        raise ApiError(404, f"no entry {entry_id!r}", code="entry_not_found")
    return _entry(entry)


@router.post("/api/kb/entries", status_code=201, responses=_WRITE)
async def create_entry(body: EntryIn, key: AdminKey, found: Served) -> SavedOut:
    """Add an entry; the knowledge base gets a new version with it."""
    return await _save(found, body, None, key)


@router.put("/api/kb/entries/{entry_id:path}", responses=_WRITE)
async def update_entry(entry_id: EntryId, body: EntryIn, key: AdminKey, found: Served) -> SavedOut:
    """Replace an entry's question, answer and alternatives as a new version."""
    if await asyncio.to_thread(_admin(found).entry, entry_id) is None:
        raise ApiError(404, f"no entry {entry_id!r}", code="entry_not_found")
    return await _save(found, body, entry_id, key)


@router.delete("/api/kb/entries/{entry_id:path}", responses=_WRITE)
async def delete_entry(entry_id: EntryId, key: AdminKey, found: Served) -> ReportOut:
    """Remove an entry as a new version."""
    with importer_refusals(
        f"no entry {entry_id!r}", "that is the last entry; a knowledge base cannot be empty"
    ):
        report = await asyncio.to_thread(_admin(found).delete, entry_id)
    await _record(found, report, key, "delete", f"deleted {entry_id} (API)", entry_id)
    return _report(report)


@router.post("/api/kb/import", responses={**_WRITE, **documented(413)})
async def import_files(
    key: AdminKey,
    found: Served,
    files: Annotated[list[UploadFile], File(description="FAQ documents, any supported format")],
    replace: Annotated[bool, Query()] = False,
) -> ReportOut:
    """Import files as scripts/import_faq.py does; problems are listed per file and entry."""
    admin = _admin(found)
    uploads = [(upload.filename or "", await upload.read()) for upload in files]
    with tempfile.TemporaryDirectory(prefix="supportbot-import-") as folder:
        paths = await asyncio.to_thread(write_uploads, FilePath(folder), uploads)
        with importer_refusals():  # nothing valid: each file's problems, not "last entry"
            report = await asyncio.to_thread(admin.import_files, paths, replace=replace)
    names = ", ".join(FilePath(f).name for f in report.files)
    await _record(found, report, key, "import", f"imported {names} (API): {report.summary()}")
    return _report(report, folder)


async def _record(
    found: Served,
    report: ImportReport,
    key: ApiKey,
    origin: Origin,
    summary: str,
    entry_id: str | None = None,
) -> None:
    """Write which key made the new version into the knowledge base's change log."""
    await note_change(_admin(found), report, f"key {key.name}", origin, summary, entry_id=entry_id)


async def _save(found: Served, body: EntryIn, entry_id: str | None, key: ApiKey) -> SavedOut:
    with importer_refusals():
        try:
            entry, report = await asyncio.to_thread(
                _admin(found).save,
                body.question,
                body.answer,
                body.alt_questions,
                entry_id=entry_id,
            )
        except NothingToImport:
            raise  # importer_refusals answers it with what the importer rejected
        except ValueError as error:
            raise ApiError(400, str(error), code="invalid_entry") from None
    await _record(found, report, key, "edit", f"saved {entry.id} (API)", entry.id)
    return SavedOut(entry=_entry(entry), report=_report(report))


def _admin(found: Served) -> KnowledgeAdmin:
    if found.knowledge is None:
        raise ApiError(404, "this server does not edit a knowledge base", code="no_knowledge_base")
    return found.knowledge


def _entry(entry: FaqEntry) -> EntryOut:
    return EntryOut(
        id=entry.id,
        question=entry.question,
        answer=entry.answer,
        alt_questions=list(entry.alt_questions),
        source=entry.source,
    )


def _report(report: ImportReport, folder: str = "") -> ReportOut:
    def shown(path: str) -> str:  # the uploaded file's name, not the temporary folder
        return FilePath(path).name if folder and path.startswith(folder) else path

    return ReportOut(
        version=report.version,
        added=report.added,
        updated=report.updated,
        unchanged=report.unchanged,
        removed=report.removed,
        files=[shown(f) for f in report.files],
        problems=[
            ProblemOut(path=shown(p.path), location=p.location, message=p.reason)
            for p in report.problems
        ],
    )
