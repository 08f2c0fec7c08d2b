"""The fixtures that give each test its own PostgreSQL database and Redis key prefix."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis

from tests.services import POSTGRES_URL, RedisNamespace, need_module, need_path


async def test_each_test_gets_an_empty_database_of_its_own(postgres_url: str) -> None:
    assert postgres_url != POSTGRES_URL
    conn = await asyncpg.connect(postgres_url)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        await conn.execute("CREATE TABLE scratch (id int)")
    finally:
        await conn.close()
    assert tables == []


async def test_a_redis_namespace_is_a_prefix_nobody_else_uses(
    redis_namespace: RedisNamespace,
) -> None:
    client = redis.from_url(redis_namespace.url)
    try:
        assert [key async for key in client.scan_iter(match=redis_namespace.prefix + "*")] == []
        await client.set(redis_namespace.prefix + "k", "v")
        assert await client.get(redis_namespace.prefix + "k") == b"v"
    finally:
        await client.aclose()


def test_a_missing_module_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert need_module("json", "nothing").dumps([]) == "[]"
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=r"setup\.sh nothing") as skipped:
        need_module("no_such_module_here", "bash scripts/setup.sh nothing")
    # Called at a test module's top, it skips the module instead of stopping the collection.
    assert skipped.value.allow_module_level
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI installs every extra"):
        need_module("no_such_module_here", "bash scripts/setup.sh nothing")


def test_a_missing_path_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert need_path(tmp_path, "a folder") == tmp_path
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="data is missing"):
        need_path(tmp_path / "nope", "data")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\.\./shared"):
        need_path(tmp_path / "nope", "data")
