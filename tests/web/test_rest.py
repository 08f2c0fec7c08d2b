"""REST: conversations, erasure, the knowledge base through the importer, the log report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from engine.log import ConversationLog
from engine.settings import WebConfig
from retrieval.store import import_lock, kept_versions
from tests.ports import free_port
from tests.web.conftest import HashKb
from tests.web.console_helpers import chat
from tests.web.server import WebServer, serve_web

RETURN_WINDOW = "How long do I have to return an item?"


def test_conversation_is_listed_read_rated_handed_over_and_closed(web: WebServer) -> None:
    first = chat(web, "kim", RETURN_WINDOW)
    conversation, turn = first["conversation_id"], first["turn_id"]
    with web.client(web.keys.admin) as admin, web.client(web.keys.chat) as own:
        listed = admin.get("/api/conversations", params={"channel": "web"}).json()
        assert [c["id"] for c in listed] == [conversation]
        assert listed[0]["external_user_id"] == "site:kim" and listed[0]["turns"] == 2
        read = own.get(f"/api/conversations/{conversation}").json()
        assert [t["role"] for t in read["turns"]] == ["customer", "bot"]
        assert read["turns"][1]["action"] == "answer" and read["turns"][1]["retrieved"]
        rated = own.post(
            f"/api/conversations/{conversation}/turns/{turn}/feedback", json={"value": -1}
        )
        assert rated.status_code == 200
        customer_turn = read["turns"][0]["id"]
        refused = own.post(
            f"/api/conversations/{conversation}/turns/{customer_turn}/feedback", json={"value": 1}
        )
        assert refused.status_code == 400
        assert own.post(f"/api/conversations/{conversation}/handover", json={}).status_code == 200
        after = own.get(f"/api/conversations/{conversation}").json()
        assert after["open_handover"] is True and after["turns"][1]["feedback"] == -1
        assert admin.post(f"/api/conversations/{conversation}/close").status_code == 200
        closed = own.get(f"/api/conversations/{conversation}").json()
        assert closed["closed_at"] is not None and closed["open_handover"] is False
    # The next message starts a new conversation.
    assert chat(web, "kim", RETURN_WINDOW)["conversation_id"] != conversation


def test_a_chat_key_sees_only_its_own_customers(web: WebServer) -> None:
    theirs = chat(web, "lee", RETURN_WINDOW, key=web.keys.other_chat)
    conversation, turn = theirs["conversation_id"], theirs["turn_id"]
    with web.client(web.keys.chat) as other:
        assert other.get(f"/api/conversations/{conversation}").status_code == 404
        assert (
            other.post(
                f"/api/conversations/{conversation}/turns/{turn}/feedback", json={"value": 1}
            ).status_code
            == 404
        )
        assert other.post(f"/api/conversations/{conversation}/handover", json={}).status_code == 404
        assert other.get(f"/api/conversations/{conversation}/events").status_code == 404
        # The same user name under another key is another customer.
        assert other.delete("/v1/users/lee").json() == {"conversations": 0}
    with web.client(web.keys.other_chat) as own:
        assert own.get(f"/api/conversations/{conversation}").status_code == 200


def test_erasure_removes_every_trace_like_forget(web: WebServer) -> None:
    chat(web, "max", RETURN_WINDOW)
    chat(web, "max", "my card number is 4111 1111 1111 1111, why was I charged twice?")
    with web.client(web.keys.chat) as http:
        assert http.delete("/v1/users/max").json() == {"conversations": 1}

    async def latest() -> int | None:
        async with await ConversationLog.open(web.log_path) as log:
            return await log.latest_conversation_id("web", "site:max")

    assert asyncio.run(latest()) is None
    data = web.log_path.read_bytes() + Path(f"{web.log_path}-wal").read_bytes()
    assert b"charged twice" not in data
    chat(web, "nia", RETURN_WINDOW)
    with web.client(web.keys.admin) as admin:
        erased = admin.delete("/api/customers/web/site:nia")
    assert erased.json() == {"conversations": 1}


def test_entries_are_listed_searched_created_changed_and_deleted_as_versions(
    web: WebServer,
) -> None:
    def versions() -> int:
        return len(kept_versions(web.kb_dir))

    with web.client(web.keys.admin) as admin:
        entries = admin.get("/api/kb/entries", params={"limit": 1000}).json()
        assert len(entries) > 10
        one = admin.get(f"/api/kb/entries/{entries[0]['id']}").json()
        assert one == entries[0]
        found = admin.get("/api/kb/search", params={"q": RETURN_WINDOW}).json()
        assert found["hits"][0]["entry"]["question"] == RETURN_WINDOW and found["in_scope"]
        before = versions()
        created = admin.post(
            "/api/kb/entries",
            json={
                "question": "Do you sell gift cards for pets?",
                "answer": "Yes: pet gift cards from 10 to 100 euros, sold online only.",
                "alt_questions": ["pet voucher"],
            },
        )
        assert created.status_code == 201, created.text
        entry = created.json()["entry"]
        assert created.json()["report"]["added"] == 1 and versions() == before + 1
        reply = chat(web, "oli", "Do you sell gift cards for pets?")
        assert reply["action"] == "answer" and "10 to 100 euros" in str(reply["text"])
        changed = admin.put(
            f"/api/kb/entries/{entry['id']}",
            json={"question": entry["question"], "answer": "No longer: we stopped selling them."},
        )
        assert changed.json()["report"]["updated"] == 1
        assert "stopped" in str(chat(web, "oli2", "Do you sell gift cards for pets?")["text"])
        assert admin.delete(f"/api/kb/entries/{entry['id']}").json()["removed"] == 1
        assert admin.get(f"/api/kb/entries/{entry['id']}").status_code == 404
        assert admin.delete(f"/api/kb/entries/{entry['id']}").status_code == 404
        assert (
            admin.put("/api/kb/entries/nope", json={"question": "q", "answer": "a"}).status_code
            == 404
        )
        blank = admin.post("/api/kb/entries", json={"question": " ", "answer": "x"})
        assert blank.status_code == 400
    assert versions() >= 3  # each change was its own version (older ones pruned)


def test_file_import_reports_problems_per_file(web: WebServer) -> None:
    good = b'{"id": "pets-1", "question": "Can I bring my dog?", "answer": "Yes, on a lead."}\n'
    bad_entry = b'{"id": "pets-2", "question": "Cats?", "answer": ""}\n'
    files = [
        ("files", ("pets.jsonl", good + bad_entry, "application/jsonl")),
        ("files", ("notes.exe", b"\x00\x01binary", "application/octet-stream")),
    ]
    with web.client(web.keys.admin) as admin:
        response = admin.post("/api/kb/import", files=files)
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["added"] == 1 and report["files"] == ["pets.jsonl"]
        where = {p["path"]: p["message"] for p in report["problems"]}
        assert set(where) == {"pets.jsonl", "notes.exe"}
        assert "empty answer" in where["pets.jsonl"]
        assert admin.get("/api/kb/entries/pets-1").json()["answer"] == "Yes, on a lead."
        only_bad = admin.post("/api/kb/import", files=[files[1]]).json()
        assert only_bad["added"] == 0 and only_bad["version"] == report["version"]
        assert [p["path"] for p in only_bad["problems"]] == ["notes.exe"]
        # Replacing everything with no valid entry publishes nothing: the answer says why, per
        # file (importer_refusals without `last`), not that an entry was the last one.
        nothing = admin.post("/api/kb/import", params={"replace": "true"}, files=[files[1]])
        assert nothing.status_code == 400
        error = nothing.json()["error"]
        assert error["code"] == "nothing_to_import"
        assert error["message"].startswith("nothing to import: notes.exe: ")
        assert "last entry" not in error["message"]
        assert admin.get("/api/kb/entries/pets-1").status_code == 200


def test_importer_refusals_become_404_400_and_409(web: WebServer) -> None:
    one = b'{"id": "only-1", "question": "Open on Sundays?", "answer": "No, Monday to Saturday."}\n'
    entry = {"question": "Open on Sundays?", "answer": "Closed on Sundays."}
    with web.client(web.keys.admin) as admin:
        with import_lock(web.kb_dir):
            refused = [
                admin.delete("/api/kb/entries/only-1"),
                admin.post("/api/kb/entries", json=entry),
                admin.post("/api/kb/import", files=[("files", ("one.jsonl", one, "text/plain"))]),
            ]
        for response in refused:
            assert response.status_code == 409, response.text
            assert response.json()["error"]["code"] == "import_busy"
            assert "another import is running" in response.json()["error"]["message"]
        replaced = admin.post(
            "/api/kb/import",
            params={"replace": "true"},
            files=[("files", ("one.jsonl", one, "text/plain"))],
        )
        assert replaced.status_code == 200 and replaced.json()["added"] == 1, replaced.text
        missing = admin.delete("/api/kb/entries/nope").json()["error"]
        assert missing == {
            "message": "no entry 'nope'",
            "type": "not_found_error",
            "param": None,
            "code": "entry_not_found",
        }
        last = admin.delete("/api/kb/entries/only-1")
        assert last.status_code == 400
        assert last.json()["error"]["code"] == "last_entry"
        assert last.json()["error"]["message"] == (
            "that is the last entry; a knowledge base cannot be empty"
        )
        assert admin.get("/api/kb/entries/only-1").status_code == 200


def test_report_counts_the_log(web: WebServer) -> None:
    chat(web, "pat", RETURN_WINDOW)
    chat(web, "pat", "What is the airspeed of an unladen swallow?")
    with web.client(web.keys.admin) as admin:
        report = admin.get("/api/report").json()
        # As the console's analytics: "all" is every channel, an unknown one is refused.
        assert admin.get("/api/report", params={"channel": "all"}).json() == report
        assert admin.get("/api/report", params={"channel": "web"}).json() == report
        assert admin.get("/api/report", params={"channel": "telegram"}).json()["turns"] == 0
        unknown = admin.get("/api/report", params={"channel": "fax"})
    assert unknown.status_code == 400
    error = unknown.json()["error"]
    assert (error["code"], error["param"]) == ("channel", "channel")
    assert error["message"] == "channel='fax': one of all, telegram, telegram-chat, terminal, web"
    assert report["conversations"] == report["with_customer"] == 1
    assert report["customer_turns"] == 2
    assert report["answered"] == 1 and report["handoff_turns"] == 1
    # The out-of-scope reply offers a person but opens no hand-over: none handed over.
    assert report["handed_over"] == report["handovers"] == 0
    # And the schema says so, as README does.
    schema = httpx.get(f"{web.url}/openapi.json").json()
    ok = schema["paths"]["/api/report"]["get"]["responses"]["200"]["content"]["application/json"]
    fields = schema["components"]["schemas"][ok["schema"]["$ref"].rsplit("/", 1)[1]]
    # The period's days are UTC days, and the parameters say so.
    parameters = schema["paths"]["/api/report"]["get"]["parameters"]
    days = {p["name"]: p["description"] for p in parameters if p["name"] in ("since", "until")}
    assert len(days) == 2 and all("UTC day" in text for text in days.values())
    described = fields["properties"]["handoff_turns"]["description"]
    assert "handed over or offered a person" in described
    assert "whether or not a hand-over was opened" in described
    assert report["top_unanswered"][0]["count"] == 1
    assert sum(report["reasons"].values()) == 2  # one reason code per bot turn


def test_upload_over_the_limit_is_refused(web: WebServer) -> None:
    limit = int(web.config.max_import_mb * 1024 * 1024)
    with web.client(web.keys.admin) as admin:
        response = admin.post(
            "/api/kb/import", files=[("files", ("big.csv", b"q,a\n" + b"x" * limit, "text/csv"))]
        )
    assert response.status_code == 413


def test_cors_allows_only_configured_origins(tmp_path: Path, hash_kb: HashKb) -> None:
    kb_dir, embedder = hash_kb
    config = WebConfig(
        listen_port=free_port(),
        keys_path=tmp_path / "keys.db",
        cors_origins=("https://shop.example",),
    )
    with serve_web(tmp_path, kb_dir, embedder, config=config) as web:

        def preflight(origin: str) -> httpx.Response:
            return httpx.options(
                f"{web.url}/v1/chat/completions",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )

        allowed = preflight("https://shop.example")
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        refused = preflight("https://evil.example")
        assert "access-control-allow-origin" not in refused.headers
