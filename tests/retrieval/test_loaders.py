"""Document loaders: every format read from real files, and bad input reported precisely."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile
from pathlib import Path

import docx
import pytest
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]

from retrieval.loaders import (
    LOADERS,
    SUPPORTED_SUFFIXES,
    LoadError,
    Parsed,
    RawEntry,
    detect_format,
    iter_files,
    load_file,
)
from retrieval.loaders._formats import get_loader
from tests.conftest import EXAMPLES

MB = 1024 * 1024
LIMIT = 25 * MB


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def load(path: Path, expected_format: str | None = None) -> Parsed:
    fmt, parsed = load_file(path, LIMIT)
    if expected_format is not None:
        assert fmt == expected_format
    return parsed


def triples(parsed: Parsed) -> list[tuple[str, str, str]]:
    return [(e.location, e.question, e.answer) for e in parsed.entries]


def load_error(path: Path) -> str:
    with pytest.raises(LoadError) as caught:
        load_file(path, LIMIT)
    message = str(caught.value)
    assert str(path) in message
    return message


def make_pdf(path: Path, pages: list[list[str]]) -> Path:
    canvas = Canvas(str(path), pagesize=A4, invariant=1)
    for lines in pages:
        y = 800
        for line in lines:
            canvas.drawString(72, y, line)
            y -= 18
        canvas.showPage()
    canvas.save()
    return path


# --- registry ---------------------------------------------------------------------------


def test_loaders_cover_every_format_and_unknown_name_lists_them() -> None:
    formats = {"jsonl", "json", "csv", "tsv", "markdown", "html", "text", "pdf", "docx"}
    assert set(LOADERS) == formats
    assert get_loader("csv") is LOADERS["csv"]
    with pytest.raises(ValueError, match=r"unknown document format 'xlsx'.*csv, docx, html"):
        get_loader("xlsx")


# --- JSON Lines and JSON ----------------------------------------------------------------


def test_jsonl_reads_ids_alternatives_and_line_numbers(tmp_path: Path) -> None:
    rows = [
        {"id": "pay", "question": "How do I pay?", "answer": "By card.", "alt_questions": ["Pay?"]},
        {"question": "Do you ship abroad?", "answer": "To the EU.", "alt_questions": "EU? | UK?"},
        {"id": 7, "Question": "Opening hours?", "Answer": "9 to 5."},
    ]
    text = json.dumps(rows[0]) + "\n\n" + "\n".join(json.dumps(r) for r in rows[1:]) + "\n"
    parsed = load(write(tmp_path / "faq.jsonl", text), "jsonl")
    assert parsed.problems == []
    assert parsed.entries == [
        RawEntry("How do I pay?", "By card.", "line 1", "pay", ("Pay?",)),
        RawEntry("Do you ship abroad?", "To the EU.", "line 3", None, ("EU?", "UK?")),
        RawEntry("Opening hours?", "9 to 5.", "line 4", "7"),
    ]


def test_jsonl_bad_lines_are_reported_and_good_lines_kept(tmp_path: Path) -> None:
    lines = [
        '{"id": "a", "question": "How do I pay?", "answer": "By card."}',
        '{"question": "Broken" "answer": "x"}',
        '["not", "an", "object"]',
        '{"answer": "no question"}',
        '{"question": 42, "answer": "x"}',
        '{"id": "b", "question": "Do you ship?", "answer": "Yes."}',
    ]
    path = write(tmp_path / "faq.jsonl", "\n".join(lines))
    parsed = load(path, "jsonl")
    assert [(e.id, e.location) for e in parsed.entries] == [("a", "line 1"), ("b", "line 6")]
    messages = [str(p) for p in parsed.problems]
    assert messages == [
        f"{path}: line 2: invalid JSON: Expecting ',' delimiter at column 23",
        f"{path}: line 3: expected a JSON object with a question, got a list",
        f'{path}: line 4: no "question" key (keys found: answer)',
        f'{path}: line 5: "question" must be a string, not a number',
    ]


@pytest.mark.parametrize("key", [None, "faqs", "entries", "items"])
def test_json_reads_a_list_or_an_object_holding_one(tmp_path: Path, key: str | None) -> None:
    items = [
        {"id": "pay", "question": "How do I pay?", "answer": "By card.", "alt_questions": []},
        {"question": "Do you ship?", "answer": "Yes.", "alt_questions": ["Shipping?"]},
    ]
    document = items if key is None else {"version": 2, key: items}
    path = write(tmp_path / "faq.json", json.dumps(document, indent=2))
    parsed = load(path, "json")
    assert parsed.entries == [
        RawEntry("How do I pay?", "By card.", "item 1", "pay"),
        RawEntry("Do you ship?", "Yes.", "item 2", None, ("Shipping?",)),
    ]


def test_json_list_of_questions_gives_alternatives(tmp_path: Path) -> None:
    item = {"slug": "pay", "questions": ["How do I pay?", "Payment?"], "reply": "By card."}
    parsed = load(write(tmp_path / "faq.json", json.dumps([item])), "json")
    assert parsed.entries == [RawEntry("How do I pay?", "By card.", "item 1", "pay", ("Payment?",))]


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "faq.json", '[\n  {"question": "Q?", "answer": "A."},\n  oops\n]')
    message = load_error(path)
    assert "line 3, column 3" in message and "invalid JSON: Expecting value" in message


# --- CSV and TSV ------------------------------------------------------------------------


def test_csv_matches_column_synonyms_and_numbers_rows_by_line(tmp_path: Path) -> None:
    text = (
        "Key,Title,Response,Alternatives\r\n"
        'pay,How do I pay?,"By card,\r\nor PayPal.",Paying? | Pay?\r\n'
        ',Do you ship?,Yes.,"Shipping?\r\nDelivery?"\r\n'
        "\r\n"
        "hours,Opening hours?,9 to 5.,\r\n"
    )
    parsed = load(write(tmp_path / "faq.csv", text), "csv")
    assert parsed.problems == []
    assert parsed.entries == [
        RawEntry("How do I pay?", "By card,\r\nor PayPal.", "row 2", "pay", ("Paying?", "Pay?")),
        RawEntry("Do you ship?", "Yes.", "row 4", None, ("Shipping?", "Delivery?")),
        RawEntry("Opening hours?", "9 to 5.", "row 7", "hours"),
    ]


def test_csv_with_semicolons_and_a_very_long_answer(tmp_path: Path) -> None:
    long_answer = "word " * 60_000  # 300 kB, over the csv module's default field limit
    text = f"question;answer\nHow do I pay?;By card.\nTell me everything?;{long_answer}\n"
    parsed = load(write(tmp_path / "faq.csv", text), "csv")
    assert [e.question for e in parsed.entries] == ["How do I pay?", "Tell me everything?"]
    assert parsed.entries[1].answer == long_answer


def test_tsv_reads_tab_separated_rows(tmp_path: Path) -> None:
    text = "id\tquestion\tanswer\talt_questions\npay\tHow do I pay?\tBy card, or PayPal.\tPaying?\n"
    parsed = load(write(tmp_path / "faq.tsv", text), "tsv")
    assert parsed.entries == [
        RawEntry("How do I pay?", "By card, or PayPal.", "row 2", "pay", ("Paying?",))
    ]


def test_csv_without_question_column_names_the_columns_found(tmp_path: Path) -> None:
    message = load_error(write(tmp_path / "faq.csv", "topic,text\npay,By card.\n"))
    assert "line 1" in message
    assert "no question column (one of: question, q, title, questions)" in message
    assert "no answer column" in message and "'topic', 'text'" in message


def test_csv_row_with_wrong_field_count_is_a_problem_and_other_rows_load(tmp_path: Path) -> None:
    text = "question,answer\nHow do I pay?,By card, or PayPal.\nDo you ship?,Yes.\n"
    path = write(tmp_path / "faq.csv", text)
    parsed = load(path, "csv")
    assert triples(parsed) == [("row 3", "Do you ship?", "Yes.")]
    [problem] = parsed.problems
    assert str(problem) == (
        f"{path}: row 2: row has 3 fields but the header has 2; "
        "quote fields that contain a comma or a line break"
    )


# --- Markdown ---------------------------------------------------------------------------

MARKDOWN = """\
---
title: Shop FAQ
---
# Shop FAQ

