"""The loop end to end: traffic through Engine.reply, feedback, operators, retraining, pickup.

Half of the sample shop's labelled in-scope questions (and the out-of-scope ones) are the
traffic, the other half are held out. A second running engine with its own log answers the
held-out half before and after retraining; it is not restarted, so its score after retraining
also shows that the promoted embedder and the re-embedded knowledge base were picked up.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.log import LogConfig
from engine.settings import Settings, TrainingConfig
from retrieval import (
    Embedder,
    ImportConfig,
    KnowledgeBase,
    RetrievalConfig,
    import_paths,
    load_embedder,
)
from retrieval.evaluation import tune_and_store_threshold
from tests.conftest import EXAMPLES
from tests.training.conftest import fill_log
from training.loop import RunOptions, run_retraining
from training.registry import ModelRegistry
from training.simulate import CustomerPolicy, Question, prove_loop, read_questions


def split(questions: list[Question]) -> tuple[list[Question], list[Question]]:
    """Every other in-scope question held out; the rest and all out-of-scope ones are traffic."""
    in_scope = [q for q in questions if q.faq_id is not None]
    out_of_scope = [q for q in questions if q.faq_id is None]
    return in_scope[0::2] + out_of_scope, in_scope[1::2]


async def test_traffic_through_the_engine_retrains_a_better_embedder(
    tmp_path: Path, minilm: Embedder
) -> None:
    traffic, held_out = split(read_questions(EXAMPLES / "queries.jsonl"))
    # The gate needs more evidence than the log's few held-out pairs (three here: "not enough
    # evidence"): it scores the held-out questions too, which nothing is trained on.
    gate_file = tmp_path / "gate.jsonl"
    gate_file.write_text(
        "".join(json.dumps({"query": q.text, "faq_id": q.faq_id}) + "\n" for q in held_out)
    )
    retrieval = RetrievalConfig(kb_dir=tmp_path / "kb")
    import_paths(
        [EXAMPLES / "kb"], retrieval.kb_dir, minilm, retrieval, ImportConfig(), progress=False
    )
    tune_file = tmp_path / "traffic.jsonl"
    tune_file.write_text(
        "".join(json.dumps({"query": q.text, "faq_id": q.faq_id}) + "\n" for q in traffic)
    )
    tune_and_store_threshold(retrieval.kb_dir, minilm, retrieval, tune_file, keep=3)
    settings = Settings(
        retrieval=retrieval,
        log=LogConfig(path=tmp_path / "traffic.db"),
        training=TrainingConfig(
            models_dir=tmp_path / "models",
            runs_dir=tmp_path / "runs",
            min_pairs=5,
            validation_share=0.3,
            embedder_epochs=10.0,
        ),
    )

    proof = await prove_loop(
        settings,
        traffic,
        held_out,
        what=("embedder",),
        evaluation_log=tmp_path / "held-out.db",
        policy=CustomerPolicy(upset_share=0.2),
        gate_queries=gate_file,
    )

    stats = proof.traffic
    assert stats.conversations == len(traffic)
    assert stats.liked > 0 and stats.disliked > 0
    assert stats.handed_over > 0 and stats.operator_turns == stats.handed_over
    (outcome,) = proof.summary.outcomes
    assert outcome.verdict is not None and outcome.verdict.promote, outcome.note
    live = ModelRegistry(settings.training.models_dir).current_path("embedder")
    assert live is not None
    before, after = proof.before, proof.after
    assert after.versions["embedder"] == str(live.resolve()) != before.versions["embedder"]
    assert after.versions["kb"] != before.versions["kb"]
    # On questions no customer asked: the engine ranks the right entry first at least as often,
    # and the embedder separates it from the wrong ones by a clearly wider margin. (Answering
    # at once can drop: the out-of-scope threshold was tuned for the old embedder.)
    assert after.top1 >= before.top1, (before, after)
    old, new = proof.ranking_before, proof.ranking_after
    assert new["recall_at_1"] >= old["recall_at_1"] and new["mrr"] >= old["mrr"], (old, new)
    assert new["margin"] > old["margin"] + 0.01, (old, new)


async def test_the_embedder_gate_also_scores_labelled_queries(
    tmp_path: Path, minilm: Embedder
) -> None:
    retrieval = RetrievalConfig(kb_dir=tmp_path / "kb")
    import_paths(
        [EXAMPLES / "kb"], retrieval.kb_dir, minilm, retrieval, ImportConfig(), progress=False
    )
    log_db = tmp_path / "log.db"
    await fill_log(log_db)
    settings = Settings(
        retrieval=retrieval,
        training=TrainingConfig(
            models_dir=tmp_path / "models",
            runs_dir=tmp_path / "runs",
            min_pairs=1,
            embedder_epochs=0.2,
            margin=1.0,  # promote whatever comes out, to see the threshold follow it
        ),
    )
    threshold_before = KnowledgeBase(retrieval.kb_dir, minilm, retrieval).threshold
    queries = read_questions(EXAMPLES / "queries.jsonl")
    options = RunOptions(
        log_db=log_db, what=("embedder",), progress=False, queries=EXAMPLES / "queries.jsonl"
    )

    (outcome,) = run_retraining(settings, options).outcomes

    assert outcome.trained and outcome.version is not None
    assert outcome.before["recall_at_1"] is not None
    stored = ModelRegistry(settings.training.models_dir).get("embedder", outcome.version)
    assert stored.metadata["counts"]["validation"] == sum(q.faq_id is not None for q in queries)
    assert outcome.verdict is not None and outcome.verdict.promote
    live = ModelRegistry(settings.training.models_dir).current_path("embedder")
    assert live is not None
    kb = KnowledgeBase(retrieval.kb_dir, load_embedder(str(live)), retrieval)
    assert "queries.jsonl" in kb.snapshot.meta.threshold_source, kb.snapshot.meta.threshold_source
    assert kb.threshold != threshold_before and "re-tuned" in outcome.note
