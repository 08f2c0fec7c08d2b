"""Versioned models: `<root>/<kind>/<version>/` with metadata.json and an atomic `current` pointer.

The pointer is a small text file naming the live version, replaced with `os.replace`, so a
reader sees the old version or the new one, never half of either. `current/` itself is not a
folder: the running engine reads the pointer with `engine.pickup.live_version` (the layout is
defined there, so the engine needs nothing from training) and swaps the model in. Every
promotion is appended to `history.jsonl`, which is what `rollback` walks back along.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.pickup import MODEL_KINDS, POINTER, live_version

KINDS = MODEL_KINDS
METADATA = "metadata.json"
_POINTER = POINTER
_HISTORY = "history.jsonl"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One stored model: its kind, version name, folder and metadata."""

    kind: str
    version: str
    path: Path
    metadata: dict[str, Any]


class ModelRegistry:
    """The model folders under `root` (default `var/models`), one sub-folder per kind."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, kind: str, source: Path, metadata: dict[str, Any]) -> ModelVersion:
        """Move the model folder `source` in as a new version (not yet live) with its metadata."""
        folder = self._kind_dir(kind)
        folder.mkdir(parents=True, exist_ok=True)
        # Names sort in creation order; the suffix keeps two processes apart.
        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f") + f"-{uuid.uuid4().hex[:6]}"
        staging = folder / f".tmp-{version}"
        shutil.copytree(source, staging)
        meta = {
            **metadata,
            "kind": kind,
            "version": version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (staging / METADATA).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        staging.rename(folder / version)
        return ModelVersion(kind, version, folder / version, meta)

    def versions(self, kind: str) -> list[ModelVersion]:
        """Every stored version of `kind`, oldest first."""
        folder = self._kind_dir(kind)
        if not folder.is_dir():
            return []
        return [
            self.get(kind, path.name)
            for path in sorted(folder.iterdir())
            if path.is_dir() and not path.name.startswith(".") and (path / METADATA).is_file()
        ]

    def get(self, kind: str, version: str) -> ModelVersion:
        path = self._kind_dir(kind) / version
        meta_file = path / METADATA
        if not meta_file.is_file():
            raise KeyError(f"no {kind} model version {version!r} under {self._kind_dir(kind)}")
        return ModelVersion(kind, version, path, json.loads(meta_file.read_text(encoding="utf-8")))

    def current(self, kind: str) -> ModelVersion | None:
        """The live version of `kind`, or None when none was promoted yet."""
        name = live_version(self.root, kind)
        return self.get(kind, name) if name else None

    def current_path(self, kind: str) -> Path | None:
        """The folder of the live version of `kind`, or None."""
        current = self.current(kind)
        return current.path if current else None

    def promote(self, kind: str, version: str) -> ModelVersion:
        """Make `version` the live one of `kind` (atomically) and record it in the history."""
        chosen = self.get(kind, version)
        self._point_to(kind, version)
        with (self._kind_dir(kind) / _HISTORY).open("a", encoding="utf-8") as fh:
            entry = {"version": version, "at": datetime.now(UTC).isoformat(timespec="seconds")}
            fh.write(json.dumps(entry) + "\n")
        return chosen

    def rollback(self, kind: str) -> ModelVersion:
        """Make the version live before the current one live again; returns it.

        Raises ValueError when there is nothing earlier to go back to.
        """
        history = self._history(kind)
        current = self.current(kind)
        if current is None:
            raise ValueError(f"no {kind} model is live; nothing to roll back")
        # Walk back past the live version to the newest other version that still exists.
        earlier = [v for v in history if v != current.version]
        while earlier:
            candidate = earlier.pop()
            if (self._kind_dir(kind) / candidate / METADATA).is_file():
                self.promote(kind, candidate)
                # The rolled-back version must not be the target of the next rollback.
                self._rewrite_history(kind, [v for v in history if v != current.version])
                return self.get(kind, candidate)
        raise ValueError(f"{kind} version {current.version} is the only one promoted; keep it")

    def _history(self, kind: str) -> list[str]:
        path = self._kind_dir(kind) / _HISTORY
        if not path.is_file():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["version"] for line in lines if line.strip()]

    def _rewrite_history(self, kind: str, versions: list[str]) -> None:
        compact: list[str] = []
        for version in versions:
            if not compact or compact[-1] != version:
                compact.append(version)
        path = self._kind_dir(kind) / _HISTORY
        tmp = path.with_name(f".{_HISTORY}.{uuid.uuid4().hex}")
        tmp.write_text("".join(json.dumps({"version": v}) + "\n" for v in compact), "utf-8")
        os.replace(tmp, path)

    def _point_to(self, kind: str, version: str) -> None:
        folder = self._kind_dir(kind)
        tmp = folder / f".{_POINTER}.{uuid.uuid4().hex}"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / _POINTER)

    def _kind_dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(KINDS)}")
        return self.root / kind
