"""Markdown documents: each heading is a question and the text under it the answer.

A careful line-based reader of the CommonMark block structure that FAQ pages use (ATX and
setext headings, paragraphs, lists, fenced code, tables, block quotes, front matter); the
answer keeps list items as "- item" lines and drops inline markup.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.loaders._base import LoadError, Parsed, decode_text
from retrieval.loaders._outline import Block, entries_from_outline
from retrieval.loaders._qa import has_qa_markers, parse_qa

log = logging.getLogger(__name__)

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_ATX_CLOSE = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_QUOTE = re.compile(r"^ {0,3}>[ \t]?")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|(\d{1,9}[.)]))[ \t]+(.*)$")
_TABLE_ROW = re.compile(r"^[ \t]*\|(.*?)\|?[ \t]*$")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^>\s]+)>")
_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EM_STAR = re.compile(r"(?<![\w*\\])\*(?=[^\s*])(.+?)(?<=[^\s*\\])\*(?![\w*])")
_EM_UNDERSCORE = re.compile(r"(?<![\w\\])_(?=[^\s_])(.+?)(?<=[^\s_\\])_(?!\w)")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _link(match: re.Match[str]) -> str:
    text, url = match.group(1), match.group(2)
    return url if text.strip() == url else f"{text} ({url})"


def _plain(text: str) -> str:
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(_link, text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _BREAK_TAG.sub("\n", text)
    text = _STRONG.sub(r"\2", text)
    text = _EM_STAR.sub(r"\1", text)
    text = _EM_UNDERSCORE.sub(r"\1", text)
    text = _ESCAPE.sub(r"\1", text)
    return _ENTITY.sub(lambda m: html.unescape(m.group()), text)


def inline_text(text: str) -> str:
    """Markdown inline markup to plain text: emphasis and backticks dropped, links kept."""
    out: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_plain(text[position : match.start()]))
        out.append(match.group(2).strip() or match.group(2))
        position = match.end()
    out.append(_plain(text[position:]))
    return "".join(out)


@dataclass(slots=True)
class _Open:
    """The paragraph or list item being read."""

    start: int
    item: bool
    lines: list[str] = field(default_factory=list)


class _Reader:
    """Turns Markdown lines into outline blocks."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.open: _Open | None = None
        self.fence: str | None = None
        self.code: list[str] = []
        self.code_start = 0

    def flush(self) -> None:
        if self.open is not None:
            text = self.open.lines[0]
            for line in self.open.lines[1:]:
                if text.endswith(("  ", "\\")):  # a hard line break
                    text = text.rstrip(" ").removesuffix("\\").rstrip() + "\n" + line
                else:
                    text = f"{text.rstrip()} {line}"
            location = f"line {self.open.start}"
            self.blocks.append(Block(inline_text(text.strip()), location, item=self.open.item))
        self.open = None

    def read(self, number: int, line: str) -> None:
        if self.fence is not None:
            if line.strip().startswith(self.fence) and not line.strip().strip(self.fence[0]):
                self.blocks.append(Block("\n".join(self.code), f"line {self.code_start}"))
                self.fence = None
            else:
                self.code.append(line)
            return
        if fence := _FENCE.match(line):
            self.flush()
            self.fence, self.code, self.code_start = fence.group(1), [], number
            return
        line = _QUOTE.sub("", line)
        if not line.strip():
            self.flush()
        elif heading := _ATX.match(line):
            self.flush()
            text = _ATX_CLOSE.sub("", (heading.group(2) or "").strip())
            self.blocks.append(
                Block(inline_text(text).strip(), f"line {number}", level=len(heading.group(1)))
            )
        elif _SETEXT.match(line) and self.open is not None and not self.open.item:
            text = inline_text(" ".join(part.strip() for part in self.open.lines))
            level = 1 if line.strip().startswith("=") else 2
            self.blocks.append(Block(text, f"line {self.open.start}", level=level))
            self.open = None
        elif _RULE.match(line) or ("|" in line and _TABLE_RULE.match(line)):
            self.flush()
        elif row := _TABLE_ROW.match(line):
            self.flush()
            cells = [c.strip() for c in row.group(1).split("|")]
            self.blocks.append(Block(inline_text(" | ".join(cells)), f"line {number}", item=True))
        elif (item := _LIST_ITEM.match(line)) and not self._continues_with_number(item):
            self.flush()
            self.open = _Open(number, item=True, lines=[f"{item.group(1) or '-'} {item.group(2)}"])
        elif self.open is None:
            self.open = _Open(number, item=False, lines=[line.lstrip()])
        else:
            self.open.lines.append(line.lstrip())

    def _continues_with_number(self, item: re.Match[str]) -> bool:
        # Only "1." may start a list inside a paragraph; "2019. We ..." wraps a sentence.
        ordered = item.group(1)
        return self.open is not None and not self.open.item and ordered not in (None, "1.", "1)")

    def close(self) -> list[Block]:
        if self.fence is not None:
            self.blocks.append(Block("\n".join(self.code), f"line {self.code_start}"))
        self.flush()
        return self.blocks


def _body_lines(text: str) -> list[str]:
    """The lines of the document with comments blanked and front matter left out."""
    text = _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is not None:
            lines[: end + 1] = [""] * (end + 1)
    return lines


def load_markdown(path: Path, data: bytes) -> Parsed:
    """Read a Markdown FAQ: headings are the questions, their sections the answers."""
    lines = _body_lines(decode_text(path, data))
    reader = _Reader()
    for number, line in enumerate(lines, start=1):
        reader.read(number, line)
    blocks = reader.close()
    if any(block.level for block in blocks):
        return entries_from_outline(path, blocks)
    numbered = [(inline_text(line), f"line {n}") for n, line in enumerate(lines, start=1)]
    if has_qa_markers(numbered):
        return parse_qa(path, numbered)
    raise LoadError(
        path,
        "no headings found; write each question as a heading (## How do I pay?) "
        "with its answer below it",
    )
