"""HTML pages: questions from headings, `<dt>`/`<dd>` pairs and `<details>`/`<summary>`.

Page furniture (scripts, styles, navigation, site header and footer, forms) is removed
before anything is read, and when the page has a `<main>` only that is read.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import Counter
from pathlib import Path

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
from bs4.element import NavigableString, PreformattedString, Tag

from retrieval.loaders._base import LoadError, Parsed, Problem, RawEntry, decode_text
from retrieval.loaders._outline import Block, entries_from_outline, render

log = logging.getLogger(__name__)

_DROP = (
    *("head", "script", "style", "noscript", "nav", "header", "footer", "aside", "form"),
    *("template", "svg", "iframe", "object", "embed", "canvas", "select"),
)
_DROP_ROLES = ("navigation", "banner", "contentinfo", "search")
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = {
    *_HEADINGS,
    *("address", "article", "blockquote", "body", "caption", "center", "dd", "details"),
    *("dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "hr", "html", "li"),
    *("main", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th"),
    *("thead", "tr", "ul"),
}
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 first; if that fails, the charset the page declares in a `<meta>` tag."""
    try:
        return decode_text(path, data)
    except LoadError:
        declared = _META_CHARSET.search(data[:4096])
        if declared is None:
            raise
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            reason = "neither valid UTF-8 nor the charset its <meta> tag declares"
            raise LoadError(path, reason) from None


def _flat(text: str) -> str:
    """Whitespace as a browser shows it: runs collapsed, line breaks from `<br>` kept."""
    text = text.replace("\u200b", "")  # zero-width spaces, e.g. in heading anchor links
    return "\n".join(" ".join(line.split()) for line in text.split("\n")).strip()


def _remove_furniture(soup: BeautifulSoup) -> None:
    for tag in soup.find_all(True):
        if tag.decomposed:  # inside an element removed before it
            continue
        role = tag.get("role")
        if tag.name not in _DROP and not (isinstance(role, str) and role.lower() in _DROP_ROLES):
            continue
        # A <header> inside an article or section heads that content, not the site.
        if tag.name == "header" and tag.find_parent(["article", "section"]) is not None:
            continue
        tag.decompose()


class _Walker:
    """Reads elements in document order into outline blocks; pairs become finished entries."""

    def __init__(self, path: Path, counts: Counter[str], problems: list[Problem]) -> None:
        self.path = path
        self.counts = counts
        self.problems = problems
        self.blocks: list[Block] = []
        self.inline: list[str] = []

    def _location(self, tag: Tag, text: str) -> str:
        self.counts[tag.name] += 1
        short = text if len(text) <= 60 else f"{text[:57]}..."
        return f"<{tag.name}> #{self.counts[tag.name]} {short!r}"

    def _sub_blocks(self, tag: Tag, skip: Tag | None = None) -> list[Block]:
        walker = _Walker(self.path, self.counts, self.problems)
        walker.walk(tag, skip)
        return walker.finish()

    def flush(self) -> None:
        text = _flat("".join(self.inline))
        if text:
            self.blocks.append(Block(text, ""))
        self.inline = []

    def finish(self) -> list[Block]:
        self.flush()
        return self.blocks

    def walk(self, tag: Tag, skip: Tag | None = None) -> None:
        for child in tag.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, PreformattedString):  # comments, doctype, CDATA
                    self.inline.append(str(child))
            elif not isinstance(child, Tag) or child is skip:
                continue
            elif child.name == "br":
                self.inline.append("\n")
            elif child.name not in _BLOCKS:
                self.walk(child)
            else:
                self.flush()
                self.block(child)
                self.flush()

    def block(self, tag: Tag) -> None:
        name = tag.name
        if name in _HEADINGS:
            text = _flat(tag.get_text(" ")).rstrip("¶ ").strip()
            self.blocks.append(Block(text, self._location(tag, text), level=_HEADINGS[name]))
        elif name == "li":
            inner = self._sub_blocks(tag)
            for index, block in enumerate(inner):
                prefix = "- " if index == 0 and not block.item else ""
                self.blocks.append(Block(prefix + block.text, block.location, item=True))
        elif name == "tr":
            cells = [_flat(c.get_text(" ")) for c in tag.find_all(["td", "th"], recursive=False)]
            if any(cells):
                self.blocks.append(Block(" | ".join(cells), "", item=True))
        elif name == "pre":
            self.blocks.append(Block(tag.get_text().strip("\n"), ""))
        elif name == "dl":
            self.definitions(tag)
        elif name == "details" and isinstance(summary := tag.find("summary", recursive=False), Tag):
            question = _flat(summary.get_text(" "))
            location = self._location(tag, question)
            answer = render(self._sub_blocks(tag, skip=summary))
            self.pair([question], answer, location, "<details> has no answer text")
        else:
            self.walk(tag)

    def definitions(self, dl: Tag) -> None:
        """Pair each run of `<dt>` (first is the question, others alternatives) with its `<dd>`."""
        terms: list[str] = []
        location = ""
        answers: list[str] = []
        for tag in dl.find_all(["dt", "dd"]):
            if not isinstance(tag, Tag) or tag.find_parent("dl") is not dl:
                continue
            if tag.name == "dt":
                if answers:
                    self.pair(terms, "\n\n".join(answers), location, "<dd> has no text")
                    terms, answers = [], []
                text = _flat(tag.get_text(" "))
                where = self._location(tag, text)
                location = location if terms else where
                terms.append(text)
            elif terms:
                answers.append(render(self._sub_blocks(tag)))
            else:
                self.blocks.extend(self._sub_blocks(tag))
        if terms:
            self.pair(terms, "\n\n".join(answers), location, "<dt> has no <dd> answer")

    def pair(self, questions: list[str], answer: str, location: str, no_answer: str) -> None:
        """Add a finished pair; the first question is asked, the others are alternatives."""
        if not answer.strip():
            self.problems.append(Problem(str(self.path), location, no_answer))
            return
        entry = RawEntry(questions[0], answer, location, alt_questions=tuple(questions[1:]))
        self.blocks.append(Block("", location, pair=entry))


def load_html(path: Path, data: bytes) -> Parsed:
    """Read an HTML FAQ page; text of scripts, styles and navigation never reaches an answer."""
    with warnings.catch_warnings():
        # Saved XHTML pages and tiny fragments are still pages worth reading.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(_decode(path, data), "html.parser")
    _remove_furniture(soup)
    mains = soup.find_all("main")
    root = mains[0] if len(mains) == 1 else soup.body or soup
    assert isinstance(root, Tag)
    problems: list[Problem] = []
    walker = _Walker(path, Counter(), problems)
    walker.walk(root)
    parsed = entries_from_outline(path, walker.finish())
    parsed.problems = [*problems, *parsed.problems]
    if not parsed.entries and not parsed.problems:
        raise LoadError(
            path, "no question/answer pairs found (expected headings, <dt>/<dd> or <details>)"
        )
    return parsed
