"""A retraining run reads the knowledge base's change log: an entry made from an operator's
answer gives the customer's wording as a logged pair for the embedder."""

from __future__ import annotations

import json
from pathlib import Path

from engine.log import ConversationLog
from engine.settings import Settings, TrainingConfig
from retrieval import ImportConfig, RetrievalConfig
from retrieval.entries import FaqEntry
from retrieval.importer import edit_entries
from retrieval.store import KbChange, current_version, record_change
from tests.fakes import HashEmbedder
from training.loop import RunOptions, run_retraining

KIOSK = FaqEntry(
    "console/0a1b2c3d4e5f",
    "Which payment methods does the harbour kiosk take?",
    "Cards and cash.",
    ("Can I pay with seashells at the harbour kiosk?",),
)


async def test_a_dry_run_counts_the_customers_words_as_logged_pairs(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    config = RetrievalConfig(kb_dir=kb_dir, calibrate=False)
    edit_entries(kb_dir, HashEmbedder(), config, ImportConfig(), upsert=[KIOSK])
    record_change(
        kb_dir,
        KbChange(
            current_version(kb_dir) or "",
            0.0,
            "ann",
            "conversation",
            f"added {KIOSK.id}",
            KIOSK.id,
            conversation_id=7,
            turn_id=3,
            operator="olaf",
            questions=("seashells ok at the kiosk??",),
        ),
    )
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
    assert logged == [("seashells ok at the kiosk??", KIOSK.id, None)]
    (outcome,) = summary.outcomes
    assert "1 logged question pairs for training" in outcome.note
