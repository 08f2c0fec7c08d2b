"""Where the log lives: a file path or a database URL, in the config and on command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.log import LogConfig, log_config_for


def test_the_default_is_the_sqlite_file_at_path() -> None:
    config = LogConfig()
    assert config.location == "sqlite:///var/conversations.db"
    assert (config.scheme, config.sqlite_path) == ("sqlite", Path("var/conversations.db"))


def test_sqlite_urls_name_relative_and_absolute_files() -> None:
    assert LogConfig(url="sqlite:///var/x.db").sqlite_path == Path("var/x.db")
    assert LogConfig(url="sqlite:////srv/log/x.db").sqlite_path == Path("/srv/log/x.db")


def test_postgres_urls_pick_postgresql_whatever_the_spelling() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+asyncpg://u@h/db"):
        assert LogConfig(url=url).scheme == "postgresql"
    with pytest.raises(ValueError, match="not an SQLite file"):
        _ = LogConfig(url="postgresql://u@h/db").sqlite_path


def test_a_command_line_target_is_a_path_or_a_url() -> None:
    base = LogConfig(url="postgresql://u@h/db", redact_pii=False)
    from_path = log_config_for("elsewhere.db", base)
    assert (from_path.url, from_path.path, from_path.redact_pii) == (
        "",
        Path("elsewhere.db"),
        False,
    )
    assert log_config_for("postgresql://other/db").url == "postgresql://other/db"


def test_impossible_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="has no scheme"):
        LogConfig(url="var/conversations.db")
    with pytest.raises(ValueError, match="pool_max must be at least 1"):
        LogConfig(pool_max=0)
