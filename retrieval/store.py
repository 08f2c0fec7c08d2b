"""The knowledge base on disk: immutable version folders and an atomically swapped pointer.

Layout of a knowledge-base folder::

    CURRENT             name of the live version (replaced with os.replace, never edited)
    versions/v000007/   meta.json, entries.jsonl, rows.npz, index.faiss
    .import.lock        held by the one import that may run at a time

A reader resolves CURRENT once and reads one complete version folder; a writer builds a new
folder under a temporary name, renames it into place and only then points CURRENT at it.
A failed or interrupted import therefore leaves the previous version live and intact.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
import numpy.typing as npt

from retrieval.config import RetrievalConfig
from retrieval.embedders import Vectors
from retrieval.entries import FaqEntry
from retrieval.index import index_kind, read_index, write_index

log = logging.getLogger(__name__)

_POINTER = "CURRENT"
_VERSIONS = "versions"
_LOCK = ".import.lock"
_READ_RETRIES = 5
_LOCK_POLL_S = 0.05


class IndexMissing(FileNotFoundError):
    """No knowledge base has been imported at the configured folder yet."""


class ImportBusy(RuntimeError):
    """Another import holds the knowledge base's lock."""


@dataclass(frozen=True, slots=True)
class KbMeta:
    """What a version was built with; stored as meta.json beside the index."""

    version: str
    created: str
    embedder: str
    dim: int
    threshold: float
    threshold_source: str
    index: str
    entries: int
    rows: int
    # Score weights chosen for this version at import (retrieval/calibration.py); None: the
    # configured ones.
    centroid_weight: float | None = None
    lexical_weight: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One complete version of the knowledge base, loaded in memory."""

    meta: KbMeta
    entries: tuple[FaqEntry, ...]
    row_entry: npt.NDArray[np.int32]  # indexed row -> position in `entries`
    row_hash: npt.NDArray[np.bytes_]  # indexed row -> hash of (embedder, text)
    index: faiss.Index

    def vectors(self) -> Vectors:
        """The indexed vectors, in row order."""
        if self.index.ntotal == 0:
            return np.zeros((0, self.meta.dim), dtype=np.float32)
        return np.asarray(self.index.reconstruct_n(0, self.index.ntotal), dtype=np.float32)


def current_version(kb_dir: Path) -> str | None:
    """The name of the live version, or None when nothing was imported yet."""
    try:
        return (kb_dir / _POINTER).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def kept_versions(kb_dir: Path) -> list[KbMeta]:
    """The metadata of every version still on disk, newest first."""
    metas = []
    for folder in sorted((kb_dir / _VERSIONS).glob("v[0-9]*"), reverse=True):
        try:
            text = (folder / "meta.json").read_text(encoding="utf-8")
        except FileNotFoundError:  # pruned meanwhile
            continue
        metas.append(KbMeta(**json.loads(text)))
    return metas


def read_snapshot(kb_dir: Path, config: RetrievalConfig) -> Snapshot:
    """Load the live version; retries if an import swaps and prunes it meanwhile."""
    for _ in range(_READ_RETRIES):
        version = current_version(kb_dir)
        if version is None:
            raise IndexMissing(
                f"no knowledge base at {kb_dir}; run scripts/import_faq.py PATH --kb {kb_dir}"
            )
        try:
            return _read_version(kb_dir / _VERSIONS / version, config)
        except FileNotFoundError:
            log.info("version pruned while reading kb=%s version=%s; retrying", kb_dir, version)
    raise RuntimeError(f"knowledge base at {kb_dir} kept changing while being read")


def _read_version(folder: Path, config: RetrievalConfig) -> Snapshot:
    meta = KbMeta(**json.loads((folder / "meta.json").read_text(encoding="utf-8")))
    with (folder / "entries.jsonl").open(encoding="utf-8") as fh:
        entries = tuple(FaqEntry.from_json(json.loads(line)) for line in fh if line.strip())
    with np.load(folder / "rows.npz") as rows:
        row_entry = rows["row_entry"].astype(np.int32)
        row_hash = rows["row_hash"]
    index = read_index(folder / "index.faiss", config)
    assert index.ntotal == len(row_entry) == meta.rows, f"corrupt version folder {folder}"
    return Snapshot(meta, entries, row_entry, row_hash, index)


@contextlib.contextmanager
def import_lock(kb_dir: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the knowledge base's writer lock; a second writer waits up to `wait` seconds for it,
    then fails with ImportBusy instead of racing."""
    kb_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with (kb_dir / _LOCK).open("a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ImportBusy(
                        f"another import is running on {kb_dir}; try again later"
                    ) from None
                time.sleep(_LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_snapshot(
    kb_dir: Path,
    entries: tuple[FaqEntry, ...],
    row_entry: npt.NDArray[np.int32],
    row_hash: npt.NDArray[np.bytes_],
    index: faiss.Index,
    meta: KbMeta,
    *,
    keep_versions: int,
) -> KbMeta:
    """Write a new version folder and make it live; returns its metadata (with its name)."""
    versions = kb_dir / _VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    name = _next_version_name(versions)
    meta = replace(
        meta,
        version=name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        index=index_kind(index),
        entries=len(entries),
        rows=int(index.ntotal),
    )
    tmp = versions / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        with (tmp / "entries.jsonl").open("w", encoding="utf-8") as fh:
            for entry in entries:
                fh.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
        np.savez(tmp / "rows.npz", row_entry=row_entry, row_hash=row_hash)
        write_index(index, tmp / "index.faiss")
        (tmp / "meta.json").write_text(json.dumps(asdict(meta), indent=2), encoding="utf-8")
        _fsync_tree(tmp)
        tmp.rename(versions / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_to(kb_dir, name)
    _prune(versions, keep=max(keep_versions, 1), live=name)
    log.info("kb version live kb=%s version=%s entries=%d", kb_dir, name, len(entries))
    return meta


def write_meta_version(kb_dir: Path, snapshot: Snapshot, meta: KbMeta, *, keep: int) -> KbMeta:
    """Make a new version that shares the live one's data but carries new metadata."""
    return write_snapshot(
        kb_dir,
        snapshot.entries,
        snapshot.row_entry,
        snapshot.row_hash,
        snapshot.index,
        meta,
        keep_versions=keep,
    )


def _next_version_name(versions: Path) -> str:
    numbers = [int(p.name[1:]) for p in versions.glob("v[0-9]*") if p.name[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1:06d}"


def _point_to(kb_dir: Path, name: str) -> None:
    tmp = kb_dir / f".{_POINTER}.{uuid.uuid4().hex}"
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, kb_dir / _POINTER)
    _fsync_dir(kb_dir)


def _prune(versions: Path, *, keep: int, live: str) -> None:
    # Readers load a version fully within milliseconds and retry if it vanishes, so keeping a
    # few old versions is for rollback, not for safety.
    names = sorted(p.name for p in versions.glob("v[0-9]*"))
    for name in names[:-keep]:
        if name != live:
            shutil.rmtree(versions / name, ignore_errors=True)
    for stale in versions.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_threshold(
    kb_dir: Path, threshold: float, source: str, config: RetrievalConfig, *, keep: int
) -> KbMeta:
    """Store a tuned out-of-scope threshold with the knowledge base, as a new version."""
    with import_lock(kb_dir):
        snapshot = read_snapshot(kb_dir, config)
        meta = replace(snapshot.meta, threshold=threshold, threshold_source=source)
        return write_meta_version(kb_dir, snapshot, meta, keep=keep)


# History: every version keeps its data until pruned; changes.jsonl says who made each one.

_CHANGES = "changes.jsonl"
_VERSION_NAME = re.compile(r"v\d{6}")
Origin = Literal["edit", "delete", "import", "revert", "conversation"]


@dataclass(frozen=True, slots=True)
class KbChange:
    """Who made a version, when (Unix seconds) and from where; one line of changes.jsonl.

    An entry learned from a conversation keeps the ids of the conversation and the operator's
    turn and who wrote that reply, never the customer's text: the entry holds the approved
    wording, and erasing a customer from the log leaves nothing of theirs here.
    """

    version: str
    at: float
    author: str
    origin: Origin
    summary: str
    entry_id: str | None = None
    conversation_id: int | None = None
    turn_id: int | None = None
    operator: str | None = None


_CHANGE_FIELDS = frozenset(f.name for f in fields(KbChange))


def record_change(kb_dir: Path, change: KbChange) -> None:
    """Append one change record (a single write of one line, then fsync)."""
    line = json.dumps(asdict(change), ensure_ascii=False)
    with (kb_dir / _CHANGES).open("a+b") as fh:
        # A line cut short by a crash is ended first, so it spoils no other record.
        torn = False
        if fh.seek(0, os.SEEK_END) > 0:
            fh.seek(-1, os.SEEK_END)
            torn = fh.read(1) != b"\n"
        fh.write((("\n" if torn else "") + line + "\n").encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def read_changes(kb_dir: Path) -> list[KbChange]:
    """Every recorded change, oldest first; a torn last line is skipped, and so are fields this
    version does not know (records once kept the customer's wording)."""
    changes = []
    try:
        lines = (kb_dir / _CHANGES).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        changes.append(KbChange(**{k: v for k, v in data.items() if k in _CHANGE_FIELDS}))
    return changes


def version_entries(kb_dir: Path, version: str) -> tuple[FaqEntry, ...]:
    """The entries of a kept version; FileNotFoundError when it was pruned or never existed."""
    if not _VERSION_NAME.fullmatch(version):
        raise FileNotFoundError(f"no version {version!r}: names look like v000007")
    with (kb_dir / _VERSIONS / version / "entries.jsonl").open(encoding="utf-8") as fh:
        return tuple(FaqEntry.from_json(json.loads(line)) for line in fh if line.strip())


def restore_version(kb_dir: Path, version: str, config: RetrievalConfig, *, keep: int) -> KbMeta:
    """Make a kept version's exact content (entries, vectors, threshold) live as a new version."""
    if not _VERSION_NAME.fullmatch(version):
        raise FileNotFoundError(f"no version {version!r}: names look like v000007")
    with import_lock(kb_dir):
        old = _read_version(kb_dir / _VERSIONS / version, config)
        return write_meta_version(kb_dir, old, old.meta, keep=keep)
