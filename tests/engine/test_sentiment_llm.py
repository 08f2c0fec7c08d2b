"""The llm sentiment on the real transformers backend: valid labels, repeatable, clear errors."""

from __future__ import annotations

import pytest

from engine.generators import ExtractiveGenerator
from engine.generators.transformers import TransformersGenerator
from engine.sentiment import LABELS, Sentiment, SentimentConfig, load_sentiment
from engine.sentiment.llm import LlmSentiment

pytestmark = pytest.mark.slow

TEXTS = [
    "This is the worst service ever. I am furious and want my money back.",
    "What time do you open on Saturday?",
    "Thank you so much, the support was wonderful!",
    "你们的服务太差了，我要投诉！",
]


def test_labels_are_valid_and_repeatable(transformers_generator: TransformersGenerator) -> None:
    model = load_sentiment(SentimentConfig(model="llm"), transformers_generator)
    assert isinstance(model, LlmSentiment)
    first = model.score_batch(TEXTS)
    assert all(isinstance(s, Sentiment) and s.label in LABELS for s in first)
    assert all(
        s.score == {"negative": -1.0, "neutral": 0.0, "positive": 1.0}[s.label] for s in first
    )
    assert model.score_batch(TEXTS) == first
    assert model.score("") == Sentiment("neutral", 0.0)
    assert model.name == "llm:transformers:smollm2-135m-instruct"


def test_a_generator_without_choose_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a generator that can choose"):
        load_sentiment(SentimentConfig(model="llm"), ExtractiveGenerator())


def test_no_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="pass it"):
        load_sentiment(SentimentConfig(model="llm"))
