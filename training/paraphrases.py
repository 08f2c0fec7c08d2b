"""Training pairs for the embedder: FAQ paraphrases and logged queries, each with its entry."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.entries import FaqEntry, clean_text, derive_id, normalize_text
from retrieval.loaders import LoadError, Problem, iter_files, load_file

_MAX_FAQ_MB = 512


@dataclass(frozen=True, slots=True)
class TrainingPair:
    """A text a customer might send and the canonical question of the entry that answers it."""

    anchor: str
    positive: str
    faq_id: str
    from_log: bool = False


@dataclass(frozen=True, slots=True)
class LoggedQuery:
    """A question from the log with the entry that answered it, and where it was read."""

    query: str
    faq_id: str
    location: str


def read_faq(path: Path) -> tuple[list[FaqEntry], list[Problem]]:
    """FAQ entries from a file or folder in any format the importer reads, ids as it derives them.

    Entries the importer would reject are returned as problems; a missing or empty source, or
    one without a single usable entry, raises ValueError.
    """
    try:
        files = iter_files([path])
    except LoadError as exc:
        raise ValueError(str(exc)) from None
    entries: dict[str, FaqEntry] = {}
    problems: list[Problem] = []
    for file in files:
        try:
            _fmt, parsed = load_file(file, _MAX_FAQ_MB * 1024 * 1024)
        except LoadError as exc:
            raise ValueError(str(exc)) from None
        problems.extend(parsed.problems)
        for raw in parsed.entries:
            question = clean_text(raw.question)
            if not question:
                problems.append(Problem(str(file), raw.location, "empty question"))
                continue
            entry = FaqEntry(
                id=(raw.id or "").strip() or derive_id(file.name, question),
                question=question,
                answer=clean_text(raw.answer),
                alt_questions=tuple(a for a in map(clean_text, raw.alt_questions) if a),
                source=file.name,
                location=raw.location,
            )
            entries.setdefault(entry.id, entry)
    if not entries:
        raise ValueError(f"{path}: no FAQ entries found; expected questions with alt_questions")
    return list(entries.values()), problems


def read_logged_queries(path: Path) -> list[LoggedQuery]:
    """Query → entry pairs from JSON Lines `{"query", "faq_id"}`; out-of-scope rows are skipped."""
    rows: list[LoggedQuery] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not valid UTF-8; save the file as UTF-8") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: invalid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(row, dict) or not isinstance(row.get("query"), str):
            raise ValueError(f'{where}: expected {{"query": "...", "faq_id": "..."}}')
        faq_id = row.get("faq_id")
        if faq_id is None:
            continue
        if isinstance(faq_id, bool) or not isinstance(faq_id, str | int):
            raise ValueError(f"{where}: faq_id must be a string, a number or null")
        query = clean_text(row["query"])
        if not query:
            raise ValueError(f"{where}: empty query")
        rows.append(LoggedQuery(query, str(faq_id), where))
    return rows


def build_pairs(
    entries: Sequence[FaqEntry],
    logged: Iterable[LoggedQuery] = (),
    *,
    max_pairs: int | None = None,
    seed: int = 0,
) -> list[TrainingPair]:
    """Pairs every paraphrase and logged query with the question of its entry.

    The positive is always the entry's own question, so a batch sampler that refuses duplicate
    texts never puts two pairs of one entry in a batch, where each would be the other's false
    negative. `max_pairs` keeps the same number of pairs from every entry, as far as it can.
    """
    by_id = {entry.id: entry for entry in entries}
    groups = {
        entry.id: [TrainingPair(alt, entry.question, entry.id) for alt in entry.questions[1:]]
        for entry in entries
    }
    for row in logged:
        entry = by_id.get(row.faq_id)
        if entry is None:
            raise ValueError(
                f"{row.location}: unknown faq_id {row.faq_id!r}: it is not an entry of the FAQ"
            )
        if normalize_text(row.query) != normalize_text(entry.question):
            groups[entry.id].append(TrainingPair(row.query, entry.question, entry.id, True))
    rng = random.Random(seed)
    for group in groups.values():
        rng.shuffle(group)
    pairs = _round_robin(list(groups.values()))
    if max_pairs is not None:
        pairs = pairs[:max_pairs]
    rng.shuffle(pairs)
    return pairs


def _round_robin(groups: list[list[TrainingPair]]) -> list[TrainingPair]:
    """One pair from each group in turn, so that a prefix is balanced across entries."""
    out: list[TrainingPair] = []
    depth = max((len(group) for group in groups), default=0)
    for i in range(depth):
        out.extend(group[i] for group in groups if i < len(group))
    return out


def pairs_hash(pairs: Iterable[TrainingPair]) -> str:
    """A hash of the training pairs regardless of their order, to tell training sets apart."""
    digest = hashlib.sha256()
    for pair in sorted(pairs, key=lambda p: (p.faq_id, p.anchor, p.positive)):
        digest.update(f"{pair.faq_id}\x1f{pair.anchor}\x1f{pair.positive}\x1e".encode())
    return digest.hexdigest()[:32]
