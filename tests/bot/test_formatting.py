"""Reply text is escaped and split at Telegram's limit without breaking words or characters."""

from __future__ import annotations

from bot.formatting import preview, render_reply, split_text, utf16_len


def test_short_text_is_one_escaped_message_with_an_italic_footer() -> None:
    chunks = render_reply("Use <b>tags</b> & co.", "Source: Returns & refunds")
    assert chunks == [
        "Use &lt;b&gt;tags&lt;/b&gt; &amp; co.\n\n<i>Source: Returns &amp; refunds</i>"
    ]


def test_long_text_splits_at_words_within_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    pieces = split_text(text, 100)
    assert all(utf16_len(p) <= 100 for p in pieces)
    assert " ".join(pieces) == text
    assert all(not p.endswith("word") for p in pieces)


def test_paragraph_breaks_are_preferred() -> None:
    text = "a" * 60 + "\n\n" + "b " * 30
    assert split_text(text, 80)[0] == "a" * 60


def test_limit_counts_utf16_units_and_never_splits_a_character() -> None:
    text = "😀" * 5000  # two UTF-16 units each
    pieces = split_text(text)
    assert [utf16_len(p) for p in pieces] == [4096, 4096, 1808]
    assert "".join(pieces) == text


def test_footer_moves_to_its_own_message_when_the_last_one_is_full() -> None:
    chunks = render_reply("x" * 4096, "Source: a question")
    assert chunks == ["x" * 4096, "<i>Source: a question</i>"]


def test_escaping_happens_after_splitting_so_entities_stay_whole() -> None:
    chunks = render_reply("&" * 5000)
    assert "".join(chunks).count("&amp;") == 5000
    assert all(not c.endswith("&am") for c in chunks)


def test_preview_is_cut_to_one_message() -> None:
    shown = preview("y" * 5000)
    assert utf16_len(shown) == 4096 and shown.endswith("…")
