"""Sentiment of customer messages: backends behind one Protocol, and the per-chat trend."""

from engine.sentiment.base import (
    ANGER_SIGNALS,
    LABELS,
    SENTIMENT_MODELS,
    Label,
    Sentiment,
    SentimentConfig,
    SentimentModel,
    SentimentTrend,
    load_sentiment,
)
from engine.sentiment.classifier import ClassifierSentiment, train
from engine.sentiment.evaluation import (
    LabelledText,
    evaluate_sentiment,
    read_labelled,
    split_half,
)
from engine.sentiment.lexicon import SIGNAL_WEIGHTS, LexiconSentiment, detect_signals

__all__ = [
    "ANGER_SIGNALS",
    "LABELS",
    "SENTIMENT_MODELS",
    "SIGNAL_WEIGHTS",
    "ClassifierSentiment",
    "Label",
    "LabelledText",
    "LexiconSentiment",
    "Sentiment",
    "SentimentConfig",
    "SentimentModel",
    "SentimentTrend",
    "detect_signals",
    "evaluate_sentiment",
    "load_sentiment",
    "read_labelled",
    "split_half",
    "train",
]
