"""The console: accounts, sign-in, CSRF, roles, the hand-over inbox, escaping of customer text."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.web.__main__ import main
from bot.web.console import router as console_router
from bot.web.users import UserStore
from engine.log import Conversation, ConversationLog
from tests.web.conftest import HashKb
from tests.web.console_helpers import PASSWORD, console_config, open_handover
from tests.web.server import WebServer, serve_web

HOSTILE = '<script>alert("x")</script><b>bold</b>'
ADMIN_ROUTES = [
    ("GET", "/console/users"),
    ("POST", "/console/users"),
    ("POST", "/console/users/someone/remove"),
]
OPERATOR_ROUTES = [
    ("GET", "/console"),
    ("GET", "/console?view=resolved"),
    ("GET", "/console/conversations/1"),
    ("GET", "/console/analytics"),
    ("GET", "/console/analytics.csv"),
    ("GET", "/console/events"),
    ("POST", "/console/conversations/1/assign"),
    ("POST", "/console/conversations/1/reply"),
    ("POST", "/console/conversations/1/note"),
    ("POST", "/console/conversations/1/resolve"),
    ("POST", "/console/logout"),
]


def form_token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


@contextlib.contextmanager
def sign_in(
    server: WebServer, name: str, password: str = PASSWORD
) -> Iterator[tuple[httpx.Client, str]]:
    """A client with a session, and the session's CSRF token."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        page = http.get("/console/login")
        response = http.post(
            "/console/login",
            data={"name": name, "password": password, "csrf": form_token(page.text)},
        )
        assert response.status_code == 303, response.text
        inbox = http.get("/console")
        assert inbox.status_code == 200
        yield http, form_token(inbox.text)


def test_every_console_route_sends_strangers_to_sign_in(site: WebServer) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as http:
        for method, path in OPERATOR_ROUTES + ADMIN_ROUTES:
            response = http.request(method, path, data={"csrf": "x", "text": "hi"})
            assert response.status_code == 303, (method, path)
            assert response.headers["location"] == "/console/login"
        # A forged cookie is no session either.
        http.cookies.set("sb_console", "forged", domain="127.0.0.1")
        assert http.get("/console").status_code == 303


def test_an_operator_is_refused_every_admin_route(site: WebServer) -> None:
    with sign_in(site, "olaf") as (http, csrf):
        for method, path in ADMIN_ROUTES:
            data = {"csrf": csrf, "name": "mallory", "role": "admin", "password": PASSWORD}
            assert http.request(method, path, data=data).status_code == 403, path
        assert "Users" not in http.get("/console").text
    assert [u.name for u in UserStore(site.config.users_path).users()] == ["ann", "olaf"]


def test_an_admin_manages_users_with_the_form_token_only(site: WebServer) -> None:
    with sign_in(site, "ann") as (http, csrf):
        data = {"name": "mia", "role": "operator", "password": PASSWORD}
        assert http.post("/console/users", data=data).status_code == 403
        assert http.post("/console/users", data={**data, "csrf": "stale"}).status_code == 403
        assert http.post("/console/users", data={**data, "csrf": csrf}).status_code == 303
        short = http.post(
            "/console/users", data={**data, "name": "kai", "password": "short", "csrf": csrf}
        )
        assert short.status_code == 400 and "at least 10 characters" in short.text
        assert "mia" in http.get("/console/users").text
        removed = http.post("/console/users/mia/remove", data={"csrf": csrf})
        assert removed.status_code == 303
    assert [u.name for u in UserStore(site.config.users_path).users()] == ["ann", "olaf"]


def test_sign_in_refuses_bad_passwords_forged_forms_and_too_many_tries(site: WebServer) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as http:
        token = form_token(http.get("/console/login").text)
        forged = http.post(
            "/console/login", data={"name": "ann", "password": PASSWORD, "csrf": "guess"}
        )
        assert forged.status_code == 403
        codes = []
        for _ in range(7):
            token = form_token(http.get("/console/login").text)
            wrong = http.post(
                "/console/login", data={"name": "ann", "password": "nope-nope-1", "csrf": token}
            )
            codes.append(wrong.status_code)
            assert "sb_console" not in wrong.cookies
        # A burst of five tries per address and name, then refusals.
        assert codes == [401] * 5 + [429] * 2
        token = form_token(http.get("/console/login").text)
        right = http.post(
            "/console/login", data={"name": "ann", "password": PASSWORD, "csrf": token}
        )
        assert right.status_code == 429, "the right password waits like any other try"


def test_sign_out_ends_the_session(site: WebServer) -> None:
    with sign_in(site, "olaf") as (http, csrf):
        cookie = http.cookies["sb_console"]
        assert http.post("/console/logout", data={"csrf": csrf}).status_code == 303
        http.cookies.set("sb_console", cookie, domain="127.0.0.1")
        assert http.get("/console").status_code == 303


