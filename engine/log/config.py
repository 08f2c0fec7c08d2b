"""Where the conversation log lives and how it writes: one frozen config for every store."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_SQLITE = "sqlite:///"


@dataclass(frozen=True, slots=True)
class LogConfig:
    """The log's database, whether it redacts personal data, how writes batch.

    `url` picks the store: `sqlite:///var/conversations.db` (a file, relative to the working
    directory; `sqlite:////abs/path.db` for an absolute one) or `postgresql://user@host/db`.
    Left empty, the log is the SQLite file at `path`.
    """

    path: Path = Path("var/conversations.db")
    url: str = ""
    redact_pii: bool = True
    # SQLite: a batch commits when it holds batch_max writes or batch_wait_ms after its first.
    batch_max: int = 64
    batch_wait_ms: float = 0.0
    # PostgreSQL: connections each process keeps open at most.
    pool_max: int = 10

    def __post_init__(self) -> None:
        if self.batch_max < 1:
            raise ValueError(f"log batch_max must be at least 1, got {self.batch_max}")
        if self.batch_wait_ms < 0:
            raise ValueError(f"log batch_wait_ms must be 0 or more, got {self.batch_wait_ms}")
        if self.pool_max < 1:
            raise ValueError(f"log pool_max must be at least 1, got {self.pool_max}")
        if self.url and "://" not in self.url:
            raise ValueError(
                f"log url {self.url!r} has no scheme; write sqlite:///PATH or "
                "postgresql://user@host/database"
            )

    @property
    def location(self) -> str:
        """The database as a URL, whether it was given as `url` or as `path`."""
        return self.url or f"{_SQLITE}{self.path}"

    @property
    def scheme(self) -> str:
        """The URL's scheme without a driver suffix: "sqlite" or "postgresql"."""
        scheme = urlsplit(self.location).scheme.split("+")[0]
        return "postgresql" if scheme == "postgres" else scheme

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file this config points at; an error for any other database."""
        if not self.url:
            return self.path
        if self.scheme != "sqlite" or not self.url.startswith(_SQLITE):
            raise ValueError(f"log url {self.url!r} is not an SQLite file (sqlite:///PATH)")
        return Path(self.url.removeprefix(_SQLITE))


def log_config_for(target: str | Path, base: LogConfig | None = None) -> LogConfig:
    """`base` (default: the defaults) pointed at `target`: a database URL, or a file path.

    This is how every command's `--db` takes either `var/conversations.db` or a URL.
    """
    base = base or LogConfig()
    text = str(target)
    if "://" in text:
        return dataclasses.replace(base, url=text)
    return dataclasses.replace(base, url="", path=Path(text))
