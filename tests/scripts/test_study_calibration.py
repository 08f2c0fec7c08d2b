"""scripts/study_calibration.py on a tiny set in the dev sets' format, packaged MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scripts.test_cli import run

ENTRIES = {
    "DELIVERY": [
        "When will my order arrive?",
        "How long does delivery take?",
        "Where is my parcel?",
        "My package has not arrived yet",
        "Track my shipment",
        "How many days until my order is delivered?",
    ],
    "REFUND": [
        "How do I get a refund?",
        "I want my money back",
        "Can I return this for a refund?",
        "Refund for a damaged item",
        "How long does a refund take?",
        "Return the product and get paid back",
    ],
    "PAYMENT": [
        "Which payment methods do you accept?",
        "Can I pay by credit card?",
        "Do you take PayPal?",
        "Is cash on delivery possible?",
        "Can I pay in instalments?",
        "Payment options available",
    ],
}
QUERIES = [
    ("when does my order come", "DELIVERY"),
    ("i would like a refund please", "REFUND"),
    ("can i pay with a card", "PAYMENT"),
    ("what is the capital of france", None),
    ("who won the football world cup", None),
]


def tiny_set(root: Path) -> Path:
    folder = root / "tiny"
    folder.mkdir(parents=True)
    faq = [
        {"id": k, "question": qs[0], "answer": "", "alt_questions": qs[1:]}
        for k, qs in ENTRIES.items()
    ]
    (folder / "faq.jsonl").write_text("".join(json.dumps(e) + "\n" for e in faq))
    (folder / "queries_dev.jsonl").write_text(
        "".join(json.dumps({"query": q, "faq_id": g}) + "\n" for q, g in QUERIES)
    )
    return root


def test_rules_json_replays_the_engine(tmp_path: Path) -> None:
    data = tiny_set(tmp_path / "data")
    args = ["--data", str(data), "--sets", "tiny", "--seeds", "2", "--rules", "--json"]
    proc = run("study_calibration.py", *args, "--cache", str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    tiny = result["sets"]["tiny"]
    assert tiny["replay_matches_engine"] and tiny["rule_matches_import"]
    assert tiny["threshold"] >= 0.5
    # By hand: the two general-knowledge questions share no topic with the entries, so the
    # engine hands both over, and the old rule is the floor or the median of other entries.
    assert tiny["engine"]["handoff_recall"] == 1.0
    old = result["rules"]["median (old)"]["sets"]["tiny"]
    assert old["threshold"] == max(0.5, tiny["median_other"])
    assert set(result["rules"]) >= {"median (old)", "rule now"}
    assert "stability" not in result and "generalise" not in result
    # The cache is read on a second run: same figures.
    again = run("study_calibration.py", *args, "--cache", str(tmp_path / "cache"))
    assert json.loads(again.stdout.strip().splitlines()[-1]) == result
    # The generalisation checks run on a set this small too (halves without in-scope queries).
    proc = run(
        "study_calibration.py",
        *args[:6],
        "--generalise",
        "--resamples",
        "5",
        "--json",
        "--cache",
        str(tmp_path / "cache"),
    )
    assert proc.returncode == 0, proc.stderr
    general = json.loads(proc.stdout.strip().splitlines()[-1])["generalise"]
    assert general["split_half"]["pairs"] == 12
    assert general["bootstrap"]["tiny"]["size"] == round(2.3 * len(QUERIES))


def test_missing_data_folder_is_a_clear_error(tmp_path: Path) -> None:
    proc = run("study_calibration.py", "--data", str(tmp_path / "none"), "--rules")
    assert proc.returncode == 2
    assert "is not a folder" in proc.stderr
