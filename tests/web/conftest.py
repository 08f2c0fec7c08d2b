"""A web server over the sample knowledge base, embedded with the hash fake (HTTP is the point);
the same with console accounts; a log on SQLite and on PostgreSQL; Debian's Chromium and a
folder for screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.web.users import UserStore
from engine.log import LogConfig
from retrieval import ImportConfig, RetrievalConfig, import_paths
from tests.conftest import EXAMPLES
from tests.fakes import HashEmbedder
from tests.missing import missing
from tests.web.console_helpers import PASSWORD, console_config
from tests.web.server import WebServer, serve_web

HashKb = tuple[Path, HashEmbedder]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def hash_kb(tmp_path: Path) -> HashKb:
    """The sample shop's entries in a fresh knowledge base, embedded with the hash fake."""
    embedder = HashEmbedder()
    kb_dir = tmp_path / "kb"
    report = import_paths(
        [EXAMPLES / "kb"],
        kb_dir,
        embedder,
        RetrievalConfig(kb_dir=kb_dir),
        ImportConfig(),
        progress=False,
    )
    assert not report.problems, report.problems
    return kb_dir, embedder


@pytest.fixture
def web(tmp_path: Path, hash_kb: HashKb) -> Iterator[WebServer]:
    kb_dir, embedder = hash_kb
    with serve_web(tmp_path, kb_dir, embedder) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def any_log(request: pytest.FixtureRequest, tmp_path: Path) -> LogConfig:
    """An empty conversation log on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        return LogConfig(url=f"sqlite:///{tmp_path / 'log.db'}")
    url: str = request.getfixturevalue("postgres_url")
    return LogConfig(url=url)


@pytest.fixture
def site(tmp_path: Path, hash_kb: HashKb) -> Iterator[WebServer]:
    """A web server with the console: ann is an admin, olaf an operator (password PASSWORD)."""
    kb_dir, embedder = hash_kb
    config = console_config(tmp_path)
    users = UserStore(config.users_path)
    users.create("ann", "admin", PASSWORD)
    users.create("olaf", "operator", PASSWORD)
    with serve_web(tmp_path, kb_dir, embedder, config=config) as server:
        yield server


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; missing, the test skips locally and fails in CI."""
    if not CHROMIUM.exists():
        missing(
            f"Debian's Chromium is not at {CHROMIUM}",
            "apt-get install chromium",
            ci=".ci/run installs it",
        )
    return CHROMIUM


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """A folder for a browser test's screenshots, one per page it visits."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder
