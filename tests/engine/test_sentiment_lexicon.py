"""The lexicon model's support-desk cues and its Chinese word list."""

from __future__ import annotations

import pytest

from engine.sentiment import Sentiment, SentimentConfig
from engine.sentiment.lexicon import LexiconSentiment, chinese_score, detect_signals


@pytest.fixture(scope="module")
def lexicon() -> LexiconSentiment:
    return LexiconSentiment(SentimentConfig())


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("WHY IS MY ORDER NOT HERE", "shouting"),
        ("I WANT MY MONEY BACK now, you hear me", "shouting"),
        ("where is my order!!!", "repeated-punctuation"),
        ("hello???", "repeated-punctuation"),
        ("I demand a refund for this", "refund-demand"),
        ("I want my money back", "refund-demand"),
        ("this is fucking useless", "profanity"),
        ("what a load of bullshit", "profanity"),
        ("let me speak to a manager", "manager-request"),
        ("I'm calling my lawyer", "legal-threat"),
        ("I will file a chargeback with my card", "chargeback"),
        ("I want to file a complaint", "complaint"),
        ("please cancel my subscription", "cancellation"),
        ("I've been on hold for 2 hours", "service-failure"),
        ("the delivery was late again", "service-failure"),
        ("😡", "negative-emoji"),
        ("我要退款", "refund-demand"),
        ("我要投诉你们", "complaint"),
        ("转人工", "manager-request"),
        ("你他妈的", "profanity"),
        ("为什么还没到！！", "repeated-punctuation"),
    ],
)
def test_signals(text: str, signal: str) -> None:
    assert signal in detect_signals(text)


@pytest.mark.parametrize(
    "text",
    [
        "I need my VPN password ASAP",
        "How do I get to the FAQ page?",
        "Can you help me?",
        "请问怎么退货",
    ],
)
def test_calm_messages_raise_no_signal(text: str) -> None:
    assert detect_signals(text) == ()


def test_signals_push_the_score_down(lexicon: LexiconSentiment) -> None:
    calm = lexicon.score("where is my order")
    upset = lexicon.score("WHERE IS MY ORDER!!! I WANT A REFUND")
    assert upset.score < calm.score - 0.25
    assert upset.label == "negative"
    assert {"shouting", "repeated-punctuation", "refund-demand"} <= set(upset.signals)


def test_profanity_and_manager_request_are_strongly_negative(lexicon: LexiconSentiment) -> None:
    s = lexicon.score("I want to speak to a manager now, this is bullshit")
    assert s.score <= -0.6
    assert s.signals[0] == "negative-wording"
    assert {"profanity", "manager-request"} <= set(s.signals)


def test_handles_and_links_are_ignored(lexicon: LexiconSentiment) -> None:
    # VADER alone scores the airline handle "@united" as positive.
    assert lexicon.score("@united").score == 0.0
    assert lexicon.score("see https://example.com/great-deals") == Sentiment("neutral", 0.0)


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("好吃", 1),
        ("不好吃", -1),
        ("不太好吃", -1),
        ("送得不慢", 1),
        ("太慢了", -1),
        ("房间有点小，但是服务非常好", 1),
        ("服务很好，但是太贵了，再也不来了", -1),
        ("不好意思，请问几点关门", 0),
        ("差不多就这样", 0),
    ],
)
def test_chinese_word_list(text: str, sign: int) -> None:
    score = chinese_score(text)
    assert (score > 0) - (score < 0) == sign


def test_chinese_and_mixed_text(lexicon: LexiconSentiment) -> None:
    assert lexicon.score("你们太垃圾了，骗子！").label == "negative"
    assert lexicon.score("谢谢，非常满意").label == "positive"
    assert lexicon.score("我的 order 太慢了, terrible").label == "negative"


def test_thresholds_come_from_the_config() -> None:
    text = "I am a little disappointed"
    default = LexiconSentiment(SentimentConfig()).score(text)
    lenient = LexiconSentiment(SentimentConfig(negative_below=-0.6)).score(text)
    assert default.score == lenient.score < 0
    assert (default.label, lenient.label) == ("negative", "neutral")
