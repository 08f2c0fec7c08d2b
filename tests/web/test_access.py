"""Every route of the schema with no key, a wrong key and a key of the wrong scope."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.web.server import WebServer

PUBLIC = {("GET", "/health"), ("GET", "/health/ready")}
ADMIN_ONLY = {
    ("GET", "/api/conversations"),
    ("POST", "/api/conversations/{conversation_id}/close"),
    ("DELETE", "/api/customers/{channel}/{external_user_id}"),
    ("GET", "/api/report"),
    ("GET", "/api/kb/entries"),
    ("GET", "/api/kb/search"),
    ("GET", "/api/kb/entries/{entry_id}"),
    ("POST", "/api/kb/entries"),
    ("PUT", "/api/kb/entries/{entry_id}"),
    ("DELETE", "/api/kb/entries/{entry_id}"),
    ("POST", "/api/kb/import"),
}
PARAMS = {
    "conversation_id": "1",
    "turn_id": "1",
    "entry_id": "returns/x",
    "channel": "web",
    "external_user_id": "site:u",
    "user": "u",
    "model": "supportbot",
}
BODIES = {
    "/v1/chat/completions": {
        "model": "supportbot",
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/api/kb/entries": {"question": "q", "answer": "a"},
}


def operations(web: WebServer) -> list[tuple[str, str]]:
    schema = httpx.get(f"{web.url}/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if (method.upper(), path) not in PUBLIC
    ]


def call(web: WebServer, method: str, path: str, key: str | None) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = BODIES.get(path) if method in {"POST", "PUT"} else None
    return httpx.request(method, f"{web.url}{url}", headers=headers, json=body, timeout=10)


def test_the_admin_list_names_real_routes(web: WebServer) -> None:
    assert set(operations(web)) >= ADMIN_ONLY
    assert len(operations(web)) >= 18


@pytest.mark.parametrize("key", [None, "sb-wrong", "not even the format"])
def test_every_route_refuses_a_missing_or_wrong_key(web: WebServer, key: str | None) -> None:
    for method, path in operations(web):
        response = call(web, method, path, key)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["type"] == "authentication_error"


def test_a_revoked_key_is_refused_at_once(web: WebServer) -> None:
    assert call(web, "GET", "/v1/models", web.keys.chat).status_code == 200
    assert web.keys.store.revoke("site")
    assert call(web, "GET", "/v1/models", web.keys.chat).status_code == 401


def test_chat_keys_are_refused_on_admin_routes(web: WebServer) -> None:
    for method, path in operations(web):
        response = call(web, method, path, web.keys.chat)
        if (method, path) in ADMIN_ONLY:
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "insufficient_scope"
        else:
            assert response.status_code not in {401, 403}, (method, path, response.text)


def test_admin_keys_pass_every_route(web: WebServer) -> None:
    for method, path in operations(web):
        if path.endswith("/events"):
            continue  # a stream; its access is checked with a conversation in test_rest
        response = call(web, method, path, web.keys.admin)
        assert response.status_code not in {401, 403, 500}, (method, path, response.text)
