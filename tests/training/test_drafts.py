"""Drafts from operators' answers to hand-overs, and the gate that puts them live or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.log import ConversationLog, LogConfig
from engine.settings import Settings
from retrieval import ImportConfig, KnowledgeBase, RetrievalConfig
from retrieval.entries import FaqEntry
from retrieval.evaluation import LabelledQuery
from retrieval.importer import edit_entries
from tests.fakes import HashEmbedder
from training.drafts import (
    Draft,
    answered_from,
    boilerplate,
    decide,
    draft_entries,
    merge_drafts,
    read_drafts,
    write_drafts,
)
from training.knowledge import apply_drafts, propose_from_log

SHIPPING = FaqEntry(
    "shipping",
    "how long does shipping take",
    "Shipping takes three to five working days.",
    ("when will my parcel arrive", "delivery time"),
)
RETURNS = FaqEntry(
    "returns",
    "how do I return an item",
    "Returns are free within thirty days of delivery.",
    ("can I send it back", "return policy"),
)
GIFT = "Gift cards are sold at the till and online, from ten euros."
PARKING = "Parking is free in the yard behind the shop."
STOCK = "Thanks, I passed this to the right team; they will e-mail you today."
GIFT_QUESTIONS = [
    "do you sell gift cards",
    "can I buy a gift card",
    "gift cards for sale",
    "where to buy a gift card online",
    "gift card price",
    "is there a gift card",
]
PARKING_QUESTIONS = [
    "where can I park my car",
    "is parking free for my car",
    "car parking near the shop",
    "can I park my car at the shop",
    "is there a car park at the shop",
    "car parking for customers",
]
OFF_TOPIC = ["what is the weather", "who won the match", "tell me a joke", "sing a song now"]
TALK = "can I talk to a person please"


async def handed_over(log: ConversationLog, user: str, question: str, answer: str) -> int:
    """A question the bot handed over and an operator answered, as the desk logs it."""
    c = await log.start_conversation("telegram", user)
    await log.add_turn(c, "customer", question)
    await log.add_turn(c, "bot", "I'm not sure.", action="handoff", reason_code="out_of_scope")
    await log.add_turn(c, "customer", TALK)
    handover = await log.open_handover(c, "out_of_scope")
    await log.add_turn(c, "operator", answer)
    await log.close_handover(handover, operator_id="op")
    return c


async def fill(path: Path) -> None:
    async with await ConversationLog.open(path, LogConfig(redact_pii=False)) as log:
        for n, q in enumerate(GIFT_QUESTIONS):
            await handed_over(log, f"gift-{n}", q, f"Hello! {GIFT}")
        for n, q in enumerate(PARKING_QUESTIONS):
            await handed_over(log, f"park-{n}", q, PARKING)
        for n, q in enumerate(OFF_TOPIC):
            await handed_over(log, f"off-{n}", q, STOCK)
        # An operator answering with an existing entry's content.
        for n, q in enumerate(["my order still has not come", "parcel late, where is it"]):
            await handed_over(log, f"late-{n}", q, f"Sorry! {SHIPPING.answer} Anything else?")


def make_kb(tmp_path: Path, embedder: HashEmbedder) -> Settings:
    retrieval = RetrievalConfig(kb_dir=tmp_path / "kb", default_threshold=0.5)
    edit_entries(retrieval.kb_dir, embedder, retrieval, ImportConfig(), upsert=[SHIPPING, RETURNS])
    return Settings(retrieval=retrieval)


async def test_answered_hand_overs_become_drafts_and_stock_replies_do_not(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    await fill(tmp_path / "log.db")

    drafts, held = propose_from_log(
        tmp_path / "log.db", [SHIPPING, RETURNS], hash_embedder, held_out_share=0.0
    )

    assert held == []
    new = {d.answer: d for d in drafts if d.kind == "new"}
    assert set(new) == {f"Hello! {GIFT}", PARKING}, drafts
    assert set(new[PARKING].questions) == set(PARKING_QUESTIONS)
    assert all(d.status == "pending" for d in drafts)
    (alternatives,) = [d for d in drafts if d.kind == "alternatives"]
    assert alternatives.target == "shipping"
    assert set(alternatives.alt_questions) == {
        "my order still has not come",
        "parcel late, where is it",
    }
    assert not any(STOCK in d.answer for d in drafts)


def test_decisions_survive_the_file_and_a_new_proposal(tmp_path: Path) -> None:
    draft = Draft("d-1", "new", "where can I park", PARKING, ("is parking free",))
    path = tmp_path / "drafts.jsonl"
    decided = decide([draft], "d-1", "approved", answer="Parking is free.")
    write_drafts(path, decided)

    again = merge_drafts(read_drafts(path), [draft, Draft("d-2", "new", "gift?", GIFT)])

    assert [(d.id, d.status, d.answer) for d in again] == [
        ("d-1", "approved", "Parking is free."),
        ("d-2", "pending", GIFT),
    ]
    with pytest.raises(KeyError, match=r"retrain\.py review"):
        decide(again, "d-9", "rejected")
    (entry,) = draft_entries(again, [])
    assert entry.id.startswith("learned/") and entry.answer == "Parking is free."


QUERIES = [
    LabelledQuery("how long does shipping take to my house", "shipping"),
    LabelledQuery("when will my parcel arrive at home", "shipping"),
    LabelledQuery("shipping delivery time", "shipping"),
    LabelledQuery("how do I return a broken item", "returns"),
    LabelledQuery("can I send it back for free", "returns"),
    LabelledQuery("what is the return policy", "returns"),
    LabelledQuery("what is the weather tomorrow", None),
]


async def test_the_gate_puts_good_drafts_live(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    await fill(tmp_path / "log.db")
    settings = make_kb(tmp_path, hash_embedder)
    entries = (SHIPPING, RETURNS)
    drafts, held = propose_from_log(tmp_path / "log.db", entries, hash_embedder, held_out_share=0.5)
    assert held and drafts
    for draft in list(drafts):
        drafts = decide(drafts, draft.id, "approved")

    outcome = apply_drafts(settings, hash_embedder, drafts, QUERIES, held)

    assert outcome.verdict.promote, outcome.verdict.reason
    correct, wrong = outcome.differences
    assert correct.low > 0 and wrong.low <= 0
    assert outcome.kb_version is not None
    assert all(d.kb_version == outcome.kb_version for d in outcome.drafts)
    kb = KnowledgeBase(settings.retrieval.kb_dir, hash_embedder, settings.retrieval)
    assert kb.version == outcome.kb_version
    assert any(e.id.startswith("learned/") for e in kb.snapshot.entries)
    # Applying again finds nothing left to apply.
    again = apply_drafts(settings, hash_embedder, outcome.drafts, QUERIES, held)
    assert not again.verdict.promote and again.kb_version is None


async def test_a_bad_retrain_is_refused(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    settings = make_kb(tmp_path, hash_embedder)
    before = KnowledgeBase(settings.retrieval.kb_dir, hash_embedder, settings.retrieval).version
    # Approved by mistake: the shop's own questions with an answer that is plain wrong.
    bad = Draft(
        "d-bad",
        "new",
        "how long does shipping take to my house",
        "We do not ship or take returns.",
        tuple(q.query for q in QUERIES if q.faq_id is not None),
        status="approved",
    )

    outcome = apply_drafts(settings, hash_embedder, [bad], QUERIES)

    assert not outcome.verdict.promote
    assert outcome.verdict.reason.startswith("worse"), outcome.verdict.reason
    after = KnowledgeBase(settings.retrieval.kb_dir, hash_embedder, settings.retrieval).version
    assert after == before and outcome.drafts[0].kb_version is None


async def test_a_change_the_gate_cannot_see_is_not_enough_evidence(
    tmp_path: Path, hash_embedder: HashEmbedder
) -> None:
    settings = make_kb(tmp_path, hash_embedder)
    harmless = Draft(
        "d-1", "new", "do you sell gift cards", GIFT, ("gift card",), status="approved"
    )

    outcome = apply_drafts(settings, hash_embedder, [harmless], QUERIES)

    assert not outcome.verdict.promote
    assert outcome.verdict.reason.startswith("not enough evidence"), outcome.verdict.reason


def test_a_shared_greeting_is_not_an_entry_quoted() -> None:
    learned = FaqEntry("learned/x", "x?", "Thanks for reaching out! Gift cards cost ten euros.")
    replies = [
        "Thanks for reaching out! I passed this on. Anything else?",
        "Thanks for reaching out! Parking is free. Anything else?",
        "Thanks for reaching out! Gift cards cost ten euros. Anything else?",
    ]
    common = boilerplate([*replies, learned.answer])

    assert answered_from(replies[0], [learned], common) is None
    assert answered_from(replies[2], [learned], common) == learned
