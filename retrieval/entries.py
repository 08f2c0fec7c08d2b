"""FAQ entries: the unit the knowledge base stores, with stable ids and content hashes."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

_SLUG_MAX = 48
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])\s*")


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """One question with its answer, alternative phrasings and where it came from."""

    id: str
    question: str
    answer: str
    alt_questions: tuple[str, ...] = ()
    source: str = ""
    location: str = ""
    chunks: tuple[str, ...] = field(default=())

    @property
    def questions(self) -> tuple[str, ...]:
        """The question followed by every distinct alternative phrasing."""
        seen = {normalize_text(self.question)}
        out = [self.question]
        for alt in self.alt_questions:
            key = normalize_text(alt)
            if key and key not in seen:
                seen.add(key)
                out.append(alt)
        return tuple(out)

    @property
    def content_hash(self) -> str:
        """Hash of what a reader sees; a changed hash means the entry was updated."""
        payload = "\x1f".join([self.question, self.answer, *self.alt_questions])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "alt_questions": list(self.alt_questions),
            "source": self.source,
            "location": self.location,
            "chunks": list(self.chunks),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> FaqEntry:
        alts = data.get("alt_questions") or []
        chunks = data.get("chunks") or []
        assert isinstance(alts, list) and isinstance(chunks, list)
        return cls(
            id=str(data["id"]),
            question=str(data["question"]),
            answer=str(data.get("answer") or ""),
            alt_questions=tuple(str(a) for a in alts),
            source=str(data.get("source") or ""),
            location=str(data.get("location") or ""),
            chunks=tuple(str(c) for c in chunks),
        )


def normalize_text(text: str) -> str:
    """Case- and whitespace-insensitive form of a text, for comparisons and ids."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def clean_text(text: str) -> str:
    """Collapse runs of spaces inside lines and blank-line runs, keep paragraph breaks."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def derive_id(source: str, question: str) -> str:
    """A stable id from the source file name and the question, used when none is given.

    The same question in the same file always gets the same id, so re-importing a changed
    answer updates the entry instead of adding a second one.
    """
    stem = re.sub(r"[^a-z0-9]+", "-", source.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower())
    ascii_q = unicodedata.normalize("NFKD", normalize_text(question))
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_q.encode("ascii", "ignore").decode()).strip("-")
    digest = hashlib.sha1(f"{source}\n{normalize_text(question)}".encode()).hexdigest()[:8]
    if not slug or len(slug) > _SLUG_MAX or len(slug) < len(normalize_text(question)) // 2:
        slug = f"{slug[:_SLUG_MAX].rstrip('-')}-{digest}".lstrip("-")
    return f"{stem.strip('-') or 'faq'}/{slug}"


def chunk_answer(answer: str, max_chars: int) -> tuple[str, ...]:
    """Split a long answer into pieces of at most about `max_chars` for generation context.

    Splits at paragraph breaks first, then at sentence ends; a single sentence longer than
    the limit stays whole rather than being cut mid-word.
    """
    if len(answer) <= max_chars:
        return (answer,) if answer else ()
    pieces: list[str] = []
    for paragraph in answer.split("\n\n"):
        pieces.extend(s for s in _SENTENCE_END.split(paragraph) if s.strip())
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}".strip() if current else piece
        if current and len(candidate) > max_chars:
            chunks.append(current)
            current = piece
        else:
            current = candidate
    if current:
        chunks.append(current)
    return tuple(chunks)
