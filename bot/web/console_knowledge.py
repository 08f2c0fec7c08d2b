"""The console's knowledge pages under /console/knowledge: entries, imports, history, canned
replies, and turning an operator's answer into an entry.

Operators read; only admins change the knowledge base or the canned replies. Every change goes
through the importer as a new atomic version, and a line in the knowledge base's change log says
who made it and from where (for an entry learned from a conversation: the conversation, the
operator's turn and who wrote it; ids only, never the customer's words, so erasing a customer
leaves nothing of theirs there). URLs carry entry ids and version names only; entries made here
get ids without their text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from bot.web.canned import CannedReplies
from bot.web.console import (
    RATING_QUESTION,
    Admin,
    Found,
    Operator,
    _back,
    _conversation,
    _page,
    _when,
)
from bot.web.errors import ApiError
from bot.web.knowledge_admin import (
    KnowledgeAdmin,
    importer_refusals,
    note_change,
    write_uploads,
)
from bot.web.users import Session
from engine.log import Conversation, Turn
from engine.policy import asks_for_human
from retrieval import FaqEntry, Hit, ImportBusy, ImportReport, NothingToImport
from retrieval.entries import normalize_text
from retrieval.store import KbChange, Origin

log = logging.getLogger(__name__)

SOURCE = "console"
PAGE_ROWS = 50
# Customer turns kept as the question(s) an operator's reply answered, most recent last.
MAX_QUESTIONS = 3
# Suggested replies remembered (an open conversation page reloads on every new message).
SUGGESTIONS_KEPT = 512

router = APIRouter(prefix="/console/knowledge", include_in_schema=False)
Text = Annotated[str, Form(max_length=20000)]
MaybeText = Annotated[str, Form(max_length=20000)]


def _admin(found: Found) -> KnowledgeAdmin:
    if found.knowledge is None:
        raise ApiError(404, "this server does not edit a knowledge base", code="no_knowledge_base")
    return found.knowledge


def _canned(request: Request) -> CannedReplies:
    return CannedReplies(request.app.state.services.config.users_path)


# Browsing.


@router.get("")
async def entries_page(
    session: Operator, found: Found, q: str = "", offset: int = 0, saved: str = ""
) -> Response:
    admin = _admin(found)
    entries = await asyncio.to_thread(admin.entries)
    query = q.strip()[:500]
    hits: tuple[Hit, ...] = ()
    if query:
        wanted = normalize_text(query)
        entries = tuple(e for e in entries if any(wanted in normalize_text(t) for t in _texts(e)))
        hits = (await asyncio.to_thread(admin.search, query, 5)).hits
    offset = max(0, offset)
    return _page(
        "knowledge.html",
        session=session,
        entries=entries[offset : offset + PAGE_ROWS],
        total=len(entries),
        offset=offset,
        rows=PAGE_ROWS,
        q=query,
        hits=hits,
        version=admin.version,
        saved=saved,
    )


def _texts(entry: FaqEntry) -> tuple[str, ...]:
    return (entry.id, *entry.questions, entry.answer)


@router.get("/entry")
async def entry_page(session: Operator, found: Found, id: str) -> Response:
    entry = await asyncio.to_thread(_admin(found).entry, id)
    if entry is None:
        raise ApiError(404, "no such entry", code="entry_not_found")
    form = EntryForm(entry.question, "\n".join(entry.alt_questions), entry.answer, entry_id=id)
    return _form_page(session, form, entry=entry)


@router.get("/new")
async def new_page(session: Admin) -> Response:
    return _form_page(session, EntryForm("", "", ""))


@dataclass(frozen=True, slots=True)
class EntryForm:
    """What the entry form shows: the texts, the entry it edits, where a draft came from."""

    question: str
    alternatives: str
    answer: str
    entry_id: str = ""
    conversation_id: int | None = None
    turn_id: int | None = None
    target: str = ""


def _form_page(
    session: Session,
    form: EntryForm,
    *,
    entry: FaqEntry | None = None,
    targets: Sequence[Hit] = (),
    error: str | None = None,
    status: int = 200,
) -> Response:
    return _page(
        "knowledge_entry.html",
        status,
        session=session,
        form=form,
        entry=entry,
        targets=targets,
        error=error,
    )


# Turning an answer into an entry.


@router.post("/draft")
async def draft(
    session: Admin,
    found: Found,
    question: Text,
    answer: Text,
    alternatives: MaybeText = "",
    conversation_id: Annotated[int | None, Form()] = None,
    turn_id: Annotated[int | None, Form()] = None,
) -> Response:
    """The entry form filled in from a conversation (or a cluster of questions); saves nothing."""
    form = EntryForm(
        question.strip(),
        alternatives.strip(),
        answer.strip(),
        conversation_id=conversation_id,
        turn_id=turn_id,
    )
    targets = await _targets(found, question)
    return _form_page(session, form, targets=targets)


async def _targets(found: Found, question: str) -> tuple[Hit, ...]:
    """The entries closest to a question: the ones its words could join as an alternative."""
    if not question.strip():
        return ()
    return (await asyncio.to_thread(_admin(found).search, question.strip(), 5)).hits


def unanswered_questions(turns: Sequence[Turn]) -> dict[int, tuple[str, ...]]:
    """For each operator reply, the customer's messages before it that the bot did not answer.

    A bot answer settles everything asked before it; a request for a person, a rating and the
    rating question are not questions.
    """
    pending: list[str] = []
    found: dict[int, tuple[str, ...]] = {}
    for turn in turns:
        if turn.role == "customer":
            text = turn.text.strip()
            if sum(c.isalpha() for c in text) >= 3 and not asks_for_human(text):
                pending = [*pending, text][-MAX_QUESTIONS:]
        elif turn.role == "bot":
            if turn.action == "answer":
                pending = []
        elif turn.text != RATING_QUESTION and pending:
            found[turn.id] = tuple(pending)
            pending = []
    return found


@router.post("/save")
async def save(
    request: Request,
    session: Admin,
    found: Found,
    question: Text,
    answer: MaybeText = "",
    alternatives: MaybeText = "",
    entry_id: Annotated[str, Form(max_length=200)] = "",
    target: Annotated[str, Form(max_length=200)] = "",
    conversation_id: Annotated[int | None, Form()] = None,
    turn_id: Annotated[int | None, Form()] = None,
) -> Response:
    """Create or change an entry, or add a conversation's words to an existing entry."""
    admin = _admin(found)
    alts = [line.strip() for line in alternatives.splitlines() if line.strip()]
    form = EntryForm(
        question, alternatives, answer, entry_id, conversation_id, turn_id, target=target
    )
    origin: Origin = "edit" if conversation_id is None else "conversation"
    operator = await _operator(found, conversation_id, turn_id)
    try:
        if target:
            saved, report, added = await asyncio.to_thread(
                admin.add_questions, target, [question, *alts]
            )
            summary = f"{added} alternative question(s) added to {saved.id}"
        else:
            given = entry_id or _new_id(question)
            if entry_id and await asyncio.to_thread(admin.entry, entry_id) is None:
                raise ValueError("that entry was deleted meanwhile; save it as a new one")
            saved, report = await asyncio.to_thread(
                admin.save, question, answer, alts, entry_id=given, source=SOURCE
            )
            summary = f"{'changed' if entry_id else 'added'} {saved.id}"
    except (ValueError, ImportBusy) as error:
        targets = await _targets(found, question) if conversation_id or target else ()
        status = 409 if isinstance(error, ImportBusy) else 400
        return _form_page(session, form, targets=targets, error=str(error), status=status)
    if await note_change(
        admin,
        report,
        session.user.name,
        origin,
        summary,
        entry_id=saved.id,
        conversation_id=conversation_id,
        turn_id=turn_id,
        operator=operator,
    ):
        log.info(
            "kb %s version=%s entry=%s conversation=%s turn=%s",
            origin,
            report.version,
            saved.id,
            conversation_id,
            turn_id,
        )
    return _back(f"/console/knowledge/entry?id={_quote(saved.id)}")


