"""JSON Lines (one FAQ object a line) and JSON (a list of FAQ objects) documents."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from retrieval.loaders._base import LoadError, Parsed, Problem, RawEntry, decode_text
from retrieval.loaders._columns import match_columns, split_alternatives

log = logging.getLogger(__name__)

CONTAINER_KEYS = ("faqs", "entries", "items")


def json_flavour(text: str) -> str:
    """Tell "jsonl" from "json" by content: one object on the first line means JSON Lines.

    A pretty-printed JSON document does not fit on its first line, while a JSON Lines file
    does, even when that line is broken (it still ends with `}`).
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "json"
    first = stripped.split("\n", 1)[0].strip()
    try:
        value = json.loads(first)
    except ValueError:
        return "jsonl" if first.endswith("}") else "json"
    if isinstance(value, dict) and any(k in value for k in CONTAINER_KEYS):
        return "json"
    return "jsonl"


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def entry_from_object(obj: dict[str, object], location: str) -> RawEntry | str:
    """Build an entry from one FAQ object, or say why it cannot be used.

    Keys are matched like table columns (`Question`, `q`, `title` ...); a list of questions
    is read as the question followed by its alternatives.
    """
    keys = list(obj)
    columns = match_columns(keys)

    def field(index: int | None) -> tuple[str, object]:
        return ("", None) if index is None else (keys[index], obj[keys[index]])

    question_key, question = field(columns.question)
    answer_key, answer = field(columns.answer)
    id_key, entry_id = field(columns.id)
    alts_key, alts = field(columns.alt_questions)
    if not question_key:
        return f'no "question" key (keys found: {", ".join(keys) or "none"})'
    alt_questions: tuple[str, ...] = ()
    if isinstance(question, list) and question and all(isinstance(q, str) for q in question):
        question, alt_questions = question[0], tuple(question[1:])
    if not isinstance(question, str):
        return f'"{question_key}" must be a string, not {_type_name(question)}'
    if answer is not None and not isinstance(answer, str):
        return f'"{answer_key}" must be a string, not {_type_name(answer)}'
    if entry_id is not None and (isinstance(entry_id, bool) or not isinstance(entry_id, str | int)):
        return f'"{id_key}" must be a string or a number, not {_type_name(entry_id)}'
    if isinstance(alts, str):
        alt_questions += split_alternatives(alts)
    elif isinstance(alts, list) and all(isinstance(a, str) for a in alts):
        alt_questions += tuple(a for a in alts if isinstance(a, str) and a.strip())
    elif alts is not None:
        return f'"{alts_key}" must be a list of strings or a string, not {_type_name(alts)}'
    return RawEntry(
        question=question,
        answer=answer or "",
        location=location,
        id=None if entry_id is None else str(entry_id),
        alt_questions=alt_questions,
    )


def _add(parsed: Parsed, path: Path, value: object, location: str) -> None:
    if not isinstance(value, dict):
        reason = f"expected a JSON object with a question, got {_type_name(value)}"
        parsed.problems.append(Problem(str(path), location, reason))
        return
    result = entry_from_object(value, location)
    if isinstance(result, str):
        parsed.problems.append(Problem(str(path), location, result))
    else:
        parsed.entries.append(result)


def load_jsonl(path: Path, data: bytes) -> Parsed:
    """Read one FAQ object per line; a bad line is reported and the others still load."""
    parsed = Parsed()
    # Not splitlines(): U+2028 and friends are legal, unescaped, inside JSON strings.
    for number, line in enumerate(decode_text(path, data).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON: {exc.msg} at column {exc.colno}"
            parsed.problems.append(Problem(str(path), f"line {number}", reason))
            continue
        _add(parsed, path, value, f"line {number}")
    return parsed


def load_json(path: Path, data: bytes) -> Parsed:
    """Read a JSON list of FAQ objects, or an object holding one under "faqs"/"entries"/"items"."""
    try:
        document = json.loads(decode_text(path, data))
    except json.JSONDecodeError as exc:
        raise LoadError(
            path, f"invalid JSON: {exc.msg}", f"line {exc.lineno}, column {exc.colno}"
        ) from None
    items: object = document
    if isinstance(document, dict):
        container = next((k for k in CONTAINER_KEYS if k in document), None)
        if container is not None:
            items = document[container]
        elif match_columns(list(document)).question is not None:
            items = [document]
    if not isinstance(items, list):
        raise LoadError(
            path,
            "expected a list of FAQ objects, or an object with a list under "
            f"{', '.join(repr(k) for k in CONTAINER_KEYS)}; found {_type_name(items)}",
        )
    parsed = Parsed()
    for number, value in enumerate(items, start=1):
        _add(parsed, path, value, f"item {number}")
    return parsed
