"""Training sets exported from a real log: the rules, the split, and the PII refusal."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.log import LogConfig
from engine.log.copy import copy_log
from retrieval.entries import FaqEntry
from retrieval.store import KbChange
from tests.training.conftest import RETURNS, SHIPPING, fill_log
from training.data import (
    DialogueRecord,
    PersonalDataFound,
    QueryPair,
    export_training_sets,
    split_by_conversation,
)

ENTRIES = (
    FaqEntry(
        id=SHIPPING,
        question="How long does shipping take?",
        answer="3-5 working days.",
        alt_questions=("delivery time?",),
    ),
)


def _all(split: object) -> list[object]:
    return [*split.train, *split.validation]  # type: ignore[attr-defined]


async def test_export_follows_the_rules(filled_log: tuple[Path, dict[str, int]]) -> None:
    path, ids = filled_log
    sets = export_training_sets(path, kb_entries=ENTRIES, validation_share=0.0)
    pairs = {(p.id, p.faq_id) for p in sets.pairs.train}
    assert (f"turn-{ids['liked']}", SHIPPING) in pairs
    assert (f"turn-{ids['silent']}", SHIPPING) in pairs
    assert not any(p.id == f"turn-{ids['disliked']}" for p in sets.pairs.train)
    # The entry's own question was also asked in the log: kept once, as the logged pair.
    assert {p.query for p in sets.pairs.train if p.source == "kb"} == {"delivery time?"}
    dialogues: dict[str, DialogueRecord] = {d.id: d for d in sets.dialogues.train}
    # Not the 👎 answer, the unrated ones, nor the liked answer right before the hand-over.
    assert set(dialogues) == {f"turn-{ids['liked']}", f"turn-{ids['operator']}"}
    operator = dialogues[f"turn-{ids['operator']}"]
    assert operator.source == "operator"
    assert operator.question == "this is ridiculous, where is my refund"
    assert dialogues[f"turn-{ids['liked']}"].faq_ids == (SHIPPING, RETURNS)
    texts = {s.text: s for s in sets.sentiment.train}
    assert "erase me please" not in texts
    assert texts["this is ridiculous, where is my refund"].source == "escalation"
    assert texts["my mail is [email], where is my order"].label == "neutral"


async def test_duplicates_are_dropped(filled_log: tuple[Path, dict[str, int]]) -> None:
    path, _ = filled_log
    sets = export_training_sets(path, kb_entries=ENTRIES + ENTRIES, validation_share=0.0)
    keys = [(p.query.lower(), p.faq_id) for p in sets.pairs.train]
    assert len(keys) == len(set(keys))


async def test_personal_data_refuses_training(tmp_path: Path) -> None:
    path = tmp_path / "raw.db"
    ids = await fill_log(path, redact_pii=False)
    with pytest.raises(PersonalDataFound, match="refusing to train") as caught:
        export_training_sets(path)
    assert f"turn-{ids['pii']}" in caught.value.offending
    assert f"turn-{ids['liked']}" not in caught.value.offending


def test_split_never_puts_a_conversation_on_both_sides() -> None:
    examples = [QueryPair(f"t{i}", i // 3, f"q{i}", "x", "log") for i in range(300)]
    examples += [QueryPair(f"kb{i}", None, f"kb{i}", "x", "kb") for i in range(10)]
    split = split_by_conversation(examples, 0.25, seed=1)
    train = {p.conversation_id for p in split.train}
    validation = {p.conversation_id for p in split.validation}
    assert not train & validation
    assert None not in validation
    assert 0.15 < len(validation) / 100 < 0.35
    assert split_by_conversation(examples, 0.25, seed=1).validation == split.validation


async def test_sets_are_written_as_json_lines(
    filled_log: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    path, _ = filled_log
    written = export_training_sets(path).write(tmp_path / "data")
    assert set(written) == {
        f"{kind}.{split}"
        for kind in ("pairs", "dialogues", "sentiment")
        for split in ("train", "validation")
    }
    assert written["pairs.train"].read_text().count("\n") >= 2


async def test_a_postgres_log_exports_the_same_sets(
    filled_log: tuple[Path, dict[str, int]], postgres_url: str
) -> None:
    path, _ = filled_log
    copied = await copy_log(LogConfig(path=path), LogConfig(url=postgres_url))
    assert copied.identical
    from_file = export_training_sets(path, kb_entries=ENTRIES, validation_share=0.3)
    from_server = export_training_sets(postgres_url, kb_entries=ENTRIES, validation_share=0.3)
    assert from_server == from_file
    assert from_server.counts() == from_file.counts() and len(from_server.dialogues) > 0


async def test_questions_a_conversation_added_become_logged_pairs(
    filled_log: tuple[Path, dict[str, int]],
) -> None:
    # The change records hold ids only: the questions come from the knowledge base's versions.
    path, _ = filled_log
    (shipping,) = ENTRIES
    joined = replace(shipping, alt_questions=(*shipping.alt_questions, "parcel when??"))
    gone = FaqEntry(id="deleted/entry", question="x y z", answer="a.")
    versions = {"v000001": ENTRIES, "v000002": (joined,), "v000003": (joined, gone)}

    def read(version: str) -> tuple[FaqEntry, ...]:
        if version not in versions:
            raise FileNotFoundError(version)
        return versions[version]

    learned = KbChange("v000002", 0.0, "ann", "conversation", "added", SHIPPING, 41, 7, "olaf")
    deleted = KbChange("v000003", 0.0, "ann", "conversation", "added", gone.id, 42, 9)
    edit = KbChange("v000004", 0.0, "ann", "edit", "changed", SHIPPING)
    sets = export_training_sets(
        path,
        kb_entries=(joined,),
        kb_changes=[learned, deleted, edit],
        kb_versions=read,
        validation_share=0.0,
    )
    pairs = [(p.id, p.query, p.faq_id, p.conversation_id, p.source) for p in sets.pairs.train]
    assert [p for p in pairs if p[0].startswith("learned-")] == [
        ("learned-v000002-0", "parcel when??", SHIPPING, None, "log")
    ]
    assert not any(p[1] == "x y z" for p in pairs)
    # Its version pruned, a change counts all the live entry's questions (the main one the
    # log already has as a pair of its own).
    versions.pop("v000002")
    sets = export_training_sets(
        path, kb_entries=(joined,), kb_changes=[learned], kb_versions=read, validation_share=0.0
    )
    learned_now = {p.query for p in sets.pairs.train if p.id.startswith("learned-")}
    assert learned_now == {"delivery time?", "parcel when??"}


async def test_learned_pairs_never_reach_the_held_out_set(
    filled_log: tuple[Path, dict[str, int]],
) -> None:
    # Their text was just saved into the knowledge base, so any embedder finds it: held out,
    # they would score about 1 for old and new models alike and push the gate to a tie.
    path, _ = filled_log
    entries = [FaqEntry(id=f"e{n}", question=f"question {n}?", answer="a.") for n in range(40, 50)]
    changes = [
        KbChange(f"v{n:06d}", 0.0, "ann", "conversation", "added", f"e{n}", n, 7)
        for n in range(40, 50)
    ]
    sets = export_training_sets(path, kb_entries=entries, kb_changes=changes, validation_share=0.5)
    assert sets.pairs.validation, "the log's own pairs are still split"
    assert not [p for p in sets.pairs.validation if p.id.startswith("learned-")]
    learned = [p for p in sets.pairs.train if p.id.startswith("learned-")]
    assert len(learned) == 10 and {p.conversation_id for p in learned} == {None}
