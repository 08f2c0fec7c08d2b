"""Import FAQ documents into the knowledge base: parse, validate, embed what changed, swap."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retrieval.calibration import Calibration, calibrate
from retrieval.config import ImportConfig, RetrievalConfig
from retrieval.embedders import Embedder, Vectors, configured_embedder, document_embedder
from retrieval.entries import FaqEntry, chunk_answer, clean_text, derive_id
from retrieval.index import build_index
from retrieval.languages import MULTILINGUAL, detect_languages, unread_languages
from retrieval.loaders import LoadError, Problem, RawEntry, iter_files, load_file
from retrieval.store import (
    IndexMissing,
    KbMeta,
    Snapshot,
    import_lock,
    read_snapshot,
    write_snapshot,
)

log = logging.getLogger(__name__)

_EMBED_STEP = 512


class NothingToImport(ValueError):
    """No valid entry was found; `report` says which files and entries were rejected."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        super().__init__("nothing to import: no valid entries were found")


@dataclass(slots=True)
class ImportReport:
    """What an import did; `problems` lists every rejected entry and skipped file."""

    files: list[str] = field(default_factory=list)
    skipped_files: list[Problem] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    kept_from_skipped: int = 0
    embedded: int = 0
    version: str | None = None
    # What the importer decided on its own: another embedder for the entries' languages.
    notes: list[str] = field(default_factory=list)
    # The weights and threshold chosen for this version (None: kept or calibration off).
    calibration: Calibration | None = None

    @property
    def problems(self) -> list[Problem]:
        return [*self.skipped_files, *self.rejected]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        return (
            f"added {self.added} / updated {self.updated} / unchanged {self.unchanged} / "
            f"removed {self.removed} / rejected {len(self.rejected)}"
        )


def import_paths(
    paths: Iterable[Path],
    kb_dir: Path,
    embedder: Embedder,
    config: RetrievalConfig,
    import_config: ImportConfig,
    *,
    replace: bool = False,
    allow_empty_answers: bool = False,
    progress: bool = True,
) -> ImportReport:
    """Import documents into the knowledge base at `kb_dir` and make the result live.

    Without `replace`, entries are added or updated and the others stay; with `replace`, the
    knowledge base becomes exactly what was read, except entries from files that failed to
    load, which are kept so that one bad file never empties the bot.
    """
    report = ImportReport()
    incoming = _read_documents(paths, import_config, allow_empty_answers, report)
    with import_lock(kb_dir):
        try:
            previous: Snapshot | None = read_snapshot(kb_dir, config)
        except IndexMissing:
            previous = None
        entries = _merge(previous, incoming, replace, report)
        _publish(kb_dir, previous, entries, embedder, config, import_config, report, progress)
    return report


def edit_entries(
    kb_dir: Path,
    embedder: Embedder,
    config: RetrievalConfig,
    import_config: ImportConfig,
    *,
    upsert: Sequence[FaqEntry] = (),
    remove: Sequence[str] = (),
    amend: Mapping[str, Callable[[FaqEntry], FaqEntry]] | None = None,
    wait: float = 0.0,
) -> ImportReport:
    """Add or replace single entries and remove others by id, as one new live version.

    `amend` maps ids to functions that turn the live entry into its new form; they run under
    the writer lock, so a read-modify-write loses no concurrent change. Unknown ids in `remove`
    or `amend` raise KeyError; the entries are taken as given (clean them first). `wait` is how
    long to wait for another writer before raising ImportBusy.
    """
    report = ImportReport()
    with import_lock(kb_dir, wait=wait):
        try:
            previous: Snapshot | None = read_snapshot(kb_dir, config)
        except IndexMissing:
            previous = None
        old = {e.id: e for e in previous.entries} if previous else {}
        amend = amend or {}
        missing = [entry_id for entry_id in [*remove, *amend] if entry_id not in old]
        if missing:
            raise KeyError(f"no entries {missing} in the knowledge base at {kb_dir}")
        merged = {k: e for k, e in old.items() if k not in set(remove)}
        report.removed = len(old) - len(merged)
        amended = [change(old[entry_id]) for entry_id, change in amend.items()]
        assert [e.id for e in amended] == list(amend), "an amended entry keeps its id"
        for entry in [*upsert, *amended]:
            before = old.get(entry.id)
            if before is None:
                report.added += 1
            elif before.content_hash != entry.content_hash:
                report.updated += 1
            else:
                report.unchanged += 1
            merged[entry.id] = entry
        entries = tuple(merged.values())
        _publish(kb_dir, previous, entries, embedder, config, import_config, report, False)
    return report


