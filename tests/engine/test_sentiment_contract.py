"""Every sentiment backend keeps the same contract on the messages a support desk sees."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.sentiment import SENTIMENT_MODELS, Sentiment, SentimentConfig, SentimentModel
from engine.sentiment.classifier import train
from engine.sentiment.lexicon import LexiconSentiment
from retrieval import Embedder
from tests.engine.test_sentiment_classifier import TRAINING

Factory = Callable[[Embedder], SentimentModel]

# One factory per backend in SENTIMENT_MODELS; the classifier is trained on a handmade set.
BACKENDS: dict[str, Factory] = {
    "lexicon": lambda _: LexiconSentiment(SentimentConfig()),
    "classifier": lambda embedder: train(TRAINING, embedder),
}


def test_every_registered_backend_is_under_contract() -> None:
    # The llm backend needs a generator and a 135M model misses these quality cases;
    # test_sentiment_llm.py checks it on the real model instead.
    assert set(BACKENDS) | {"llm"} == set(SENTIMENT_MODELS)


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def model(request: pytest.FixtureRequest, minilm: Embedder) -> SentimentModel:
    return BACKENDS[request.param](minilm)


def check(sentiment: Sentiment) -> Sentiment:
    assert isinstance(sentiment, Sentiment)
    assert -1.0 <= sentiment.score <= 1.0
    assert all(isinstance(s, str) and s for s in sentiment.signals)
    return sentiment


def test_clear_negative(model: SentimentModel) -> None:
    s = check(model.score("This is the worst service ever. I am furious and want my money back."))
    assert s.label == "negative" and s.score < -0.3


def test_clear_positive(model: SentimentModel) -> None:
    s = check(model.score("Thank you so much, the support was wonderful and fixed everything!"))
    assert s.label == "positive" and s.score > 0.3


def test_neutral_question(model: SentimentModel) -> None:
    s = check(model.score("What time do you open on Saturday?"))
    assert s.label == "neutral" and abs(s.score) < 0.5


def test_chinese_negative(model: SentimentModel) -> None:
    s = check(model.score("你们的服务太差了，我要投诉！"))
    assert s.label == "negative" and s.score < 0
    assert "complaint" in s.signals


def test_empty_text_is_neutral(model: SentimentModel) -> None:
    assert model.score("") == Sentiment("neutral", 0.0, ())
    assert model.score("   \n") == Sentiment("neutral", 0.0, ())


def test_emoji(model: SentimentModel) -> None:
    angry = check(model.score("😡😡😡"))
    assert angry.score < 0 and "negative-emoji" in angry.signals
    assert check(model.score("thanks 👍")).score > 0


def test_batch_matches_single_scores(model: SentimentModel) -> None:
    texts = ["I hate waiting", "", "Do you ship to Canada?", "谢谢，非常满意"]
    batch = model.score_batch(texts)
    assert batch == [model.score(t) for t in texts]
    assert model.score_batch([]) == []


def test_name_identifies_the_model(model: SentimentModel) -> None:
    assert isinstance(model.name, str) and model.name