Welcome to our **shop**. Read this first.

## How do I pay?

You can pay by **card** or __PayPal__,
see [our payment page](https://shop.example/pay).

* Visa
* Mastercard

Setext question?
----------------

Run `shop --help` first.

```
# not a heading
```

## Where are you?

<!-- internal note -->
We are in *Utrecht*; snake_case_names stay.
"""


def test_markdown_headings_are_questions_and_the_page_title_is_not(tmp_path: Path) -> None:
    parsed = load(write(tmp_path / "faq.md", MARKDOWN), "markdown")
    assert parsed.problems == []
    assert triples(parsed) == [
        (
            "line 8",
            "How do I pay?",
            "You can pay by card or PayPal, see our payment page (https://shop.example/pay)."
            "\n\n- Visa\n- Mastercard",
        ),
        ("line 16", "Setext question?", "Run shop --help first.\n\n# not a heading"),
        ("line 25", "Where are you?", "We are in Utrecht; snake_case_names stay."),
    ]


def test_markdown_heading_without_body_is_a_problem(tmp_path: Path) -> None:
    text = "# FAQ\n\n## How do I pay?\n\n## Do you ship?\n\nYes.\n\n## Last one?\n"
    path = write(tmp_path / "faq.md", text)
    parsed = load(path, "markdown")
    assert triples(parsed) == [("line 5", "Do you ship?", "Yes.")]
    assert [str(p) for p in parsed.problems] == [
        f"{path}: line 3: heading has no answer text",
        f"{path}: line 9: heading has no answer text",
    ]


def test_markdown_question_heading_keeps_plain_sub_headings_in_its_answer(tmp_path: Path) -> None:
    text = "## How do I return an item?\n\nTwo ways:\n\n### By post\n\nUse the label.\n"
    parsed = load(write(tmp_path / "faq.md", text))
    assert triples(parsed) == [
        ("line 1", "How do I return an item?", "Two ways:\n\nBy post\n\nUse the label.")
    ]


def test_wrong_encoding_names_line_and_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "menu.md", "## Menu?\n\nWe serve café au lait.\n".encode("latin-1"))
    message = load_error(path)
    assert "line 3, column 13" in message and "UTF-8" in message


# --- HTML -------------------------------------------------------------------------------

HTML = """\
<!DOCTYPE html>
<html><head><title>Help</title>
<style>.x { content: "STYLE-TEXT" }</style>
<script>var leak = "SCRIPT-TEXT";</script>
</head>
<body>
<header class="site">HEADER-TEXT <form><input placeholder="FORM-TEXT"></form></header>
<nav><a href="/">NAV-TEXT</a></nav>
<h1>Help centre</h1>
<h2>Payments</h2>
<h3>How do I pay?</h3>
<p>By card or PayPal:</p>
<ul><li>Visa</li><li><b>Mastercard</b></li></ul>
<script>document.write("BODY-SCRIPT-TEXT")</script>
<style>p { color: red } /* BODY-STYLE-TEXT */</style>
<noscript>NOSCRIPT-TEXT</noscript>
<div role="navigation">ROLE-NAV-TEXT</div>
<h3>Can I pay later?</h3>
<p>Yes, with <a href="/klarna">Klarna</a>.<br>Ask us.</p>
<h2>Quick answers</h2>
<dl>
  <dt>Do you take cash?</dt><dd>No.</dd>
  <dt>Cheques?</dt><dt>Do you take cheques?</dt><dd><p>No, never.</p></dd>
</dl>
<details><summary>Is it safe?</summary><p>Yes, with 3-D Secure.</p></details>
<aside>ASIDE-TEXT</aside>
<footer>FOOTER-TEXT<script>FOOTER-SCRIPT-TEXT</script></footer>
</body></html>
"""


def test_html_reads_headings_definitions_and_details(tmp_path: Path) -> None:
    parsed = load(write(tmp_path / "help.html", HTML), "html")
    assert parsed.problems == []
    assert triples(parsed) == [
        ("<h3> #1 'How do I pay?'", "How do I pay?", "By card or PayPal:\n\n- Visa\n- Mastercard"),
        ("<h3> #2 'Can I pay later?'", "Can I pay later?", "Yes, with Klarna.\nAsk us."),
        ("<dt> #1 'Do you take cash?'", "Do you take cash?", "No."),
        ("<dt> #2 'Cheques?'", "Cheques?", "No, never."),
        ("<details> #1 'Is it safe?'", "Is it safe?", "Yes, with 3-D Secure."),
    ]
    assert parsed.entries[3].alt_questions == ("Do you take cheques?",)


def test_html_script_style_and_navigation_never_reach_an_entry(tmp_path: Path) -> None:
    parsed = load(write(tmp_path / "help.html", HTML))
    everything = json.dumps([[e.question, e.answer, *e.alt_questions] for e in parsed.entries])
    for marker in ("SCRIPT", "STYLE", "NAV", "HEADER", "FOOTER", "FORM", "ASIDE", "NOSCRIPT"):
        assert marker not in everything


def test_html_article_headers_are_content_and_declared_charset_is_used(tmp_path: Path) -> None:
    page = (
        '<html><head><meta charset="windows-1252"></head><body><main>'
        "<article><header><h2>Caf\xe9 open on Sunday?</h2></header><p>Yes, 9\u201317.</p>"
        "<footer>Was this helpful?</footer></article>"
        "<article><header><h2>Parking?</h2></header><p>Behind the shop.</p></article>"
        "</main></body></html>"
    )
    parsed = load(write(tmp_path / "help.html", page.encode("cp1252")), "html")
    assert triples(parsed) == [
        ("<h2> #1 'Café open on Sunday?'", "Café open on Sunday?", "Yes, 9\u201317."),
        ("<h2> #2 'Parking?'", "Parking?", "Behind the shop."),
    ]


def test_html_empty_definition_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "help.html", "<dl><dt>Cash?</dt><dd>No.</dd><dt>Cheques?</dt></dl>")
    parsed = load(path, "html")
    assert triples(parsed) == [("<dt> #1 'Cash?'", "Cash?", "No.")]
    assert [str(p) for p in parsed.problems] == [
        f"{path}: <dt> #2 'Cheques?': <dt> has no <dd> answer"
    ]


def test_html_without_pairs_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "page.html", "<html><body><p>Just some text.</p></body></html>")
    message = load_error(path)
    assert "no question/answer pairs found (expected headings, <dt>/<dd> or <details>)" in message


# --- plain text -------------------------------------------------------------------------


def test_text_reads_q_and_a_lines_with_multiline_answers(tmp_path: Path) -> None:
    text = (
        "Shop FAQ, updated May.\n\n"
        "Q: How do I pay?\nA: By card.\nOr by PayPal.\n\n"
        "question: Do you ship\nabroad?\nANSWER: Yes.\n"
    )
    parsed = load(write(tmp_path / "faq.txt", text), "text")
    assert parsed.problems == []
    assert triples(parsed) == [
        ("line 3", "How do I pay?", "By card.\nOr by PayPal."),
        ("line 7", "Do you ship abroad?", "Yes."),
    ]


def test_text_question_without_answer_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "faq.txt", "Q: How do I pay?\nQ: Do you ship?\nA: Yes.\n")
    parsed = load(path, "text")
    assert triples(parsed) == [("line 2", "Do you ship?", "Yes.")]
    assert [str(p) for p in parsed.problems] == [
        f"{path}: line 1: question has no answer: 'How do I pay?'"
    ]


# --- PDF --------------------------------------------------------------------------------


def test_pdf_with_q_and_a_markers_reads_pages(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "faq.pdf",
        [
            ["Shop FAQ", "Q: How do I pay?", "A: By card", "or PayPal.", "1"],
            ["Q: Do you ship abroad?", "A: Yes, to the EU.", "Page 2 of 2"],
        ],
    )
    parsed = load(path, "pdf")
    assert parsed.problems == []
    assert triples(parsed) == [
        ("page 1", "How do I pay?", "By card\nor PayPal."),
        ("page 2", "Do you ship abroad?", "Yes, to the EU."),
    ]


def test_pdf_without_markers_uses_lines_ending_in_a_question_mark(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "faq.pdf",
        [["Shop FAQ", "How do I pay?", "By card.", "Do you ship?"], ["Yes, to the EU."]],
    )
    parsed = load(path, "pdf")
    assert triples(parsed) == [
        ("page 1", "How do I pay?", "By card."),
        ("page 1", "Do you ship?", "Yes, to the EU."),
    ]


def test_pdf_without_text_layer_asks_for_ocr(tmp_path: Path) -> None:
    canvas = Canvas(str(tmp_path / "scan.pdf"), pagesize=A4)
    canvas.rect(72, 400, 300, 300, fill=1)
    canvas.showPage()
    canvas.save()
    message = load_error(tmp_path / "scan.pdf")
    assert "PDF has no text layer (scanned images?); run OCR on it first, e.g. ocrmypdf" in message


def test_damaged_pdf_is_an_error(tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "good.pdf", [["Q: How do I pay?", "A: By card."]])
    path = write(tmp_path / "bad.pdf", good.read_bytes()[:200])
    assert "not a readable PDF" in load_error(path)


# --- DOCX -------------------------------------------------------------------------------


def test_docx_headings_are_questions(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Shop FAQ", level=0)
    document.add_paragraph("Everything about our shop.")
    document.add_heading("Payments", level=1)
    document.add_heading("How do I pay?", level=2)
    document.add_paragraph("By card or PayPal.")
    document.add_paragraph("Visa", style="List Bullet")
    document.add_paragraph("Mastercard", style="List Bullet")
    document.add_heading("Can I pay later?", level=2)
    document.add_paragraph("Yes, with Klarna.")
    document.save(str(tmp_path / "faq.docx"))
    parsed = load(tmp_path / "faq.docx", "docx")
    assert parsed.problems == []
    assert triples(parsed) == [
        ("paragraph 4", "How do I pay?", "By card or PayPal.\n\n- Visa\n- Mastercard"),
        ("paragraph 8", "Can I pay later?", "Yes, with Klarna."),
    ]


def test_docx_question_answer_table(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("Our most common questions:")
    table = document.add_table(rows=4, cols=3)
    rows = [
        ("Question", "Answer", "Alternatives"),
        ("How do I pay?", "By card.", "Paying? | Pay?"),
        ("", "", ""),
        ("Do you ship?", "Yes.", ""),
    ]
    for row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.save(str(tmp_path / "faq.docx"))
    parsed = load(tmp_path / "faq.docx", "docx")
    assert parsed.problems == []
    assert parsed.entries == [
        RawEntry("How do I pay?", "By card.", "table 1 row 2", None, ("Paying?", "Pay?")),
        RawEntry("Do you ship?", "Yes.", "table 1 row 4"),
    ]


def test_docx_without_headings_falls_back_to_q_and_a_lines(tmp_path: Path) -> None:
    document = docx.Document()
    for text in ("Q: How do I pay?", "A: By card.", "Q: Do you ship?", "A: Yes."):
        document.add_paragraph(text)
    document.save(str(tmp_path / "faq.docx"))
    assert triples(load(tmp_path / "faq.docx")) == [
        ("paragraph 1", "How do I pay?", "By card."),
        ("paragraph 3", "Do you ship?", "Yes."),
    ]


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        _zip({"word/document.xml": b"<w:document>garbage", "junk.bin": b"\x00\x01\x02"}),
        b"PK\x03\x04" + bytes(range(256)) * 4,
        b"this was never a Word document",
    ],
    ids=["zip-with-garbage", "truncated-zip", "text-named-docx"],
)
def test_corrupt_docx_is_an_error(tmp_path: Path, content: bytes) -> None:
    message = load_error(write(tmp_path / "faq.docx", content))
    assert "not a readable Word .docx file" in message


# --- whole-file errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b" \n\t\r\n  \n", "empty file (only whitespace)")],
    ids=["empty", "whitespace"],
)
def test_empty_files_are_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = write(tmp_path / "faq.md", content)
    assert load_error(path) == f"{path}: {reason}"


def test_binary_file_under_a_text_name_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "faq.csv", b"\x13\x00\xff\xfe\x00\x00\x8b\x01" * 64)
    assert "binary file, not a text document (it contains NUL bytes)" in load_error(path)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (_zip({"xl/workbook.xml": b"<workbook/>"}), "an Excel .xlsx workbook; save it as CSV"),
        (_zip({"notes.txt": b"hello"}), "a ZIP archive"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "a PNG image"),
    ],
    ids=["xlsx", "zip", "png"],
)
def test_other_binary_files_say_what_they_are(tmp_path: Path, content: bytes, what: str) -> None:
    message = load_error(write(tmp_path / "faq.txt", content))
    assert f"binary file ({what})" in message and "supported formats" in message


def test_file_over_the_size_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as stream:
        stream.truncate(100 * MB)  # sparse: no disk space or memory used
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = load_error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Generous for a loaded machine; parsing 100 MB would take longer even on an idle one.
    assert time.perf_counter() - started < 10.0
    assert peak < MB
    assert "file is 100.0 MB, over the 25 MB limit (import.max_file_mb in the config)" in message


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.md").endswith("nope.md: no such file or directory")


# --- format detection -------------------------------------------------------------------

TWO_LINES = '{"question": "Q?", "answer": "A."}\n{"question": "R?", "answer": "B."}\n'


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("faq.txt", TWO_LINES, "jsonl"),
        ("faq.json", TWO_LINES, "jsonl"),
        ("faq.jsonl", '[\n  {"question": "Q?", "answer": "A."}\n]\n', "json"),
        ("faq.json", '{"faqs": [{"question": "Q?", "answer": "A."}]}', "json"),
        ("FAQ", "Shop FAQ\n\nQ: How do I pay?\nA: By card.\n", "text"),
        ("faq.txt", "# Shop\n\n## How do I pay?\n\nBy card.\n", "markdown"),
        ("faq.faq", "<!doctype html><h2>How do I pay?</h2><p>By card.</p>", "html"),
        ("faq.txt", "<div><h2>Pay?</h2><p>Card.</p><p>Cash.</p></div>", "html"),
        ("export.txt", "Question\tAnswer\nHow do I pay?\tBy card.\n", "tsv"),
        ("export", "id,question,answer\n1,How do I pay?,By card.\n", "csv"),
        ("faq.CSV", "question,answer\nQ?,A.\n", "csv"),
        ("faq.htm", "<p>x</p>", "html"),
        ("faq.markdown", "## Q?\n\nA.\n", "markdown"),
    ],
)
def test_format_is_detected_from_content_and_suffix(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = write(tmp_path / name, content)
    assert detect_format(path, path.read_bytes()) == expected


def test_detected_files_load(tmp_path: Path) -> None:
    for name in ("faq.txt", "faq.json"):
        parsed = load(write(tmp_path / name, TWO_LINES), "jsonl")
        assert triples(parsed) == [("line 1", "Q?", "A."), ("line 2", "R?", "B.")]
    parsed = load(write(tmp_path / "FAQ", "Q: How do I pay?\nA: By card.\n"), "text")
    assert triples(parsed) == [("line 1", "How do I pay?", "By card.")]


def test_undetectable_text_names_the_supported_formats(tmp_path: Path) -> None:
    message = load_error(write(tmp_path / "notes", "Just some notes.\nNothing to see.\n"))
    assert "cannot tell what kind of FAQ document this is" in message
    assert "supported formats: JSON Lines (.jsonl), JSON (.json), CSV (.csv)" in message


# --- finding files ----------------------------------------------------------------------


def test_iter_files_expands_folders_to_supported_files_in_order(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    for name in (
        "b.md", "a.csv", "README.md", "readme.txt", ".hidden.md", "~$draft.docx", "notes.rtf",
        "sub/c.JSONL", "sub/a.html", ".git/x.md", "z/.cache/y.json", "z/p.pdf",
    ):  # fmt: skip
        (kb / name).parent.mkdir(parents=True, exist_ok=True)
        (kb / name).write_text("x")
    explicit = write(tmp_path / "extra.faq", "Q: x?\nA: y.\n")
    found = iter_files([kb, explicit, kb / "a.csv"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "kb/a.csv",
        "kb/b.md",
        "kb/sub/a.html",
        "kb/sub/c.JSONL",
        "kb/z/p.pdf",
        "extra.faq",
    ]
    assert {".md", ".csv", ".jsonl", ".pdf", ".docx"} <= SUPPORTED_SUFFIXES


def test_iter_files_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="nope: no such file or directory"):
        iter_files([tmp_path / "nope"])


# --- the sample knowledge base ----------------------------------------------------------


def test_sample_knowledge_base_loads_without_problems() -> None:
    folder = EXAMPLES / "kb"
    files = iter_files([folder])
    assert files and all(p.name != "README.md" for p in files)
    total = 0
    for path in files:
        _, parsed = load_file(path, LIMIT)
        assert parsed.problems == [], parsed.problems
        assert all(e.question.strip() and e.answer.strip() for e in parsed.entries)
        total += len(parsed.entries)
    assert total > 30
