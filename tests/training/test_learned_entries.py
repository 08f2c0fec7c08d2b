"""A retraining run reads the knowledge base's change log: the questions an operator's answer
gave an entry become logged pairs for the embedder (the record holds ids, the entry the words)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from engine.log import ConversationLog
from engine.settings import Settings, TrainingConfig
from retrieval import ImportConfig, RetrievalConfig
from retrieval.entries import FaqEntry
from retrieval.importer import edit_entries
from retrieval.store import KbChange, record_change
from tests.fakes import HashEmbedder
from training.loop import RunOptions, run_retraining

HOURS = FaqEntry("hours", "When are you open?", "9 to 5.")
KIOSK = FaqEntry(
    "console/0a1b2c3d4e5f",
    "Which payment methods does the harbour kiosk take?",
    "Cards and cash.",
    ("Can I pay with seashells at the harbour kiosk?",),
)


async def test_a_dry_run_counts_the_customers_words_as_logged_pairs(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    config = RetrievalConfig(kb_dir=kb_dir, calibrate=False)
    edit_entries(kb_dir, HashEmbedder(), config, ImportConfig(), upsert=[HOURS])
    edit_entries(kb_dir, HashEmbedder(), config, ImportConfig(), upsert=[KIOSK])
    # Later the customer's words join an entry: only those are learned for it.
    joined = replace(HOURS, alt_questions=("u open sunday?",))
    edit_entries(kb_dir, HashEmbedder(), config, ImportConfig(), upsert=[joined])
    for version, entry in (("v000002", KIOSK), ("v000003", joined)):
        change = KbChange(version, 0.0, "ann", "conversation", "learned", entry.id, 7, 3, "olaf")
        record_change(kb_dir, change)
    log_db = tmp_path / "log.db"
    async with await ConversationLog.open(log_db):
        pass
    settings = Settings(
        retrieval=config,
        training=TrainingConfig(
            runs_dir=tmp_path / "runs", models_dir=tmp_path / "models", validation_share=0.0
        ),
    )
    options = RunOptions(log_db=log_db, what=("embedder",), dry_run=True, progress=False)
    summary = run_retraining(settings, options)
    rows = [
        json.loads(line)
        for line in (summary.run_dir / "data" / "pairs.train.jsonl").read_text().splitlines()
    ]
    logged = [(r["query"], r["faq_id"], r["conversation_id"]) for r in rows if r["source"] == "log"]
    assert logged == [
        (KIOSK.question, KIOSK.id, None),
        (KIOSK.alt_questions[0], KIOSK.id, None),
        ("u open sunday?", HOURS.id, None),
    ]
    (outcome,) = summary.outcomes
    assert "3 logged question pairs for training" in outcome.note