def _publish(
    kb_dir: Path,
    previous: Snapshot | None,
    entries: tuple[FaqEntry, ...],
    embedder: Embedder,
    config: RetrievalConfig,
    import_config: ImportConfig,
    report: ImportReport,
    progress: bool,
) -> None:
    """Embed what changed and write the entries as the new live version (lock held)."""
    if entries:
        embedder = _reading_embedder(entries, embedder, config, report)
    same_model = previous is not None and previous.meta.embedder == embedder.name
    if previous is not None and same_model and not report.changed:
        report.version = previous.meta.version
        log.info("kb unchanged kb=%s version=%s", kb_dir, report.version)
        return
    if not entries:
        raise NothingToImport(report)
    # An int8 query encoder leaves the indexed texts to its full-precision twin.
    embedder = document_embedder(embedder)
    row_entry, row_hash, vectors = _embed_rows(
        entries, embedder, previous if same_model else None, report, progress
    )
    meta = KbMeta(
        version="",
        created="",
        embedder=embedder.name,
        dim=embedder.dim,
        threshold=previous.meta.threshold if previous and same_model else config.default_threshold,
        threshold_source=previous.meta.threshold_source if previous and same_model else "default",
        index="",
        entries=0,
        rows=0,
    )
    # A threshold tuned on labelled queries is kept, and so is a calibration that a small
    # change cannot move (it costs seconds on a large knowledge base); otherwise recalibrate.
    changed = report.added + report.updated + report.removed
    if config.calibrate and not (
        meta.threshold_source.startswith("tuned")
        or (meta.threshold_source.startswith("calibrated") and changed < 0.05 * len(entries))
    ):
        found = calibrate(entries, row_entry, vectors, embedder, config)
        meta = dataclasses.replace(
            meta,
            threshold=found.threshold,
            threshold_source=found.source,
            centroid_weight=found.weights.centroid,
            lexical_weight=found.weights.lexical,
        )
        report.calibration = found
    elif previous is not None and same_model:
        meta = dataclasses.replace(
            meta,
            centroid_weight=previous.meta.centroid_weight,
            lexical_weight=previous.meta.lexical_weight,
        )
    written = write_snapshot(
        kb_dir,
        entries,
        row_entry,
        row_hash,
        build_index(vectors, config),
        meta,
        keep_versions=import_config.keep_versions,
    )
    report.version = written.version


def _reading_embedder(
    entries: Sequence[FaqEntry], embedder: Embedder, config: RetrievalConfig, report: ImportReport
) -> Embedder:
    """`embedder`, or a multilingual one when `embedder` cannot read the entries' languages."""
    languages = detect_languages(e.question for e in entries)
    unread = unread_languages(embedder.name, languages)
    if not unread:
        return embedder
    names = ", ".join(sorted(unread))
    try:
        chosen = configured_embedder(config, MULTILINGUAL)
    except ValueError as exc:
        raise ValueError(
            f"the knowledge base is written in {names}, which {embedder.name} cannot read; "
            f"{exc}, and set [retrieval] embedder = {MULTILINGUAL!r}"
        ) from None
    report.notes.append(
        f"entries in {names}: embedded with {chosen.name} ({embedder.name} reads English only)"
    )
    return chosen


