"""Training sets from the conversation log: deduplicated, split by conversation, PII-checked.

Three sets come out of one log: question → entry pairs for the embedder, dialogue examples for
the answering model, and labelled customer messages for the sentiment classifier. Every example
keeps the id of the conversation it came from, so a conversation lands wholly in train or wholly
in validation, and the final PII check can name the examples that must be fixed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.log import LogExports, LogTarget, read_exports, redact
from engine.sentiment.base import Label
from retrieval.entries import FaqEntry, normalize_text
from retrieval.store import KbChange

Split = Literal["train", "validation"]


class PersonalDataFound(ValueError):
    """Training text still holds personal data the log's redaction missed; nothing is trained."""

    def __init__(self, offending: Sequence[str]) -> None:
        self.offending = list(offending)
        shown = ", ".join(self.offending[:20])
        more = f" and {len(self.offending) - 20} more" if len(self.offending) > 20 else ""
        super().__init__(
            f"refusing to train: {len(self.offending)} example(s) still hold an e-mail address, "
            f"phone, card or IBAN number: {shown}{more}; erase or redact those turns in the log "
            "(ConversationStore.erase_customer, the bot's /forget) and run again"
        )


@dataclass(frozen=True, slots=True)
class QueryPair:
    """A question and the entry that answers it, for the embedder; `source` is log or kb."""

    id: str
    conversation_id: int | None
    query: str
    faq_id: str
    source: str

    def texts(self) -> tuple[str, ...]:
        return (self.query,)


@dataclass(frozen=True, slots=True)
class DialogueRecord:
    """A reply worth learning from, with the dialogue before it and the entries retrieved for it.

    `source` is "operator" (written by a human) or "bot" (a bot answer rated 👍).
    """

    id: str
    conversation_id: int
    question: str
    history: tuple[tuple[str, str], ...]
    faq_ids: tuple[str, ...]
    answer: str
    source: str

    def texts(self) -> tuple[str, ...]:
        return (self.question, self.answer, *(text for _, text in self.history))


@dataclass(frozen=True, slots=True)
class SentimentRecord:
    """A customer message and its label; `source` says where the label came from."""

    id: str
    conversation_id: int | None
    text: str
    label: Label
    source: str

    def texts(self) -> tuple[str, ...]:
        return (self.text,)


Example = QueryPair | DialogueRecord | SentimentRecord


@dataclass(slots=True)
class DataSplit:
    """One kind of example, split into train and validation."""

    train: list[Any] = field(default_factory=list)
    validation: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.train) + len(self.validation)


@dataclass(slots=True)
class TrainingSets:
    """Everything one export produced, ready to write as JSON Lines."""

    pairs: DataSplit
    dialogues: DataSplit
    sentiment: DataSplit

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            name: {"train": len(part.train), "validation": len(part.validation)}
            for name, part in self._parts().items()
        }

    def data_hash(self, kind: str) -> str:
        """A hash of one kind's training examples, independent of their order."""
        part = self._parts()[kind]
        rows = sorted(json.dumps(asdict(r), sort_keys=True, ensure_ascii=False) for r in part.train)
        return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:32]

    def write(self, folder: Path) -> dict[str, Path]:
        """Write `<kind>.<split>.jsonl` files into `folder`; returns them by file stem."""
        folder.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, part in self._parts().items():
            for split, rows in (("train", part.train), ("validation", part.validation)):
                path = folder / f"{name}.{split}.jsonl"
                with path.open("w", encoding="utf-8") as fh:
                    for row in rows:
                        fh.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
                written[path.stem] = path
        return written

    def _parts(self) -> dict[str, DataSplit]:
        return {"pairs": self.pairs, "dialogues": self.dialogues, "sentiment": self.sentiment}


def export_training_sets(
    log: LogTarget,
    *,
    kb_entries: Sequence[FaqEntry] = (),
    kb_changes: Sequence[KbChange] = (),
    kb_versions: Callable[[str], Sequence[FaqEntry]] | None = None,
    validation_share: float = 0.2,
    seed: int = 0,
    context_turns: int = 6,
) -> TrainingSets:
    """Read the log (a `LogConfig`, an SQLite file or a database URL) into split,
    deduplicated, PII-checked training sets, through the log's typed export API.

    `kb_changes` (the knowledge base's change log) adds the questions each change made from a
    conversation gave its entry as logged pairs for that entry. The change records keep ids
    only; `kb_versions` (e.g. `functools.partial(version_entries, kb_dir)`) reads a version's
    entries to tell which questions the change added; without it, or once that version is
    pruned, all the live entry's questions count.

    Raises `PersonalDataFound` when any exported text still holds personal data.
    """
    if not 0.0 <= validation_share < 1.0:
        raise ValueError(f"validation_share must be in [0, 1), got {validation_share}")
    exports = read_exports(log, context_turns=context_turns)
    pairs = _dedupe(
        [
            *_log_pairs(exports),
            *_learned_pairs(kb_changes, kb_entries, kb_versions),
            *_kb_pairs(kb_entries),
        ],
        key=lambda p: (normalize_text(p.query), p.faq_id),
    )
    dialogues = _dedupe(
        list(_dialogues(exports)),
        key=lambda d: (normalize_text(d.question), normalize_text(d.answer), d.history),
    )
    sentiment = _dedupe(list(_sentiment(exports)), key=lambda s: normalize_text(s.text))
    check_personal_data([*pairs, *dialogues, *sentiment])
    return TrainingSets(
        pairs=split_by_conversation(pairs, validation_share, seed),
        dialogues=split_by_conversation(dialogues, validation_share, seed),
        sentiment=split_by_conversation(sentiment, validation_share, seed),
    )


