"""Telegram's HTML parse mode: the tags it accepts, its error texts, UTF-16 entity offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_SUPPORTED = {*_SIMPLE_TAGS, "a", "span", "tg-emoji"}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[A-Za-z0-9-]*")
_ATTRIBUTE = re.compile(r"\s*([A-Za-z0-9_-]+)\s*(?:=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")
_ENTITY = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")


class EntityParseError(ValueError):
    """Text that Telegram answers with "can't parse entities"."""


@dataclass
class _Open:
    tag: str
    offset: int
    attributes: dict[str, str]
    language: str | None = None


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's limits and entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _unescape(value: str) -> str:
    return _ENTITY.sub(lambda m: _entity_text(m) or m.group(0), value)


def _entity_text(match: re.Match[str]) -> str | None:
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        return _NAMED.get(name)
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    return chr(code) if 0 < code <= 0x10FFFF else None


def _entity(opened: _Open, length: int) -> dict[str, Any] | None:
    tag, attributes = opened.tag, opened.attributes
    entity: dict[str, Any] = {"offset": opened.offset, "length": length}
    if tag in _SIMPLE_TAGS:
        entity["type"] = _SIMPLE_TAGS[tag]
        if opened.language:
            entity["language"] = opened.language
        if tag == "blockquote" and "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
    elif tag == "span":
        entity["type"] = "spoiler"
    elif tag == "a":
        if not attributes.get("href"):
            return None
        entity.update(type="text_link", url=attributes["href"])
    else:
        entity.update(type="custom_emoji", custom_emoji_id=attributes.get("emoji-id", ""))
    return entity


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities of `source` in HTML parse mode, or `EntityParseError`.

    Leading and trailing whitespace is stripped as Telegram does, and entities shifted to match.
    """

    def at(index: int) -> str:
        return f"at byte offset {len(source[:index].encode())}"

    pieces: list[str] = []
    position = 0  # UTF-16 length of `pieces`
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "&":
            match = _ENTITY.match(source, i)
            text = _entity_text(match) if match else None
            if match and text is not None:
                pieces.append(text)
                position += utf16_len(text)
                i = match.end()
                continue
        if char != "<":
            pieces.append(char)
            position += utf16_len(char)
            i += 1
            continue
        start = i
        closing = source.startswith("</", i)
        i += 2 if closing else 1
        name_match = _TAG_NAME.match(source, i)
        assert name_match is not None  # the pattern matches the empty string
        name = name_match.group(0).lower()
        i = name_match.end()
        if closing:
            while i < len(source) and source[i].isspace():
                i += 1
            if i >= len(source) or source[i] != ">":
                raise EntityParseError(f"Can't find end tag {at(start)}")
            i += 1
            if not stack:
                raise EntityParseError(f"Unexpected end tag {at(start)}")
            if stack[-1].tag != name:
                raise EntityParseError(
                    f'Unmatched end tag {at(start)}, expected "</{stack[-1].tag}>", '
                    f'found "</{name}>"'
                )
            opened = stack.pop()
            language = opened.attributes.get("class", "")
            if (
                name == "code"
                and stack
                and stack[-1].tag == "pre"
                and language.startswith("language-")
            ):
                # <pre><code class="language-x"> is one pre entity with a language
                stack[-1].language = language.removeprefix("language-")
                continue
            entity = _entity(opened, position - opened.offset)
            if entity is not None and entity["length"] > 0:
                entities.append(entity)
            continue
        if name not in _SUPPORTED:
            raise EntityParseError(f'Unsupported start tag "{name}" {at(start)}')
        attributes: dict[str, str] = {}
        while True:
            while i < len(source) and source[i].isspace():
                i += 1
            if i >= len(source):
                raise EntityParseError(f"Can't find end of the tag starting {at(start)}")
            if source[i] == ">":
                i += 1
                break
            attribute = _ATTRIBUTE.match(source, i)
            if attribute is None or attribute.end() == i:
                raise EntityParseError(
                    f"Expected equal sign in declaration of an attribute {at(i)}"
                )
            value = attribute.group(2) or ""
            if value[:1] in ("'", '"'):
                value = value[1:-1]
            attributes[attribute.group(1).lower()] = _unescape(value)
            i = attribute.end()
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError('Tag "span" must have class "tg-spoiler"')
        stack.append(_Open(name, position, attributes))
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return _strip("".join(pieces), entities)


def _strip(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    stripped = text.strip()
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(stripped)
    kept: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        stop = min(entity["offset"] + entity["length"] - lead, end)
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    kept.sort(key=lambda e: (e["offset"], -e["length"]))
    return stripped, kept