def _read_documents(
    paths: Iterable[Path],
    config: ImportConfig,
    allow_empty_answers: bool,
    report: ImportReport,
) -> dict[str, FaqEntry]:
    incoming: dict[str, FaqEntry] = {}
    files: list[Path] = []
    for given in paths:
        try:
            files.extend(f for f in iter_files([given]) if f not in files)
        except LoadError as exc:
            report.skipped_files.append(exc.problem)
    max_bytes = int(config.max_file_mb * 1024 * 1024)
    for path in files:
        try:
            _fmt, parsed = load_file(path, max_bytes)
        except LoadError as exc:
            report.skipped_files.append(exc.problem)
            continue
        report.files.append(str(path))
        report.rejected.extend(parsed.problems)
        for raw in parsed.entries:
            entry = _to_entry(raw, path, config, allow_empty_answers, report)
            if entry is None:
                continue
            first = incoming.get(entry.id)
            if first is None:
                incoming[entry.id] = entry
            elif first.content_hash != entry.content_hash:
                report.rejected.append(
                    Problem(
                        str(path),
                        raw.location,
                        f"duplicate id {entry.id!r} with different content "
                        f"(first seen in {first.source}, {first.location}); kept the first",
                    )
                )
    return incoming


def _to_entry(
    raw: RawEntry,
    path: Path,
    config: ImportConfig,
    allow_empty_answers: bool,
    report: ImportReport,
) -> FaqEntry | None:
    question = clean_text(raw.question)
    answer = clean_text(raw.answer)
    if not question:
        report.rejected.append(Problem(str(path), raw.location, "empty question"))
        return None
    if not answer and not allow_empty_answers:
        report.rejected.append(
            Problem(str(path), raw.location, f"question {question[:60]!r} has an empty answer")
        )
        return None
    alts = tuple(a for a in (clean_text(alt) for alt in raw.alt_questions) if a)
    return FaqEntry(
        id=(raw.id or "").strip() or derive_id(path.name, question),
        question=question,
        answer=answer,
        alt_questions=alts,
        source=path.name,
        location=raw.location,
        chunks=chunk_answer(answer, config.chunk_chars),
    )


def _merge(
    previous: Snapshot | None,
    incoming: dict[str, FaqEntry],
    replace: bool,
    report: ImportReport,
) -> tuple[FaqEntry, ...]:
    old = {e.id: e for e in previous.entries} if previous else {}
    skipped_sources = {Path(p.path).name for p in report.skipped_files}
    merged: dict[str, FaqEntry] = {}
    for entry_id, entry in old.items():
        if not replace:
            merged[entry_id] = entry
        elif entry.source in skipped_sources and entry_id not in incoming:
            merged[entry_id] = entry
            report.kept_from_skipped += 1
    for entry_id, entry in incoming.items():
        before = old.get(entry_id)
        if before is None:
            report.added += 1
        elif before.content_hash != entry.content_hash:
            report.updated += 1
        else:
            report.unchanged += 1
        merged[entry_id] = entry
    report.removed = sum(1 for entry_id in old if entry_id not in merged)
    if not replace:
        report.unchanged += sum(1 for entry_id in old if entry_id not in incoming)
    return tuple(merged.values())


def row_key(embedder_name: str, text: str) -> bytes:
    """The cache key of one indexed text: its vector depends only on the model and the text."""
    return hashlib.sha256(f"{embedder_name}\n{text}".encode()).hexdigest()[:32].encode()


def _embed_rows(
    entries: Sequence[FaqEntry],
    embedder: Embedder,
    previous: Snapshot | None,
    report: ImportReport,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, Vectors]:
    texts = [q for e in entries for q in e.questions]
    row_entry = np.fromiter(
        (i for i, e in enumerate(entries) for _ in e.questions), dtype=np.int32, count=len(texts)
    )
    keys = np.array([row_key(embedder.name, t) for t in texts], dtype="S32")
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    missing = list(range(len(texts)))
    if previous is not None and len(previous.row_hash):
        cached = {bytes(k): i for i, k in enumerate(previous.row_hash)}
        hits = [(i, cached[bytes(k)]) for i, k in enumerate(keys) if bytes(k) in cached]
        if hits:
            dst, src = (np.array(x) for x in zip(*hits, strict=True))
            vectors[dst] = previous.vectors()[src]
        found = set(int(i) for i, _ in hits)
        missing = [i for i in range(len(texts)) if i not in found]
    report.embedded = len(missing)
    with tqdm(
        total=len(missing), desc="embedding", unit="q", disable=not progress or not missing
    ) as bar:
        for start in range(0, len(missing), _EMBED_STEP):
            batch = missing[start : start + _EMBED_STEP]
            vectors[batch] = embedder.encode([texts[i] for i in batch])
            bar.update(len(batch))
    return row_entry, keys, vectors
