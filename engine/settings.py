"""The configuration tree, read once from a TOML file by the entry points."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from engine.engine import EngineConfig
from engine.generators import GeneratorConfig
from engine.log import LogConfig
from engine.policy import PolicyConfig
from engine.sentiment import SentimentConfig
from retrieval import ImportConfig, RetrievalConfig

DEFAULT_CONFIG_FILE = Path("supportbot.toml")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every package's config; each section of the TOML file fills one field."""

    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    importing: ImportConfig = field(default_factory=ImportConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def engine_config(self) -> EngineConfig:
        """The engine's config with the policy and sentiment sections folded in."""
        return dataclasses.replace(self.engine, policy=self.policy, sentiment=self.sentiment)


_SECTIONS = {
    "retrieval": "retrieval",
    "import": "importing",
    "engine": "engine",
    "policy": "policy",
    "sentiment": "sentiment",
    "generator": "generator",
    "log": "log",
}


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
    hints = get_type_hints(type(default))
    known = {
        f.name
        for f in dataclasses.fields(default)  # type: ignore[arg-type]
        if not dataclasses.is_dataclass(getattr(default, f.name))  # nested: their own section
    }
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"{where} unknown key {key!r}; known: {sorted(known)}")
        changes[key] = _convert(value, hints[key], f"{where} {key}")
    return dataclasses.replace(default, **changes)  # type: ignore[type-var]


def _convert(value: Any, hint: Any, where: str) -> Any:
    """A TOML value as the field's type: Path from str, tuple from array, int widened to float."""
    options = get_args(hint) if get_origin(hint) in (UnionType, Union) else (hint,)
    for option in options:
        if option is type(None):
            continue
        if option is Path and isinstance(value, str):
            return Path(value)
        if get_origin(option) is tuple and isinstance(value, list):
            return tuple(value)
        if option is float and type(value) is int:
            return float(value)
        if isinstance(option, type) and type(value) is option:
            return value
        if get_origin(option) is Literal and value in get_args(option):
            return value
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options if o is not type(None))
    raise ValueError(f"{where} must be {names}, got {value!r}")