def test_the_session_cookie_is_secure_httponly_and_lax(tmp_path: Path, hash_kb: HashKb) -> None:
    kb_dir, embedder = hash_kb
    config = console_config(tmp_path, secure=True)
    UserStore(config.users_path).create("ann", "admin", PASSWORD)
    with (
        serve_web(tmp_path, kb_dir, embedder, config=config) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        page = http.get("/console/login")
        token = form_token(page.text)
        # The client keeps no Secure cookie over http; send the form's cookie by hand.
        http.cookies.set("sb_login_csrf", token, domain="127.0.0.1", path="/console/login")
        response = http.post(
            "/console/login", data={"name": "ann", "password": PASSWORD, "csrf": token}
        )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "sb_console=" in cookie
    for flag in ("secure", "httponly", "samesite=lax", "path=/console"):
        assert flag in cookie, cookie
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def read_log(path: Path, conversation_id: int) -> Conversation:
    async def read() -> Conversation | None:
        log = await ConversationLog.open(path)
        try:
            return await log.get_conversation(conversation_id)
        finally:
            await log.close()

    found = asyncio.run(read())
    assert found is not None
    return found


def test_an_operator_takes_answers_notes_and_resolves_a_handover(site: WebServer) -> None:
    conversation = open_handover(site, "kim@example.com", HOSTILE)
    here = f"/console/conversations/{conversation}"
    pages = []
    with sign_in(site, "olaf") as (http, csrf):
        waiting = http.get("/console?view=waiting")
        assert f'href="{here}"' in waiting.text
        assert "kim@example.com" not in waiting.text, "no customer id in the inbox"
        pages.append(waiting.text)
        assert f'href="{here}"' not in http.get("/console?view=mine").text
        assert http.post(f"{here}/assign", data={"csrf": csrf}).status_code == 303
        assert f'href="{here}"' in http.get("/console?view=mine").text
        assert f'href="{here}"' not in http.get("/console?view=waiting").text
        transcript = http.get(here)
        pages.append(transcript.text)
        assert "action answer" in transcript.text or "action handoff" in transcript.text
        assert "taken by <strong>olaf</strong>" in transcript.text
        reply = http.post(f"{here}/reply", data={"csrf": csrf, "text": f"Hello {HOSTILE}"})
        assert reply.status_code == 303
        note = http.post(f"{here}/note", data={"csrf": csrf, "text": f"note {HOSTILE}"})
        assert note.status_code == 303
        pages.append(http.get(here).text)
        assert http.post(f"{here}/resolve", data={"csrf": csrf}).status_code == 303
        assert http.post(f"{here}/resolve", data={"csrf": csrf}).status_code == 409
        resolved = http.get("/console?view=resolved")
        assert f'href="{here}"' in resolved.text
        pages.append(resolved.text)
        pages.append(http.get(here).text)
        open_handover(site, "kim@example.com", "4", handover=False)  # the customer rates
        numbers = http.get("/console/analytics")
        assert numbers.status_code == 200 and numbers.text.count("<svg") == 6
        assert '<td id="handover">100.0 %</td>' in numbers.text
        assert '<td id="resolution">0.0 %</td>' in numbers.text
        assert '<td id="csat">4.00</td>' in numbers.text
        pages.append(numbers.text)
        daily = http.get("/console/analytics.csv")
        assert daily.headers["content-type"].startswith("text/csv")
        assert ",1,0,1,0.0000,0," in daily.text.splitlines()[1]
        assert http.get("/console/analytics?since=yesterday").status_code == 400
    for page in pages:
        assert "<script>alert" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[1]
    assert "note &lt;script&gt;" in pages[2]
    logged = read_log(site.log_path, conversation)
    operator = [t.text for t in logged.turns if t.role == "operator"]
    assert operator[0] == f"Hello {HOSTILE}"
    assert "How did we do?" in operator[1]
    assert all(not t.text.startswith("note ") for t in logged.turns), "notes are never sent"
    closed = logged.handovers[0]
    assert closed.closed_at is not None and closed.operator_id == "olaf"
    assert closed.rating == 4 and closed.rated_at is not None  # CSAT, kept in the log
    assert [t.text for t in logged.turns][-2:] == ["4", "Thank you for your rating!"]


def test_users_command_creates_lists_and_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "supportbot.toml"
    config.write_text(f'[web]\nusers_path = "{tmp_path / "console.db"}"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    base = ["--config", str(config), "users"]
    assert main([*base, "create", "zoe", "--role", "admin", "--password-stdin"]) == 0
    assert main([*base, "list"]) == 0
    assert capsys.readouterr().out == "zoe\tadmin\n"
    store = UserStore(tmp_path / "console.db")
    assert store.check("zoe", PASSWORD) is not None and store.check("zoe", "wrong") is None
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main([*base, "create", "kai", "--role", "operator", "--password-stdin"]) == 2
    assert "at least 10" in capsys.readouterr().err
    assert main([*base, "remove", "zoe"]) == 0
    assert main([*base, "remove", "zoe"]) == 1


def test_the_route_lists_above_name_every_console_route() -> None:
    """A new console route must join a list above, and so the login checks."""
    public = {("GET", "/console/login"), ("POST", "/console/login"), ("GET", "/console/live.js")}
    listed = {(method, path.split("?")[0]) for method, path in OPERATOR_ROUTES + ADMIN_ROUTES}
    served = set()
    for route in console_router.routes:
        path = getattr(route, "path", "")
        path = path.replace("{conversation_id}", "1").replace("{name}", "someone")
        served |= {(method, path) for method in getattr(route, "methods", ())}
    assert served == listed | public


def test_a_reply_needs_an_open_handover(site: WebServer) -> None:
    """A stale page or a crafted form must not write to a customer the bot is serving."""
    never = open_handover(site, "lee@example.com", "Where is my parcel?", handover=False)
    resolved = open_handover(site, "max@example.com", HOSTILE)
    with sign_in(site, "olaf") as (http, csrf):
        here = f"/console/conversations/{resolved}"
        assert http.post(f"{here}/resolve", data={"csrf": csrf}).status_code == 303
        for conversation in (never, resolved):
            refused = http.post(
                f"/console/conversations/{conversation}/reply",
                data={"csrf": csrf, "text": "Hello from a stale page"},
            )
            assert refused.status_code == 409, refused.text
            assert "no_handover" in refused.text
    for conversation in (never, resolved):
        logged = read_log(site.log_path, conversation)
        assert all(t.text != "Hello from a stale page" for t in logged.turns)