def _new_id(question: str) -> str:
    """An id that does not carry the question's text (it may be a customer's words)."""
    digest = hashlib.sha1(f"{normalize_text(question)}\n{time.time_ns()}".encode()).hexdigest()
    return f"{SOURCE}/{digest[:12]}"


def _quote(value: str) -> str:
    return quote(value, safe="/")


async def _operator(found: Found, conversation_id: int | None, turn_id: int | None) -> str | None:
    """Who wrote the operator's reply the entry was made from, read from the log."""
    if conversation_id is None:
        return None
    conversation = await _conversation(found, conversation_id)
    turn = next((t for t in conversation.turns if t.id == turn_id), None)
    return _operator_of(conversation, turn)


def _operator_of(conversation: Conversation, turn: Turn | None) -> str | None:
    """Who held the hand-over the turn was written in (who closed it, else who holds it)."""
    if turn is None:
        return None
    for handover in conversation.handovers:
        closed = handover.closed_at if handover.closed_at is not None else float("inf")
        if handover.opened_at <= turn.created_at <= closed:
            return handover.operator_id or handover.assignee
    return None


@router.post("/delete")
async def delete(
    session: Admin, found: Found, entry_id: Annotated[str, Form(max_length=200)]
) -> Response:
    admin = _admin(found)
    with importer_refusals(
        missing="no such entry", last="that is the last entry; keep at least one"
    ):
        report = await asyncio.to_thread(admin.delete, entry_id)
    await note_change(
        admin, report, session.user.name, "delete", f"deleted {entry_id}", entry_id=entry_id
    )
    return _back("/console/knowledge?saved=deleted")


