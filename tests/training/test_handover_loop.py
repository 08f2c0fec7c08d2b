"""The loop learns from hand-overs: a small slice of clinc150 dev, half its entries hidden.

The same run as `scripts/demo_retrain.py --hide-share 0.5`, at CI size: 20 intents (10 hidden
from the starting knowledge base) and 20 out-of-scope questions, through the real engine, the
real conversation log and the packaged MiniLM embedder.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.log import LogConfig
from engine.settings import Settings
from retrieval import Embedder, RetrievalConfig
from retrieval.entries import FaqEntry
from tests.conftest import SHARED_DATA
from tests.services import need_path
from training.handover_sim import prove_handover_loop, split, with_answers
from training.simulate import CustomerPolicy, Question, read_questions

CLINC = SHARED_DATA / "clinc150"


def small_clinc() -> tuple[list[FaqEntry], list[Question]]:
    with (CLINC / "faq.jsonl").open(encoding="utf-8") as fh:
        entries = [FaqEntry.from_json(json.loads(line)) for line in fh][:20]
    ids = {e.id for e in entries}
    questions = read_questions(CLINC / "queries_dev.jsonl")
    out_of_scope = [q for q in questions if q.faq_id is None][:20]
    return entries, [q for q in questions if q.faq_id in ids] + out_of_scope


def test_the_split_hides_half_and_keeps_customers_apart() -> None:
    entries = [FaqEntry(f"e{i}", f"question {i}", "") for i in range(6)]
    questions = [Question(f"q{i}-{n}", f"e{i}") for i in range(6) for n in range(10)]
    questions += [Question(f"off {n}", None) for n in range(4)]

    parts = split(with_answers(entries), questions, 0.5)

    assert len(parts.hidden) == 3 and len(parts.visible) == 3
    assert parts.visible[0].answer == "Here is our help on e0."
    texts = [{q.text for q in part} for part in (parts.traffic, parts.held_out, parts.gate)]
    assert not (texts[0] & texts[1]) and not (texts[1] & texts[2]) and not (texts[0] & texts[2])
    assert len(parts.traffic) == 6 * 5 + 2 and len(parts.held_out) == 6 * 3
    assert all(q.faq_id is not None for q in parts.held_out)


async def test_one_retrain_from_hand_overs_lifts_resolution(
    tmp_path: Path, minilm: Embedder
) -> None:
    need_path(CLINC, "the shared evaluation data")
    entries, questions = small_clinc()
    settings = Settings(
        retrieval=RetrievalConfig(kb_dir=tmp_path / "kb"),
        log=LogConfig(path=tmp_path / "traffic.db"),
    )

    proof = await prove_handover_loop(
        settings,
        minilm,
        entries,
        questions,
        hide_share=0.5,
        evaluation_log=tmp_path / "held-out.db",
        policy=CustomerPolicy(upset_share=0.1),
    )

    figures = proof.summary()
    assert len(proof.split.hidden) == 10, figures
    assert any(d.kind == "new" for d in proof.drafts), figures
    assert proof.outcome.verdict.promote, figures
    assert proof.after.resolution >= proof.before.resolution + 0.2, figures
    assert proof.after.wrong_share <= proof.before.wrong_share, figures
