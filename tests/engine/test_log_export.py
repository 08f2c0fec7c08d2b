"""Training exports and the report read back what the bot logged, minus erased customers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.log import (
    AnswerPair,
    ConversationLog,
    LabelledSentiment,
    Retrieved,
    UnansweredQuestion,
    answer_pairs,
    dialogue_examples,
    normalise_question,
    report,
    sentiment_labels,
)
from engine.log.__main__ import main
from tests.conftest import ROOT


@pytest.fixture
async def logged(tmp_path: Path) -> Path:
    """A log with two customers' conversations and one erased customer."""
    path = tmp_path / "log.db"
    async with await ConversationLog.open(path) as log:
        first = await log.start_conversation("telegram", "1")
        await log.add_turn(
            first,
            "customer",
            "How do I reset my password?",
            sentiment_label="neutral",
            sentiment_score=0.0,
            models={"sentiment": "lexicon"},
        )
        reply = await log.add_turn(
            first,
            "bot",
            "Use the reset link.",
            action="answer",
            retrieved=[Retrieved("password-reset", 0.92), Retrieved("account", 0.4)],
        )
        await log.add_feedback(reply, 1)
        await log.add_turn(
            first,
            "customer",
            "Where is my refund??",
            sentiment_label="negative",
            sentiment_score=-0.6,
        )
        await log.add_turn(first, "bot", "Let me get a colleague.", action="handoff")
        await log.open_handover(first, "no confident answer")
        operator = await log.add_turn(first, "operator", "Refunds take five days.")
        await log.add_feedback(operator, 1)

        second = await log.start_conversation("telegram", "2")
        await log.add_turn(second, "customer", "where is my REFUND")
        await log.add_turn(second, "bot", "Which order?", action="clarify")
        await log.add_turn(second, "customer", "the refund for order 12345678")
        reply = await log.add_turn(
            second, "bot", "It was sent.", action="answer", retrieved=[Retrieved("refunds", 0.8)]
        )
        await log.add_feedback(reply, -1)

        erased = await log.start_conversation("telegram", "3")
        await log.add_turn(
            erased, "customer", "forget me", sentiment_label="neutral", sentiment_score=0
        )
        reply = await log.add_turn(
            erased, "bot", "Done.", action="answer", retrieved=[Retrieved("privacy", 0.9)]
        )
        await log.add_feedback(reply, 1)
        await log.erase_customer("telegram", "3")
    return path


def test_answer_pairs_give_the_question_the_top_entry_and_the_verdict(logged: Path) -> None:
    pairs = list(answer_pairs(logged))
    assert [(p.question, p.faq_id, p.feedback) for p in pairs] == [
        ("How do I reset my password?", "password-reset", 1),
        ("the refund for order 12345678", "refunds", -1),
    ]
    assert all(isinstance(pair, AnswerPair) for pair in pairs)


def test_dialogue_examples_give_each_reply_with_its_context(logged: Path) -> None:
    examples = list(dialogue_examples(logged, context_turns=2))
    assert [(e.role, e.reply, e.action, e.feedback) for e in examples] == [
        ("bot", "Use the reset link.", "answer", 1),
        ("bot", "Let me get a colleague.", "handoff", None),
        ("operator", "Refunds take five days.", None, 1),
        ("bot", "Which order?", "clarify", None),
        ("bot", "It was sent.", "answer", -1),
    ]
    first, _, from_operator, _, last = examples
    assert first.context == (("customer", "How do I reset my password?"),)
    assert first.faq_ids == ("password-reset", "account")
    assert from_operator.context == (
        ("customer", "Where is my refund??"),
        ("bot", "Let me get a colleague."),
    )
    assert last.context == (("bot", "Which order?"), ("customer", "the refund for order 12345678"))
    assert last.faq_ids == ("refunds",)
    assert "forget me" not in str(list(dialogue_examples(logged)))
    with pytest.raises(ValueError, match="context_turns must be at least 1"):
        next(dialogue_examples(logged, context_turns=0))


def test_sentiment_labels_give_each_scored_customer_turn(logged: Path) -> None:
    labels = list(sentiment_labels(logged))
    assert [(s.text, s.label, s.score, s.model) for s in labels] == [
        ("How do I reset my password?", "neutral", 0.0, "lexicon"),
        ("Where is my refund??", "negative", -0.6, None),
    ]
    assert all(isinstance(label, LabelledSentiment) for label in labels)


def test_the_report_counts_outcomes_and_groups_unanswered_questions(logged: Path) -> None:
    summary = report(logged)
    assert (summary.conversations, summary.turns, summary.customer_turns) == (2, 9, 4)
    assert (summary.answered, summary.clarified, summary.handed_over) == (2, 1, 1)
    assert (summary.handovers, summary.feedback_up, summary.feedback_down) == (1, 2, 1)
    assert summary.top_unanswered == (UnansweredQuestion("where is my refund", 2),)
    assert report(logged, top=0).top_unanswered == ()
    assert normalise_question("  Where's   my REFUND?! ") == "where s my refund"


def test_the_command_line_prints_the_report(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(logged)]) == 0
    out = capsys.readouterr().out
    assert "conversations     2" in out and "feedback          +2 / -1" in out
    assert "      2  where is my refund" in out


def test_the_command_line_reads_all_as_every_channel_and_names_a_bad_day(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(logged)]) == 0
    everything = capsys.readouterr().out
    assert main(["--db", str(logged), "--channel", "all"]) == 0
    assert capsys.readouterr().out == everything
    assert main(["--db", str(logged), "--until", "2026-02-30"]) == 1
    assert capsys.readouterr().err == "error: --until='2026-02-30': give a UTC day as YYYY-MM-DD\n"


def test_the_command_line_explains_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(tmp_path / "nope.db")]) == 1
    assert "no conversation log at" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()


def test_python_dash_m_runs_the_report(logged: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "engine.log", "--db", str(logged), "--top", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "handed over       1 (1 handovers opened)" in done.stdout
    assert done.stderr == ""


async def test_an_answer_to_a_clarified_pick_pairs_the_clarified_question(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with await ConversationLog.open(path) as log:
        c = await log.start_conversation("telegram", "1")
        await log.add_turn(c, "customer", "how do refunds work")
        options = [Retrieved("refund-time", 0.71), Retrieved("refund-method", 0.7)]
        await log.add_turn(c, "bot", "Which one?", action="clarify", retrieved=options)
        await log.add_turn(c, "customer", "2")
        await log.add_turn(
            c,
            "bot",
            "To the card you paid with.",
            action="answer",
            reason="clarify choice: option 2",
            reason_code="clarify_choice",
            retrieved=[Retrieved("refund-method", 0.7)],
        )
    pairs = list(answer_pairs(path))
    assert [(p.question, p.faq_id) for p in pairs] == [("how do refunds work", "refund-method")]


def test_the_report_reads_the_log_the_config_names(
    logged: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "supportbot.toml"
    config.write_text(f'[log]\nurl = "sqlite:///{logged}"\n', encoding="utf-8")
    assert main(["report", "--config", str(config), "--top", "1"]) == 0
    assert "conversations     2" in capsys.readouterr().out
