"""Embedder fine-tuning: a real short run on a tiny FAQ, its output folder, and input errors."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from retrieval import Embedder, FaqEntry, load_embedder
from training.embedder import (
    METADATA_FILE,
    EmbedderTrainingConfig,
    add_arguments,
    run,
    train_embedder,
)
from training.paraphrases import LoggedQuery, build_pairs, read_faq, read_logged_queries

# Neighbouring topics of one shop, so the base model confuses some of them. Each entry has a
# question, three paraphrases to train on and two held-out paraphrases to score.
TOPICS: dict[str, tuple[str, list[str], list[str]]] = {
    "refund-status": (
        "Where is my refund?",
        ["my refund hasn't arrived yet", "when will i get my money back", "refund still pending"],
        ["still waiting on the money from my return", "how long until the refund shows up"],
    ),
    "return-item": (
        "How do I return an item?",
        ["i want to send something back", "how to return a product", "start a return"],
        ["can i give back the shoes i bought", "process for sending an order back"],
    ),
    "exchange-size": (
        "Can I exchange for a different size?",
        ["swap my shirt for a bigger one", "exchange for another size", "wrong size, want to swap"],
        ["the jacket is too small, can i trade it", "need a medium instead of the large"],
    ),
    "cancel-order": (
        "How do I cancel my order?",
        ["cancel my purchase", "i don't want the order anymore", "stop my order please"],
        ["ordered by mistake, undo it", "call off the order i just placed"],
    ),
    "change-address": (
        "Can I change the delivery address?",
        ["ship to a different address", "update where my parcel goes", "wrong address on order"],
        ["i moved, send the package to my new flat", "deliver to my office instead"],
    ),
    "track-order": (
        "Where is my order?",
        ["track my package", "my parcel hasn't come", "order status please"],
        ["when will my stuff get here", "has my delivery been shipped yet"],
    ),
    "damaged-item": (
        "My item arrived damaged",
        [
            "the product came broken",
            "package was crushed and item is cracked",
            "it arrived smashed",
        ],
        ["the vase was in pieces when i opened the box", "screen is scratched out of the box"],
    ),
    "missing-item": (
        "An item is missing from my order",
        ["only got part of my order", "one product wasn't in the box", "incomplete delivery"],
        ["the charger was not in the parcel", "received 2 of the 3 things i bought"],
    ),
    "payment-declined": (
        "Why was my card declined?",
        ["payment failed", "card was rejected at checkout", "transaction didn't go through"],
        ["checkout keeps saying my visa is refused", "can't pay, bank says no"],
    ),
    "double-charge": (
        "I was charged twice",
        ["charged two times for one order", "duplicate payment", "money taken twice"],
        ["my statement shows the same purchase twice", "you billed me double"],
    ),
    "warranty": (
        "What does the warranty cover?",
        ["is it under guarantee", "how long is the warranty", "warranty terms"],
        ["will you fix it for free if it breaks next year", "guarantee period for electronics"],
    ),
    "store-hours": (
        "When are your stores open?",
        ["opening times", "what time do you close", "shop hours on sunday"],
        ["are you open on bank holidays", "until when can i visit the shop today"],
    ),
}


def tiny_faq() -> list[FaqEntry]:
    return [
        FaqEntry(id=key, question=question, answer="", alt_questions=tuple(train))
        for key, (question, train, _held_out) in TOPICS.items()
    ]


def held_out_margin(embedder: Embedder) -> float:
    """Mean over held-out paraphrases of (own entry's best similarity - best other entry's)."""
    keys = list(TOPICS)
    entries = tiny_faq()
    rows = [(i, text) for i, entry in enumerate(entries) for text in entry.questions]
    indexed = embedder.encode([text for _, text in rows])
    owner = np.array([i for i, _ in rows])
    margins = []
    for i, key in enumerate(keys):
        for query in embedder.encode(TOPICS[key][2]):
            sims = indexed @ query
            margins.append(sims[owner == i].max() - sims[owner != i].max())
    return float(np.mean(margins))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("embedder") / "model"
    config = EmbedderTrainingConfig(epochs=4, batch_size=12, learning_rate=1e-4)
    result = train_embedder("all-MiniLM-L6-v2", tiny_faq(), out=out, config=config, progress=False)
    assert result.entries == 12 and result.faq_pairs == 36 and result.log_pairs == 0
    return out


@pytest.mark.slow
def test_trained_model_loads_and_ranks_held_out_paraphrases_better(
    trained: Path, minilm: Embedder
) -> None:
    tuned = load_embedder(str(trained))
    vectors = tuned.encode(["where is my refund", "hello"])
    assert tuned.dim == minilm.dim == 384 and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert held_out_margin(tuned) > held_out_margin(minilm) + 0.02


@pytest.mark.slow
def test_trained_folder_records_how_it_was_made(trained: Path) -> None:
    metadata = json.loads((trained / METADATA_FILE).read_text("utf-8"))
    assert metadata["base"] == "all-MiniLM-L6-v2"
    assert metadata["counts"] == {"entries": 12, "pairs": 36, "faq_pairs": 36, "log_pairs": 0}
    assert metadata["config"]["loss"] == "mnrl" and metadata["config"]["no_duplicates"]
    assert len(metadata["data_hash"]) == 32 and metadata["losses"]
    # The training-time truncation is not saved: the model still reads long questions whole.
    assert SentenceTransformer(str(trained), local_files_only=True).max_seq_length == 256


def test_pairs_point_at_the_entry_question_and_stay_balanced() -> None:
    logged = [LoggedQuery("money back when?", "refund-status", "log:1")]
    pairs = build_pairs(tiny_faq(), logged, seed=1)
    assert len(pairs) == 37 and sum(p.from_log for p in pairs) == 1
    assert all(p.positive == TOPICS[p.faq_id][0] for p in pairs)
    capped = build_pairs(tiny_faq(), max_pairs=24)
    assert sorted({p.faq_id for p in capped}) == sorted(TOPICS)
    assert build_pairs(tiny_faq(), seed=3) == build_pairs(tiny_faq(), seed=3)


def test_unknown_faq_id_in_logged_pairs_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        '{"query": "refund?", "faq_id": "refund-status"}\n'
        '{"query": "out of scope", "faq_id": null}\n'
        '{"query": "what is this", "faq_id": "no-such-entry"}\n',
        "utf-8",
    )
    logged = read_logged_queries(path)
    assert [row.location for row in logged] == [f"{path}:1", f"{path}:3"]
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(path))}:3: unknown faq_id 'no-such-entry'"
    ):
        build_pairs(tiny_faq(), logged)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON"),
        ('["query", "faq_id"]', "expected"),
        ('{"faq_id": "x"}', "expected"),
        ('{"query": "  ", "faq_id": "x"}', "empty query"),
        ('{"query": "hi", "faq_id": [1]}', "faq_id must be"),
    ],
)
def test_bad_pairs_lines_name_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(f'{{"query": "ok", "faq_id": "a"}}\n\n{line}\n', "utf-8")
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}:3: {reason}"):
        read_logged_queries(path)


def test_missing_or_empty_faq_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        read_faq(tmp_path / "absent.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", "utf-8")
    with pytest.raises(ValueError, match="empty file"):
        read_faq(empty)


def test_faq_without_paraphrases_or_with_used_output_is_refused(tmp_path: Path) -> None:
    bare = [FaqEntry(id="a", question="Where is my order?", answer="")]
    with pytest.raises(ValueError, match="too few training pairs"):
        train_embedder("all-MiniLM-L6-v2", bare, out=tmp_path / "new")
    used = tmp_path / "used"
    used.mkdir()
    (used / "model.safetensors").write_text("x", "utf-8")
    with pytest.raises(ValueError, match="not empty"):
        train_embedder("all-MiniLM-L6-v2", tiny_faq(), out=used)


def test_cli_reports_bad_input_as_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text("".join(json.dumps(entry.to_json()) + "\n" for entry in tiny_faq()), "utf-8")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"query": "hello", "faq_id": "nope"}\n', "utf-8")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--faq", str(faq), "--pairs", str(pairs), "--out", str(tmp_path / "out")]
    )
    assert run(args) == 2
    assert f"error: {pairs}:1: unknown faq_id 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
