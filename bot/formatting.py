"""Telegram HTML for replies: escaped text, a compact sources line, split at Telegram's limit."""

from __future__ import annotations

import html
import re

# Telegram counts message length in UTF-16 code units, after entity parsing.
MESSAGE_LIMIT = 4096

_BREAKS = ("\n\n", "\n")
_SPACE = re.compile(r"\s")


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: characters outside the BMP take two units."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Plain text in pieces of at most `limit` UTF-16 units, cut at paragraphs, lines or words.

    A single word longer than the limit is cut where it must be, never inside a character.
    """
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        end = _fitting_prefix(rest, limit)
        if end == len(rest):
            pieces.append(rest)
            break
        cut = _break_before(rest, end)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return pieces


def _fitting_prefix(text: str, limit: int) -> int:
    """The largest number of leading characters that fit in `limit` UTF-16 units."""
    if len(text) <= limit // 2 or utf16_len(text) <= limit:  # most replies: no walk
        return len(text)
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _break_before(text: str, end: int) -> int:
    head = text[:end]
    for mark in _BREAKS:
        at = head.rfind(mark)
        if at > 0:
            return at
    spaces = [m.start() for m in _SPACE.finditer(head)]
    if spaces and spaces[-1] > 0:
        return spaces[-1]
    return end


def render_reply(text: str, footer: str = "", limit: int = MESSAGE_LIMIT) -> list[str]:
    """The reply as HTML messages: escaped text split to fit, `footer` in italics at the end.

    The footer goes on the last message when it fits there, else in a message of its own.
    """
    pieces = split_text(text, limit) or [""]
    chunks = [html.escape(piece, quote=False) for piece in pieces]
    footer = footer.strip()
    if footer:
        footer = footer if utf16_len(footer) <= limit - 2 else split_text(footer, limit - 2)[0]
        line = f"<i>{html.escape(footer, quote=False)}</i>"
        if utf16_len(pieces[-1]) + 2 + utf16_len(footer) <= limit and pieces[-1]:
            chunks[-1] = f"{chunks[-1]}\n\n{line}"
        elif pieces[-1]:
            chunks.append(line)
        else:
            chunks[-1] = line
    return chunks


def preview(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """A growing answer while it streams: escaped, cut to what one message can show."""
    shown = text.strip()
    end = _fitting_prefix(shown, limit - 1)
    if end < len(shown):
        shown = shown[:end] + "…"
    return html.escape(shown, quote=False)
