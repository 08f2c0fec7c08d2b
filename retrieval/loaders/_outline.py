"""Questions from a document's headings, shared by the Markdown, HTML and DOCX loaders.

A heading is a question and the text under it, up to the next heading of the same or a
higher level, is its answer. A heading with sub-headings is a title (page or section
heading) and not a question, even with an introduction under it, unless it is phrased as a
question: then its introduction is its answer, or, when none of the sub-headings is a
question, the whole section is, with the sub-headings kept as lines of the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.loaders._base import Parsed, Problem, RawEntry
from retrieval.loaders._qa import is_question

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Block:
    """One piece of a document in reading order: a heading, a paragraph, or a finished pair."""

    text: str
    location: str
    level: int = 0
    """1 to 6 for a heading, 0 for body text."""
    item: bool = False
    """A list item or table row, kept on its own line next to neighbouring items."""
    pair: RawEntry | None = None
    """A question and answer found complete (`<dt>`/`<dd>`, a Q/A table row)."""

    @property
    def question(self) -> str:
        """The question a heading or pair asks; empty for body text."""
        if self.pair is not None:
            return self.pair.question
        return self.text if self.level else ""


def render(blocks: Sequence[Block]) -> str:
    """The text of blocks: paragraphs apart by a blank line, neighbouring items by a newline."""
    out: list[str] = []
    previous_item = False
    for block in blocks:
        text = f"{block.pair.question}\n{block.pair.answer}" if block.pair else block.text
        if not text.strip():
            continue
        if out:
            out.append("\n" if block.item and previous_item else "\n\n")
        out.append(text.strip())
        previous_item = block.item
    return "".join(out)


def entries_from_outline(path: Path, blocks: Sequence[Block]) -> Parsed:
    """Turn headings into questions and the text of their sections into answers."""
    parsed = Parsed()
    index = 0
    while index < len(blocks):
        block = blocks[index]
        if block.pair is not None:
            parsed.entries.append(block.pair)
            index += 1
            continue
        if not block.level:
            index += 1  # text outside any question's section, such as a page's introduction
            continue
        end = next(
            (j for j in range(index + 1, len(blocks)) if 0 < blocks[j].level <= block.level),
            len(blocks),
        )
        section = blocks[index + 1 : end]
        subs = [k for k, b in enumerate(section) if b.level or b.pair]
        if not subs:
            _leaf(parsed, path, block, render(section))
            index = end
        elif is_question(block.text) and not any(is_question(section[k].question) for k in subs):
            parsed.entries.append(RawEntry(block.text.strip(), render(section), block.location))
            index = end
        else:
            intro = render(section[: subs[0]])
            if is_question(block.text) and intro:
                parsed.entries.append(RawEntry(block.text.strip(), intro, block.location))
            else:
                log.debug("heading is a title path=%s location=%s", path, block.location)
            index += 1 + subs[0]
    return parsed


def _leaf(parsed: Parsed, path: Path, heading: Block, answer: str) -> None:
    if not heading.text.strip():
        reason = "empty heading; write the question in the heading"
    elif not answer:
        reason = "heading has no answer text"
    else:
        parsed.entries.append(RawEntry(heading.text.strip(), answer, heading.location))
        return
    parsed.problems.append(Problem(str(path), heading.location, reason))
