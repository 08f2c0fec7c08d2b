"""Stable ids, content hashes and answer chunks."""

from __future__ import annotations

from retrieval.entries import FaqEntry, chunk_answer, clean_text, derive_id


def test_derived_id_is_stable_readable_and_source_specific() -> None:
    a = derive_id("orders.md", "How do I cancel my order?")
    assert a == "orders/how-do-i-cancel-my-order"
    assert derive_id("orders.md", "  how do I   CANCEL my order? ") == a
    assert derive_id("other.md", "How do I cancel my order?") != a


def test_derived_id_for_chinese_and_long_questions_uses_a_hash() -> None:
    zh = derive_id("faq.txt", "花呗怎么还款")
    assert zh.startswith("faq/") and len(zh) == len("faq/") + 8
    long_q = "How do I " + "really " * 20 + "cancel?"
    assert len(derive_id("faq.txt", long_q)) < 70
    assert derive_id("faq.txt", long_q) != derive_id("faq.txt", long_q + " now")


def test_content_hash_changes_with_any_visible_field() -> None:
    entry = FaqEntry("x", "Q?", "A.", ("Q2?",))
    assert entry.content_hash == FaqEntry("x", "Q?", "A.", ("Q2?",), source="other").content_hash
    assert entry.content_hash != FaqEntry("x", "Q?", "A!", ("Q2?",)).content_hash
    assert entry.content_hash != FaqEntry("x", "Q?", "A.", ("Q3?",)).content_hash


def test_questions_drop_duplicate_alternatives() -> None:
    entry = FaqEntry("x", "How?", "A", ("how? ", "Why?", "why?"))
    assert entry.questions == ("How?", "Why?")


def test_long_answers_are_chunked_at_sentence_ends_and_kept_whole() -> None:
    answer = " ".join(f"Sentence number {i} says something useful." for i in range(40))
    chunks = chunk_answer(answer, 200)
    assert len(chunks) > 5
    assert all(len(c) <= 200 for c in chunks)
    assert " ".join(chunks) == answer
    assert chunk_answer("Short.", 200) == ("Short.",)
    assert chunk_answer("", 200) == ()


def test_clean_text_keeps_paragraphs_and_drops_noise() -> None:
    assert clean_text("  a   b \r\n\r\n\r\n\r\n c\t d ") == "a b\n\nc d"