# Importing files.


@router.get("/import")
async def import_page(session: Admin) -> Response:
    return _page("knowledge_import.html", session=session, report=None, error=None)


@router.post("/import")
async def import_files(
    session: Admin,
    found: Found,
    files: Annotated[list[UploadFile], File()],
    replace: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Import uploaded files as scripts/import_faq.py does, and show each file's problems."""
    admin = _admin(found)
    uploads = [(upload.filename or "", await upload.read()) for upload in files]
    with tempfile.TemporaryDirectory(prefix="supportbot-console-import-") as folder:
        paths = await asyncio.to_thread(write_uploads, Path(folder), uploads)
        names = {
            str(path): filename or path.name
            for path, (filename, _) in zip(paths, uploads, strict=True)
        }
        error = None
        report: ImportReport | None = None
        try:
            report = await asyncio.to_thread(admin.import_files, paths, replace=bool(replace))
        except NothingToImport as refused:
            report, error = refused.report, "Nothing was imported: no valid entry was found."
        except ImportBusy as busy:
            error = str(busy)
    if report is not None and error is None:
        shown = ", ".join(sorted(names.get(f, Path(f).name) for f in report.files))
        summary = f"imported {shown}: {report.summary()}"
        await note_change(admin, report, session.user.name, "import", summary)
    problems = [
        (names.get(p.path, Path(p.path).name), p.location, p.reason)
        for p in (report.problems if report else [])
    ]
    return _page(
        "knowledge_import.html",
        400 if error else 200,
        session=session,
        report=report,
        problems=problems,
        error=error,
    )


# History.


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One version in the history: its metadata, its change record and how its entries differ
    from the version before it (when that one is still kept)."""

    version: str
    created: str
    entries: int
    kept: bool
    live: bool
    change: KbChange | None
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    compared: bool = False


@router.get("/history")
async def history(session: Operator, found: Found) -> Response:
    admin = _admin(found)
    rows = await asyncio.to_thread(_history, admin)
    return _page("knowledge_history.html", session=session, rows=rows, when=_when)


def _history(admin: KnowledgeAdmin) -> list[VersionRow]:
    changes = {c.version: c for c in admin.changes()}
    kept = admin.versions()  # newest first
    live = admin.version
    rows = []
    for meta, before in zip(kept, [*kept[1:], None], strict=True):
        diff = _diff(admin, meta.version, before.version if before else None)
        rows.append(
            VersionRow(
                meta.version,
                meta.created,
                meta.entries,
                True,
                meta.version == live,
                changes.get(meta.version),
                **diff,
            )
        )
    shown = {meta.version for meta in kept}
    for change in sorted(changes.values(), key=lambda c: c.version, reverse=True):
        if change.version not in shown:
            rows.append(VersionRow(change.version, _when(change.at), 0, False, False, change))
    return rows


def _diff(admin: KnowledgeAdmin, version: str, before: str | None) -> dict[str, Any]:
    """Which entries a version added, changed and removed; empty without a kept version before."""
    if before is None:
        return {}
    try:
        now = {e.id: e.content_hash for e in admin.version_entries(version)}
        old = {e.id: e.content_hash for e in admin.version_entries(before)}
    except FileNotFoundError:  # pruned meanwhile
        return {}
    return {
        "added": tuple(sorted(set(now) - set(old))),
        "removed": tuple(sorted(set(old) - set(now))),
        "changed": tuple(sorted(k for k in now.keys() & old.keys() if now[k] != old[k])),
        "compared": True,
    }


@router.post("/revert")
async def revert(
    session: Admin, found: Found, version: Annotated[str, Form(max_length=16)]
) -> Response:
    """Make an earlier version's exact content live again, as a new version."""
    admin = _admin(found)
    with importer_refusals():
        try:
            meta = await asyncio.to_thread(admin.revert, version)
        except FileNotFoundError:
            raise ApiError(
                404, "that version is no longer kept", code="version_not_found"
            ) from None
    await note_change(admin, meta, session.user.name, "revert", f"content of {version}")
    return _back("/console/knowledge/history")


# Canned replies.


@router.get("/canned")
async def canned_page(request: Request, session: Operator) -> Response:
    return _page(
        "knowledge_canned.html", session=session, replies=_canned(request).all(), error=None
    )


@router.post("/canned")
async def add_canned(
    request: Request,
    session: Admin,
    title: Annotated[str, Form(max_length=80)],
    text: Annotated[str, Form(max_length=4000)],
) -> Response:
    store = _canned(request)
    try:
        store.add(title, text, session.user.name)
    except ValueError as error:
        return _page(
            "knowledge_canned.html", 400, session=session, replies=store.all(), error=str(error)
        )
    return _back("/console/knowledge/canned")


@router.post("/canned/remove")
async def remove_canned(
    request: Request, session: Admin, reply_id: Annotated[int, Form()]
) -> Response:
    if not _canned(request).remove(reply_id):
        raise ApiError(404, "no such canned reply", code="not_found")
    return _back("/console/knowledge/canned")


# What the conversation page shows from here.


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The best entry's answer for the customer's last question, and how sure search is."""

    question: str
    entry_id: str
    answer: str
    score: float
    threshold: float


async def transcript_extras(
    request: Request, found: Found, conversation: Conversation, waiting: bool
) -> dict[str, Any]:
    """Canned replies, the suggested reply (for an open hand-over) and the operator replies
    that can become entries, for conversation.html."""
    suggestion = None
    if waiting:
        asked = [
            t.text
            for t in conversation.turns
            if t.role == "customer" and not asks_for_human(t.text) and t.text != RATING_QUESTION
        ]
        if asked:
            suggestion = await _suggest(request, found, asked[-1])
    return {
        "canned": _canned(request).all(),
        "suggestion": suggestion,
        "teachable": unanswered_questions(conversation.turns),
    }


async def _suggest(request: Request, found: Found, question: str) -> Suggestion | None:
    """The best entry for a question; remembered per knowledge-base version, because the
    conversation page reloads on every change while it is open."""
    kb = found.engine.knowledge_base
    cache: OrderedDict[tuple[str, str], Suggestion | None] = _suggestions(request)
    key = (kb.version, question)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    result = await asyncio.to_thread(kb.search, question, 1)
    best = result.best
    found_one = (
        Suggestion(question, best.entry.id, best.entry.answer, best.score, result.threshold)
        if best is not None
        else None
    )
    cache[key] = found_one
    while len(cache) > SUGGESTIONS_KEPT:
        cache.popitem(last=False)
    return found_one


def _suggestions(request: Request) -> OrderedDict[tuple[str, str], Suggestion | None]:
    state = request.app.state
    if not hasattr(state, "knowledge_suggestions"):
        state.knowledge_suggestions = OrderedDict()
    cache: OrderedDict[tuple[str, str], Suggestion | None] = state.knowledge_suggestions
    return cache


FILL_JS = """\
// Puts a suggested or canned reply into the reply box; delegated, so it survives live refreshes.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-fill]");
  if (!button) return;
  event.preventDefault();
  var box = document.querySelector("#reply-text");
  if (!box) return;
  box.value = button.getAttribute("data-fill");
  box.focus();
});
"""


@router.get("/fill.js")
async def fill_js() -> Response:
    return Response(FILL_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=300"})
