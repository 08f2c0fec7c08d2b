"""Property-based run of the OpenAPI schema (schemathesis): no 500, every response as documented.

Size: up to 25 valid and 25 invalid generated requests per operation (20 operations, about
900 requests, some 30 s), with an admin key so that every route is reached; the live event
stream is left out (it never ends by design).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from engine.settings import WebConfig
from tests.ports import free_port
from tests.web.conftest import HashKb
from tests.web.server import WebServer, serve_web

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def fuzzed(tmp_path: Path, hash_kb: HashKb) -> Iterator[WebServer]:
    kb_dir, embedder = hash_kb
    config = WebConfig(
        listen_port=free_port(),
        keys_path=tmp_path / "keys.db",
        rate_per_minute=1e6,
        rate_burst=1_000_000,
    )
    with serve_web(tmp_path, kb_dir, embedder, config=config) as server:
        yield server


def test_api_matches_its_schema(fuzzed: WebServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    operations = []
    for found in schema.exclude(path_regex=r"/events$").get_all_operations():
        assert isinstance(found, Ok), found  # an operation the schema describes wrongly fails
        operations.append(found.ok())
    assert len(operations) >= 18
    headers = {"Authorization": f"Bearer {fuzzed.keys.admin}"}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    calls: Counter[int] = Counter()
    unnegatable: list[str] = []
    cases = [(op, mode) for op in operations for mode in GenerationMode]
    for operation, mode in cases:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Case[Any]) -> None:
            response = case.call_and_validate(headers=headers, checks=checks, timeout=30)
            calls[response.status_code] += 1

        try:
            run()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise
            unnegatable.append(operation.label)  # no input to make invalid (GET /health)
    print(
        f"schemathesis: {sum(calls.values())} requests over {len(operations)} operations:",
        dict(calls),
    )
    assert sum(calls.values()) >= len(operations) * 5
    assert calls[200] + calls[201] > len(operations)  # valid requests got through, not only errors