def check_personal_data(examples: Iterable[Example]) -> None:
    """Raise `PersonalDataFound` naming each example whose text the log's redaction changes."""
    offending = [ex.id for ex in examples if any(redact(t) != t for t in ex.texts())]
    if offending:
        raise PersonalDataFound(offending)


def split_by_conversation(examples: Sequence[Example], share: float, seed: int = 0) -> DataSplit:
    """Put about `share` of the conversations (all their examples) in validation.

    The choice hashes the conversation id with `seed`, so it is stable as the log grows.
    Examples with no conversation (the knowledge base's own questions, and those learned
    from console edits) always train.
    """
    split = DataSplit()
    for example in examples:
        conversation = example.conversation_id
        if conversation is not None and _bucket(conversation, seed) < share:
            split.validation.append(example)
        else:
            split.train.append(example)
    return split


def _bucket(conversation_id: int, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _log_pairs(exports: LogExports) -> Iterable[QueryPair]:
    for pair in exports.answer_pairs:
        if pair.feedback != -1:
            yield QueryPair(
                f"turn-{pair.turn_id}", pair.conversation_id, pair.question, pair.faq_id, "log"
            )


def _learned_pairs(
    changes: Sequence[KbChange],
    entries: Sequence[FaqEntry],
    versions: Callable[[str], Sequence[FaqEntry]] | None,
) -> Iterable[QueryPair]:
    """The questions of each entry an operator's answer became or joined, as still live."""
    live = {entry.id: entry for entry in entries}
    for change in changes:
        if change.origin != "conversation" or change.entry_id is None:
            continue
        entry = live.get(change.entry_id)
        if entry is None:
            continue
        for number, question in enumerate(_added_questions(change, entry, versions)):
            # No conversation: the text was just saved into the knowledge base, so held out
            # it would score about 1 for any embedder and push the retraining gate to a tie.
            yield QueryPair(
                f"learned-{change.version}-{number}",
                None,
                question,
                change.entry_id,
                "log",
            )


def _added_questions(
    change: KbChange, entry: FaqEntry, versions: Callable[[str], Sequence[FaqEntry]] | None
) -> list[str]:
    """The live entry's questions that `change` added: those in its version and not in the
    version before it (all of them when the change's version can no longer be read)."""
    made = _entry_in(versions, change.version, entry.id)
    if made is None:
        return list(entry.questions)
    digits = change.version[1:]
    before = _entry_in(versions, f"v{int(digits) - 1:06d}", entry.id) if digits.isdigit() else None
    had = {normalize_text(q) for q in before.questions} if before else set()
    added = {normalize_text(q) for q in made.questions} - had
    return [q for q in entry.questions if normalize_text(q) in added]


def _entry_in(
    versions: Callable[[str], Sequence[FaqEntry]] | None, version: str, entry_id: str
) -> FaqEntry | None:
    if versions is None:
        return None
    try:
        return next((e for e in versions(version) if e.id == entry_id), None)
    except FileNotFoundError:  # pruned
        return None


def _kb_pairs(entries: Sequence[FaqEntry]) -> Iterable[QueryPair]:
    for entry in entries:
        for number, question in enumerate(entry.questions):
            yield QueryPair(f"kb-{entry.id}-{number}", None, question, entry.id, "kb")


def _dialogues(exports: LogExports) -> Iterable[DialogueRecord]:
    for example in exports.dialogue_examples:
        if example.feedback == -1:
            continue
        if example.role == "operator":
            source = "operator"
        elif example.action == "answer" and example.feedback == 1 and not example.handed_over:
            source = "bot"
        else:
            continue
        last_customer = max(i for i, (role, _) in enumerate(example.context) if role == "customer")
        yield DialogueRecord(
            f"turn-{example.turn_id}",
            example.conversation_id,
            example.context[last_customer][1],
            tuple(example.context[:last_customer]),
            example.faq_ids,
            example.reply,
            source,
        )


def _sentiment(exports: LogExports) -> Iterable[SentimentRecord]:
    for row in exports.sentiment_labels:
        if row.label not in ("negative", "neutral", "positive"):
            continue
        # The message that made the bot hand an upset customer over is negative, whatever
        # the model said at the time.
        label: Label = "negative" if row.escalated else row.label  # type: ignore[assignment]
        source = "escalation" if row.escalated else "model"
        yield SentimentRecord(f"turn-{row.turn_id}", row.conversation_id, row.text, label, source)


def _dedupe(examples: list[Any], key: Any) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for example in examples:
        k = key(example)
        if k not in seen:
            seen.add(k)
            out.append(example)
    return out
