"""The console's knowledge pages: who may do what, escaping, history and revert, canned and
suggested replies, and an operator's answer turned into an entry the bot then answers from."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from html import unescape

import httpx
import pytest

from bot.web.canned import CannedReplies
from bot.web.console_knowledge import router as knowledge_router
from bot.web.knowledge_admin import KnowledgeAdmin
from retrieval.store import (
    KbChange,
    current_version,
    import_lock,
    read_changes,
    version_entries,
)
from tests.web.conftest import HashKb
from tests.web.console_helpers import ask, open_handover
from tests.web.server import WebServer
from tests.web.test_console import HOSTILE, read_log, sign_in
from training.data import export_training_sets

ENTRY = "/console/knowledge/entry?id=warranty-length"
OPERATOR_ROUTES = [
    ("GET", "/console/knowledge"),
    ("GET", "/console/knowledge?q=warranty"),
    ("GET", ENTRY),
    ("GET", "/console/knowledge/history"),
    ("GET", "/console/knowledge/canned"),
]
ADMIN_ROUTES = [
    ("GET", "/console/knowledge/new"),
    ("GET", "/console/knowledge/import"),
    ("POST", "/console/knowledge/draft"),
    ("POST", "/console/knowledge/save"),
    ("POST", "/console/knowledge/delete"),
    ("POST", "/console/knowledge/import"),
    ("POST", "/console/knowledge/revert"),
    ("POST", "/console/knowledge/canned"),
    ("POST", "/console/knowledge/canned/remove"),
]
PUBLIC = {("GET", "/console/knowledge/fill.js")}
# A question the sample shop's knowledge base cannot answer.
UNKNOWN = "Can I pay with seashells at the harbour kiosk?"
REPLY = "We only take cards and cash at the harbour kiosk, no seashells."


def _form(data: dict[str, str]) -> dict[str, str]:
    return {
        "question": "q?",
        "answer": "a.",
        "entry_id": "warranty-length",
        "version": "v000001",
        "title": "t",
        "text": "x",
        "reply_id": "1",
        **data,
    }


def _files() -> dict[str, tuple[str, bytes, str]]:
    return {"files": ("faq.csv", b"question,answer\nq?,a.\n", "text/csv")}


def test_every_knowledge_route_sends_strangers_to_sign_in(site: WebServer) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as http:
        for method, path in OPERATOR_ROUTES + ADMIN_ROUTES:
            response = http.request(method, path, data=_form({"csrf": "x"}))
            assert response.status_code == 303, (method, path)
            assert response.headers["location"] == "/console/login"
        assert http.get("/console/knowledge/fill.js").status_code == 200


def test_an_operator_reads_but_is_refused_every_admin_route(site: WebServer) -> None:
    before = current_version(site.kb_dir)
    with sign_in(site, "olaf") as (http, csrf):
        for method, path in OPERATOR_ROUTES:
            assert http.request(method, path).status_code == 200, path
        for method, path in ADMIN_ROUTES:
            files = _files() if path.endswith("/import") and method == "POST" else None
            response = http.request(method, path, data=_form({"csrf": csrf}), files=files)
            assert response.status_code == 403, (method, path)
        entry = http.get(ENTRY).text
        assert "Only admins change the knowledge base." in entry
        assert 'action="/console/knowledge/save"' not in entry
    assert current_version(site.kb_dir) == before
    assert CannedReplies(site.config.users_path).all() == []


def test_every_knowledge_post_needs_the_form_token(site: WebServer) -> None:
    before = current_version(site.kb_dir)
    with sign_in(site, "ann") as (http, _csrf):
        for method, path in ADMIN_ROUTES:
            if method != "POST":
                continue
            files = _files() if path.endswith("/import") else None
            for token in ({}, {"csrf": "stale"}):
                response = http.post(path, data=_form(token), files=files)
                assert response.status_code == 403, (path, token)
    assert current_version(site.kb_dir) == before


def test_the_route_lists_above_name_every_knowledge_route() -> None:
    listed = {(m, p.split("?")[0]) for m, p in OPERATOR_ROUTES + ADMIN_ROUTES}
    served = set()
    for route in knowledge_router.routes:
        served |= {(m, getattr(route, "path", "")) for m in getattr(route, "methods", ())}
    assert served == listed | PUBLIC


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, name
    return unescape(found.group(1))


def _textarea(page: str, name: str) -> str:
    found = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, name
    return unescape(found.group(1))


def test_entries_are_edited_and_history_reverts_to_the_exact_content(site: WebServer) -> None:
    pages = []
    with sign_in(site, "ann") as (http, csrf):
        saved = http.post(
            "/console/knowledge/save",
            data={
                "csrf": csrf,
                "entry_id": "warranty-length",
                "question": f"How long is the warranty? {HOSTILE}",
                "alternatives": "warranty years\n\nguarantee length",
                "answer": f"Two years. {HOSTILE}",
            },
        )
        assert saved.status_code == 303
        assert saved.headers["location"] == ENTRY
        created = http.post(
            "/console/knowledge/save",
            data={"csrf": csrf, "question": f"Gift cards? {HOSTILE}", "answer": "We sell them."},
        )
        assert created.status_code == 303
        new_id = created.headers["location"].split("id=")[1]
        assert new_id.startswith("console/") and "gift" not in new_id.lower()
        # The version to come back to: the edit and the new entry, before the deletion.
        kept = current_version(site.kb_dir)
        assert kept is not None
        original = version_entries(site.kb_dir, kept)
        empty = http.post(
            "/console/knowledge/save", data={"csrf": csrf, "question": "Empty?", "answer": " "}
        )
        assert empty.status_code == 400 and "non-empty question and answer" in empty.text
        deleted = http.post(
            "/console/knowledge/delete", data={"csrf": csrf, "entry_id": "warranty-claim"}
        )
        assert deleted.status_code == 303
        pages += [http.get(ENTRY).text, http.get("/console/knowledge?q=warranty").text]
        assert "warranty years" in pages[0]
        assert "Gift cards?" in http.get("/console/knowledge").text
        history = http.get("/console/knowledge/history").text
        pages.append(history)
        assert "changed warranty-length" in history and "deleted warranty-claim" in history
        assert "removed warranty-claim" in history and "changed warranty-length" in history
        assert history.count("Revert to") == 2  # the kept versions before the live one
        reverted = http.post("/console/knowledge/revert", data={"csrf": csrf, "version": kept})
        assert reverted.status_code == 303
        gone = http.post("/console/knowledge/revert", data={"csrf": csrf, "version": "v999999"})
        assert gone.status_code == 404
        assert http.post(
            "/console/knowledge/revert", data={"csrf": csrf, "version": "../x"}
        ).status_code in (404, 422)
        history = http.get("/console/knowledge/history").text
        assert f"content of {kept}" in history
    live = current_version(site.kb_dir)
    assert live is not None and live != kept
    assert version_entries(site.kb_dir, live) == original
    changes = read_changes(site.kb_dir)
    assert [(c.author, c.origin) for c in changes] == [
        ("ann", "edit"),
        ("ann", "edit"),
        ("ann", "delete"),
        ("ann", "revert"),
    ]
    assert changes[-1].version == live
    for page in pages:
        assert "<script>alert" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[0]


def test_an_import_shows_each_files_problems(site: WebServer) -> None:
    with sign_in(site, "ann") as (http, csrf):
        page = http.get("/console/knowledge/import")
        assert page.status_code == 200
        good = b"question,answer\nDo you sell gift cards?,Yes; in every shop.\n,no question\n"
        response = http.post(
            "/console/knowledge/import",
            data={"csrf": csrf},
            files=[
                ("files", ("gifts.csv", good, "text/csv")),
                ("files", (f"{HOSTILE}.exe", b"\x00\x01", "application/octet-stream")),
            ],
        )
        assert response.status_code == 200, response.text
        assert "added 1 /" in response.text
        problems = response.text.split('id="import-problems"')[1]
        assert "gifts.csv" in problems and "empty question" in problems
        assert "gifts/do-you-sell-gift-cards" in http.get("/console/knowledge?q=gift").text
        assert "&lt;script&gt;" in problems and "<script>alert" not in response.text
        version = current_version(site.kb_dir)
        bad = {"files": ("bad.csv", b"question,answer\n,x\n", "text/csv")}
        kept = http.post("/console/knowledge/import", data={"csrf": csrf}, files=bad)
        assert kept.status_code == 200 and "added 0 /" in kept.text
        assert "empty question" in kept.text.split('id="import-problems"')[1]
        # Replacing everything with a file of no valid entry would empty the bot: refused.
        refused = http.post(
            "/console/knowledge/import", data={"csrf": csrf, "replace": "1"}, files=bad
        )
        assert refused.status_code == 400 and "Nothing was imported" in refused.text
        assert current_version(site.kb_dir) == version
    (change,) = read_changes(site.kb_dir)
    assert change.summary.startswith("imported gifts.csv: added 1 /") and change.origin == "import"


def test_importer_refusals_become_404_400_and_409(site: WebServer) -> None:
    one = {"files": ("one.csv", b"question,answer\nOpen on Sundays?,No.\n", "text/csv")}
    with sign_in(site, "ann") as (http, csrf):
        kept = current_version(site.kb_dir)
        with import_lock(site.kb_dir):
            deleted = http.post(
                "/console/knowledge/delete", data={"csrf": csrf, "entry_id": "warranty-claim"}
            )
            reverted = http.post("/console/knowledge/revert", data={"csrf": csrf, "version": kept})
        for response in (deleted, reverted):
            assert response.status_code == 409, response.text
            assert response.json()["error"]["code"] == "import_busy"
            assert "another import is running" in response.json()["error"]["message"]
        assert current_version(site.kb_dir) == kept
        replaced = http.post(
            "/console/knowledge/import", data={"csrf": csrf, "replace": "1"}, files=one
        )
        assert replaced.status_code == 200 and "added 1 /" in replaced.text
        live = current_version(site.kb_dir)
        assert live is not None
        (only,) = version_entries(site.kb_dir, live)
        missing = http.post("/console/knowledge/delete", data={"csrf": csrf, "entry_id": "nope"})
        assert missing.status_code == 404
        assert missing.json()["error"] == {
            "message": "no such entry",
            "type": "not_found_error",
            "param": None,
            "code": "entry_not_found",
        }
        last = http.post("/console/knowledge/delete", data={"csrf": csrf, "entry_id": only.id})
        assert last.status_code == 400
        assert last.json()["error"]["code"] == "last_entry"
        assert last.json()["error"]["message"] == "that is the last entry; keep at least one"


def test_canned_and_suggested_replies_on_the_conversation_page(
    site: WebServer, hash_kb: HashKb
) -> None:
    asked = "How long is the warranty on your products?"
    conversation = open_handover(site, "kim", asked)
    encoded = hash_kb[1].encoded
    here = f"/console/conversations/{conversation}"
    with sign_in(site, "ann") as (http, csrf):
        added = http.post(
            "/console/knowledge/canned",
            data={"csrf": csrf, "title": "Greeting", "text": f"Hello! {HOSTILE}"},
        )
        assert added.status_code == 303
        blank = http.post(
            "/console/knowledge/canned", data={"csrf": csrf, "title": " ", "text": "x"}
        )
        assert blank.status_code == 400
    with sign_in(site, "olaf") as (http, _csrf):
        page = http.get(here).text
        assert "<script>alert" not in page
        assert 'data-fill="Hello! &lt;script&gt;' in page
        suggestion = page.split('id="suggestion"')[1].split("</div>\n", 2)
        assert "entry warranty-length · score" in suggestion[0]
        assert 'data-fill="All products come with a 2-year warranty' in page
        assert "Turn this into a FAQ entry" not in page, "no operator reply yet"
        searched = encoded.count(asked)
        assert http.get(here).text == page
        assert encoded.count(asked) == searched, "the suggestion is searched once per version"
        assert "Canned replies" in http.get("/console/knowledge/canned").text
    with sign_in(site, "ann") as (http, csrf):
        (reply,) = CannedReplies(site.config.users_path).all()
        removed = http.post(
            "/console/knowledge/canned/remove", data={"csrf": csrf, "reply_id": str(reply.id)}
        )
        assert removed.status_code == 303
    assert CannedReplies(site.config.users_path).all() == []


def test_an_operators_answer_becomes_an_entry_the_bot_answers_from(site: WebServer) -> None:
    conversation = open_handover(site, "kim", UNKNOWN)
    assert read_log(site.log_path, conversation).turns[1].action != "answer"
    here = f"/console/conversations/{conversation}"
    with sign_in(site, "olaf") as (http, csrf):
        assert http.post(f"{here}/assign", data={"csrf": csrf}).status_code == 303
        assert http.post(f"{here}/reply", data={"csrf": csrf, "text": REPLY}).status_code == 303
        assert "Turn this into a FAQ entry" not in http.get(here).text, "admins edit knowledge"
    turn_id = next(
        t.id for t in read_log(site.log_path, conversation).turns if t.role == "operator"
    )
    with sign_in(site, "ann") as (http, csrf):
        page = http.get(here).text
        assert page.count("Turn this into a FAQ entry") == 1
        fields = {
            name: _hidden(page.split('class="teach"')[1], name)
            for name in ("question", "alternatives", "answer", "conversation_id", "turn_id")
        }
        assert fields == {
            "question": UNKNOWN,
            "alternatives": "",
            "answer": REPLY,
            "conversation_id": str(conversation),
            "turn_id": str(turn_id),
        }
        before = current_version(site.kb_dir)
        form = http.post("/console/knowledge/draft", data={**fields, "csrf": csrf})
        assert form.status_code == 200
        assert current_version(site.kb_dir) == before, "a draft saves nothing"
        assert _textarea(form.text, "question") == UNKNOWN
        assert _textarea(form.text, "answer") == REPLY
        assert 'name="target" value="warranty-length"' in form.text or 'name="target"' in form.text
        # The admin tidies the question; the customer's words stay as an alternative.
        saved = http.post(
            "/console/knowledge/save",
            data={
                "csrf": csrf,
                "question": "Which payment methods does the harbour kiosk take?",
                "alternatives": UNKNOWN,
                "answer": REPLY,
                "conversation_id": str(conversation),
                "turn_id": str(turn_id),
                "target": "",
            },
        )
        assert saved.status_code == 303
        entry_id = saved.headers["location"].split("id=")[1]
        history = http.get("/console/knowledge/history").text
        assert f"conversation #{conversation}</a> turn {turn_id} by olaf" in history, history.split(
            "<table>"
        )[1]
    (change,) = read_changes(site.kb_dir)
    assert (change.origin, change.author, change.operator) == ("conversation", "ann", "olaf")
    assert (change.conversation_id, change.turn_id, change.entry_id) == (
        conversation,
        turn_id,
        entry_id,
    )
    assert change.version == current_version(site.kb_dir)
    # The record keeps ids: erasing the customer (/forget) leaves none of their words there.
    assert UNKNOWN not in (site.kb_dir / "changes.jsonl").read_text(encoding="utf-8")
    # Retraining learns the entry's questions as logged pairs for it (pairs the conversation
    # log does not have: the bot never answered them), read from the version the change made.
    entries = version_entries(site.kb_dir, change.version)
    sets = export_training_sets(
        site.log_path,
        kb_entries=entries,
        kb_changes=read_changes(site.kb_dir),
        kb_versions=partial(version_entries, site.kb_dir),
        validation_share=0.5,
    )
    learned = [p for p in sets.pairs.train if p.id.startswith("learned-")]
    assert [(p.query, p.faq_id, p.conversation_id, p.source) for p in learned] == [
        ("Which payment methods does the harbour kiosk take?", entry_id, None, "log"),
        (UNKNOWN, entry_id, None, "log"),
    ]
    # A new customer asks the same question: the bot answers from the new entry.
    asked, answer = ask(site, "lea", UNKNOWN)
    assert answer == REPLY
    bot = next(t for t in read_log(site.log_path, asked).turns if t.role == "bot")
    assert bot.action == "answer" and bot.retrieved[0].faq_id == entry_id


def test_a_customers_words_join_an_existing_entry(site: WebServer) -> None:
    words = "my speaker broke after two and a half years, am I still covered?"
    conversation = open_handover(site, "kim", f"{words} {HOSTILE}")
    here = f"/console/conversations/{conversation}"
    with sign_in(site, "ann") as (http, csrf):
        http.post(f"{here}/reply", data={"csrf": csrf, "text": "Three years for speakers."})
        page = http.get(here).text
        assert "<script>alert" not in page
        question = _hidden(page.split('class="teach"')[1], "question")
        assert question == f"{words} {HOSTILE}"
        form = http.post(
            "/console/knowledge/draft",
            data={"csrf": csrf, "question": question, "answer": "Three years for speakers."},
        )
        assert "<script>alert" not in form.text
        assert 'name="target" value="warranty-length"' in form.text
        saved = http.post(
            "/console/knowledge/save",
            data={
                "csrf": csrf,
                "question": words,
                "answer": "",
                "target": "warranty-length",
                "conversation_id": str(conversation),
            },
        )
        assert saved.status_code == 303 and saved.headers["location"] == ENTRY
    entries = {e.id: e for e in version_entries(site.kb_dir, current_version(site.kb_dir) or "")}
    entry = entries["warranty-length"]
    assert entry.alt_questions[-1] == words
    assert entry.answer.startswith("All products come with a 2-year warranty")
    (change,) = read_changes(site.kb_dir)
    assert change.origin == "conversation" and change.entry_id == "warranty-length"
    assert change.turn_id is None
    assert words not in (site.kb_dir / "changes.jsonl").read_text(encoding="utf-8")


def test_changes_made_through_the_api_show_in_the_history(site: WebServer) -> None:
    with site.client(site.keys.admin) as api:
        body = {"question": "Do you sell gift cards?", "answer": "Yes, in every shop."}
        created = api.post("/api/kb/entries", json=body)
        assert created.status_code == 201, created.text
        entry_id = created.json()["entry"]["id"]
        assert api.delete(f"/api/kb/entries/{entry_id}").status_code == 200
        csv = b"question,answer\nDo you repair bikes?,No.\n"
        imported = api.post("/api/kb/import", files={"files": ("bikes.csv", csv, "text/csv")})
        assert imported.status_code == 200, imported.text
    changes = [(c.author, c.origin, c.summary.split(":")[0]) for c in read_changes(site.kb_dir)]
    assert changes == [
        ("key ops", "edit", f"saved {entry_id} (API)"),
        ("key ops", "delete", f"deleted {entry_id} (API)"),
        ("key ops", "import", "imported bikes.csv (API)"),
    ]
    with sign_in(site, "olaf") as (http, _csrf):
        history = http.get("/console/knowledge/history").text
    assert history.count("key ops") == 3


def test_change_records_are_written_off_the_event_loop(
    site: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Appending and fsyncing changes.jsonl blocks; on the loop it stalls every other request.
    on_loop: list[str] = []
    written: list[str] = []
    record = KnowledgeAdmin.record

    def spy(self: KnowledgeAdmin, change: KbChange) -> None:
        try:
            asyncio.get_running_loop()
            on_loop.append(change.origin)
        except RuntimeError:
            pass
        written.append(change.origin)
        record(self, change)

    monkeypatch.setattr(KnowledgeAdmin, "record", spy)
    with sign_in(site, "ann") as (http, csrf):
        saved = http.post(
            "/console/knowledge/save",
            data={"csrf": csrf, "question": "Do you sell gift cards?", "answer": "Yes."},
        )
        assert saved.status_code == 303
        entry_id = saved.headers["location"].split("id=")[1]
        deleted = http.post("/console/knowledge/delete", data={"csrf": csrf, "entry_id": entry_id})
        assert deleted.status_code == 303
        files = {"files": ("bikes.csv", b"question,answer\nDo you repair bikes?,No.\n", "text/csv")}
        assert http.post("/console/knowledge/import", data={"csrf": csrf}, files=files).is_success
        reverted = http.post("/console/knowledge/revert", data={"csrf": csrf, "version": "v000002"})
        assert reverted.status_code == 303
    with site.client(site.keys.admin) as api:
        body = {"question": "Do you sell maps?", "answer": "No."}
        created = api.post("/api/kb/entries", json=body)
        assert created.status_code == 201, created.text
        assert api.delete(f"/api/kb/entries/{created.json()['entry']['id']}").status_code == 200
        csv = ("maps.csv", b"question,answer\nDo you sell maps?,No.\n", "text/csv")
        assert api.post("/api/kb/import", files={"files": csv}).status_code == 200
    assert written == ["edit", "delete", "import", "revert", "edit", "delete", "import"]
    assert on_loop == []


def test_concurrent_additions_to_one_entry_all_survive(site: WebServer) -> None:
    # Each save reads the entry and writes it back; done outside the importer's lock, the
    # last writer drops what the others added (or is refused as busy).
    words = [f"is the warranty still valid in case {n}?" for n in range(4)]
    with ExitStack() as stack:
        sessions = [stack.enter_context(sign_in(site, "ann")) for _ in words]

        def add(n: int) -> int:
            http, csrf = sessions[n]
            data = {"csrf": csrf, "question": words[n], "target": "warranty-length"}
            return http.post("/console/knowledge/save", data=data).status_code

        with ThreadPoolExecutor(len(words)) as pool:
            statuses = list(pool.map(add, range(len(words))))
    assert statuses == [303] * len(words)
    live = {e.id: e for e in version_entries(site.kb_dir, current_version(site.kb_dir) or "")}
    assert set(words) <= set(live["warranty-length"].alt_questions)
    summaries = sorted(c.summary for c in read_changes(site.kb_dir))
    assert summaries == ["1 alternative question(s) added to warranty-length"] * len(words)
