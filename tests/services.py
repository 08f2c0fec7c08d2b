"""The real PostgreSQL and Redis servers the machines run, each test's data kept apart.

The URLs come from the environment (`SUPPORTBOT_TEST_POSTGRES`, `SUPPORTBOT_TEST_REDIS`) with the
machines' defaults. Without a server a test skips with the reason; with `CI=true` it fails, so CI
can never go green by skipping them.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from tests.missing import missing

POSTGRES_URL = os.environ.get(
    "SUPPORTBOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SUPPORTBOT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def unavailable(what: str, error: BaseException, install: str) -> NoReturn:
    """Skip the test for a missing server, or fail it where CI must run it."""
    missing(
        f"{what} is not reachable ({type(error).__name__}: {error})",
        install,
        ci="CI runs this test against a real server",
    )


def need_module(name: str, install: str) -> Any:
    """Import `name`, or skip with the command that installs it; with `CI=true`, which installs
    every extra, fail instead."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        missing(f"{name} is not installed ({error})", install, ci="CI installs every extra")


def need_path(path: Path, what: str) -> Path:
    """`path`, or skip where it is missing; with `CI=true` (which runs beside ../shared) fail."""
    if not path.exists():
        missing(
            f"{what} is missing: {path}",
            "put the shared data sets at ../shared/data, beside this clone",
            ci="CI runs with ../shared beside the clone",
        )
    return path


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


async def fresh_postgres_database() -> AsyncIterator[str]:
    """Create an empty database of its own, yield its URL, drop it afterwards."""
    asyncpg = need_module("asyncpg", "bash scripts/setup.sh postgres")
    name = f"supportbot_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        unavailable(
            f"PostgreSQL at {POSTGRES_URL}",
            error,
            "start one (apt-get install postgresql) or set SUPPORTBOT_TEST_POSTGRES",
        )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass(frozen=True, slots=True)
class RedisNamespace:
    """A Redis server and a key prefix no other test run uses."""

    url: str
    prefix: str


async def fresh_redis_namespace() -> AsyncIterator[RedisNamespace]:
    """Yield a key prefix of its own on the Redis server; delete its keys afterwards."""
    redis = need_module("redis.asyncio", "bash scripts/setup.sh redis")
    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as error:
        await client.aclose()
        unavailable(
            f"Redis at {REDIS_URL}",
            error,
            "start one (apt-get install redis-server) or set SUPPORTBOT_TEST_REDIS",
        )
    prefix = f"supportbot-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield RedisNamespace(REDIS_URL, prefix)
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
