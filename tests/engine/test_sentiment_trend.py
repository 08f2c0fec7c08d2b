"""The per-conversation trend that escalates to a human, the registry and the evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.sentiment import Sentiment, SentimentConfig, SentimentTrend, load_sentiment
from engine.sentiment.evaluation import (
    LabelledText,
    binary_label,
    evaluate_sentiment,
    read_labelled,
    split_half,
)
from engine.sentiment.lexicon import LexiconSentiment
from tests.conftest import SHARED_DATA
from tests.services import need_path


def test_trend_weights_recent_messages_most() -> None:
    trend = SentimentTrend(window=3, decay=0.5)
    assert trend.weighted == 0.0 and not trend.escalate
    assert trend.update(Sentiment("positive", 0.8)) == pytest.approx(0.8)
    # (1 * -0.4 + 0.5 * 0.8) / 1.5
    assert trend.update(-0.4) == pytest.approx(0.0)
    trend.update(0.0)
    trend.update(0.0)
    # The 0.8 has left the window of three.
    assert trend.weighted == pytest.approx(-0.4 * 0.25 / 1.75)


def test_two_strongly_negative_messages_in_a_row_escalate() -> None:
    trend = SentimentTrend(window=5, decay=0.6, escalate_below=-0.9, strong_negative=-0.6)
    for score in (0.9, 0.9, 0.9, -0.7):
        trend.update(score)
    assert not trend.escalate
    trend.update(-0.65)
    assert trend.escalate
    trend.update(0.5)
    assert not trend.escalate


def test_a_sinking_trend_escalates() -> None:
    trend = SentimentTrend.from_config(SentimentConfig(escalate_below=-0.4))
    levels = [trend.update(s) for s in (-0.3, -0.5, -0.2, -0.55)]
    assert levels[-1] < -0.4 and trend.escalate
    calm = SentimentTrend.from_config(SentimentConfig())
    calm.update(-0.3)
    assert not calm.escalate


def test_trend_escalates_on_a_real_conversation() -> None:
    lexicon = LexiconSentiment()
    trend = SentimentTrend.from_config(SentimentConfig())
    messages = [
        "Hi, where is my order 48213?",
        "It was supposed to arrive last week.",
        "This is ridiculous, nobody answers my emails!!",
        "I WANT MY MONEY BACK NOW or I'm calling my lawyer",
    ]
    escalated = []
    for text in messages:
        trend.update(lexicon.score(text))
        escalated.append(trend.escalate)
    assert escalated == [False, False, False, True]


@pytest.mark.parametrize(
    "text",
    [
        "In the case of my death, what would happen to my account?",
        "I'm scared all my data will be lost, how can I back it up?",
        "how long can i freeze tofu before it goes bad",
        "I was double charged",
    ],
)
def test_a_calm_question_on_a_sad_topic_keeps_its_label_but_does_not_escalate(text: str) -> None:
    sentiment = LexiconSentiment().score(text)
    trend = SentimentTrend.from_config(SentimentConfig())
    trend.update(sentiment)
    assert sentiment.score < -0.2 and not trend.escalate, sentiment


@pytest.mark.parametrize(
    "text",
    [
        "This is ridiculous, I have been waiting for two weeks!",
        "I am sick of this damn company and want to close my account.",
        "on hold for almost 2 hours trying to rebook my cancelled flight. What in the world?!!!",
        "你们这什么破服务，气死我了！",
    ],
)
def test_anger_at_the_service_escalates_at_once(text: str) -> None:
    sentiment = LexiconSentiment().score(text)
    trend = SentimentTrend.from_config(SentimentConfig())
    trend.update(sentiment)
    assert trend.escalate, sentiment


def test_a_second_negative_message_escalates_without_anger_cues() -> None:
    trend = SentimentTrend.from_config(SentimentConfig())
    trend.update(Sentiment("negative", -0.7))
    assert not trend.escalate  # one sad message: answered
    trend.update(Sentiment("negative", -0.45))
    assert trend.escalate  # the complaint repeats: (-0.45 + 0.6 * -0.7) / 1.6 < -0.5
    after_calm = SentimentTrend.from_config(SentimentConfig())
    for score in (0.0, -0.9):
        after_calm.update(score)
    assert not after_calm.escalate


def test_trend_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="window"):
        SentimentTrend(window=1)
    with pytest.raises(ValueError, match="decay"):
        SentimentTrend(decay=0.0)


def test_unknown_sentiment_model_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'bert'.*classifier, lexicon"):
        load_sentiment(SentimentConfig(model="bert"))


def test_default_config_loads_the_lexicon() -> None:
    assert isinstance(load_sentiment(SentimentConfig()), LexiconSentiment)


def test_sentiment_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="outside"):
        Sentiment("negative", -1.5)
    with pytest.raises(ValueError, match="label"):
        Sentiment("angry", -0.5)  # type: ignore[arg-type]


def rows(labels: str) -> list[LabelledText]:
    names = {"n": "negative", "u": "neutral", "p": "positive"}
    return [LabelledText(f"text {i}", names[c]) for i, c in enumerate(labels)]  # type: ignore[arg-type]


def test_split_half_is_stratified_disjoint_and_reproducible() -> None:
    data = rows("n" * 11 + "u" * 6 + "p" * 4)
    first, second = split_half(data, seed=3)
    assert sorted(first + second, key=lambda r: r.text) == sorted(data, key=lambda r: r.text)
    assert [r.label for r in first].count("negative") == 5
    assert [r.label for r in first].count("neutral") == 3
    assert [r.label for r in first].count("positive") == 2
    assert split_half(data, seed=3) == (first, second)
    assert split_half(data, seed=4) != (first, second)


def test_binary_gold_reads_neutral_by_the_sign_of_its_score() -> None:
    assert binary_label(Sentiment("neutral", -0.1)) == "negative"
    assert binary_label(Sentiment("neutral", 0.0)) == "positive"
    assert binary_label(Sentiment("negative", -0.9)) == "negative"


def test_evaluate_sentiment_reports_the_negative_class() -> None:
    data = [
        LabelledText("This is terrible, I hate it", "negative"),
        LabelledText("Awful, never again", "negative"),
        LabelledText("Thank you, wonderful help", "positive"),
        LabelledText("Where is your office?", "positive"),  # neutral, score 0: read positive
    ]
    metrics = evaluate_sentiment(LexiconSentiment(), data)
    assert metrics == {
        "n": 4,
        "accuracy": 1.0,
        "macro_f1": 1.0,
        "negative_f1": 1.0,
        "negative_precision": 1.0,
        "negative_recall": 1.0,
    }


def test_read_labelled_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "ok", "label": "positive"}\n{"text": "x", "label": "angry"}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_labelled(path)


@pytest.mark.parametrize(
    ("name", "macro_f1"),
    [("airline-sentiment", 0.5), ("waimai-zh", 0.7), ("chnsenticorp-zh", 0.7)],
)
def test_lexicon_quality_on_the_dev_sets(name: str, macro_f1: float) -> None:
    # Evaluation only: the lexicon is not trained, so these licences are respected.
    data = read_labelled(need_path(SHARED_DATA / name / "sentiment_dev.jsonl", "shared data"))
    assert evaluate_sentiment(LexiconSentiment(), data)["macro_f1"] >= macro_f1
