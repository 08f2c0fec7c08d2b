"""The configuration tree, read once from a TOML file by the entry points."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from retrieval import ImportConfig, RetrievalConfig

DEFAULT_CONFIG_FILE = Path("supportbot.toml")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every package's config; each section of the TOML file fills one field."""

    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    importing: ImportConfig = field(default_factory=ImportConfig)


_SECTIONS = {"retrieval": "retrieval", "import": "importing"}


def load_settings(path: Path | None = None) -> Settings:
    """Settings from `path`, or from ./supportbot.toml when present, else the defaults.

    Unknown sections or keys and values of the wrong type are errors that name the key,
    so a typo never silently falls back to a default.
    """
    if path is None:
        if not DEFAULT_CONFIG_FILE.exists():
            return Settings()
        path = DEFAULT_CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise ValueError(
            f"{path}: unknown section(s) {sorted(unknown)}; known: {sorted(_SECTIONS)}"
        )
    defaults = Settings()
    parts = {
        attr: _section(getattr(defaults, attr), data.get(name, {}), f"{path}: [{name}]")
        for name, attr in _SECTIONS.items()
    }
    return Settings(**parts)


def _section(default: _T, values: dict[str, Any], where: str) -> _T:
    known = {f.name: f for f in dataclasses.fields(default)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"{where} unknown key {key!r}; known: {sorted(known)}")
        current = getattr(default, key)
        if isinstance(current, Path):
            if not isinstance(value, str):
                raise ValueError(f"{where} {key} must be a path string")
            value = Path(value)
        elif isinstance(current, bool) or not isinstance(current, int | float | str):
            if type(value) is not type(current):
                raise ValueError(f"{where} {key} must be {type(current).__name__}")
        elif isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif type(value) is not type(current):
            raise ValueError(f"{where} {key} must be {type(current).__name__}, got {value!r}")
        changes[key] = value
    return dataclasses.replace(default, **changes)  # type: ignore[type-var]
