"""The trained classifier: fit on a handmade set, save as arrays + JSON, load back the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.sentiment import SentimentConfig, load_sentiment
from engine.sentiment.classifier import ClassifierSentiment, train
from engine.sentiment.evaluation import LabelledText
from retrieval import Embedder, RetrievalConfig
from retrieval.embedders import OnnxEmbedder
from tests.fakes import HashEmbedder

_NEGATIVE = [
    "This is the worst service I have ever had, I am furious.",
    "I want my money back right now, this is a scam.",
    "My order is three weeks late and nobody answers my emails.",
    "Your app keeps crashing and I lost all my data. Terrible.",
    "I have been on hold for two hours, this is ridiculous!!!",
    "The product broke after one day, awful quality.",
    "You charged me twice and refuse to fix it. Unacceptable.",
    "I am so angry, I will never buy from you again.",
    "Stop ignoring me! Where is my refund?",
    "Horrible experience, the agent was rude and useless.",
    "WHY IS MY ACCOUNT STILL LOCKED",
    "This is a disgrace, I'm filing a complaint.",
    "😡😡 still waiting for my package",
    "你们太垃圾了，我要投诉！",
    "等了两个小时还没送到，太慢了",
    "骗子公司，我要退款",
]
_NEUTRAL = [
    "What time does the store open on Saturday?",
    "How do I change my delivery address?",
    "Can I pay with a credit card?",
    "Where can I find my invoice?",
    "Do you ship to Canada?",
    "Is there a student discount?",
    "How long does delivery usually take?",
    "What is your phone number?",
    "I would like to update my email address.",
    "Which sizes does this jacket come in?",
    "Please send me the user manual.",
    "My order number is 48213.",
    "Do you have a store in Berlin?",
    "请问怎么修改收货地址？",
    "你们周末营业吗？",
    "发票在哪里下载",
]
_POSITIVE = [
    "Thank you so much, the support team was wonderful!",
    "Great service, my problem was fixed in minutes.",
    "I love this product, it works perfectly.",
    "Thanks for the quick reply, very helpful!",
    "Excellent experience, I will recommend you to my friends.",
    "The delivery was fast and the food was delicious.",
    "Amazing support, thank you for your patience.",
    "Everything arrived on time, very happy with it.",
    "You guys are the best, thanks a lot!",
    "Perfect, that solved it. Have a nice day!",
    "Really friendly agent, great job 👍",
    "Happy customer here, keep up the good work.",
    "Brilliant, thanks for sorting this out so quickly.",
    "谢谢，服务很好，非常满意",
    "送餐很快，味道不错，好评",
    "客服很耐心，问题解决了，感谢",
]

# A small handmade set (our own sentences), so nothing trained in tests comes from the
# licence-restricted evaluation sets.
TRAINING: list[LabelledText] = [
    *(LabelledText(t, "negative") for t in _NEGATIVE),
    *(LabelledText(t, "neutral") for t in _NEUTRAL),
    *(LabelledText(t, "positive") for t in _POSITIVE),
]
BINARY = [row for row in TRAINING if row.label != "neutral"]
PROBES = ["Thanks, great help!", "This is awful, I want a refund!!!", "Do you open on Sunday?", ""]


def test_round_trip_keeps_predictions_and_writes_no_pickle(
    minilm: Embedder, tmp_path: Path
) -> None:
    model = train(TRAINING, minilm)
    model.save(tmp_path / "sentiment")

    assert sorted(p.name for p in (tmp_path / "sentiment").iterdir()) == [
        "coef.npy",
        "intercept.npy",
        "meta.json",
    ]
    loaded = ClassifierSentiment.load(tmp_path / "sentiment", minilm)
    assert loaded.name == model.name
    assert loaded.score_batch(PROBES) == model.score_batch(PROBES)
    assert np.allclose(loaded.probabilities(PROBES), model.probabilities(PROBES))

    meta = json.loads((tmp_path / "sentiment" / "meta.json").read_text(encoding="utf-8"))
    assert meta["embedder"] == "all-MiniLM-L6-v2"
    assert meta["labels"] == ["negative", "neutral", "positive"]
    assert meta["label_counts"] == {"negative": 16, "neutral": 16, "positive": 16}
    assert len(meta["data_sha256"]) == 64
    assert set(meta["cv_metrics"]) >= {"accuracy", "macro_f1", "negative_f1"}


def test_loading_with_another_embedder_is_refused(
    hash_embedder: HashEmbedder, tmp_path: Path
) -> None:
    train(TRAINING, hash_embedder).save(tmp_path)
    with pytest.raises(ValueError, match="trained on embedder 'hash-64'"):
        ClassifierSentiment.load(tmp_path, HashEmbedder(name="other"))


def test_registry_builds_a_classifier_from_config(minilm: Embedder, tmp_path: Path) -> None:
    train(BINARY, minilm, cv_folds=0).save(tmp_path)
    model = load_sentiment(SentimentConfig(model="classifier", classifier_path=tmp_path))
    assert model.name.startswith("classifier-all-MiniLM-L6-v2-")
    assert model.score("I want my money back, this is a scam").label == "negative"


def test_the_classifier_embedder_runs_as_the_retrieval_settings_say(
    minilm: Embedder, tmp_path: Path
) -> None:
    train(BINARY, minilm, cv_folds=0).save(tmp_path / "classifier")
    config = SentimentConfig(model="classifier", classifier_path=tmp_path / "classifier")
    retrieval = RetrievalConfig(backend="onnx", onnx_dir=tmp_path / "onnx", threads=1)
    model = load_sentiment(config, retrieval=retrieval)
    assert isinstance(model, ClassifierSentiment)
    embedder = model._embedder
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder._encoder._session.get_session_options().intra_op_num_threads == 1
    assert model.score("I want my money back, this is a scam").label == "negative"


def test_binary_training_data_gives_a_two_label_model(hash_embedder: HashEmbedder) -> None:
    model = train(BINARY, hash_embedder)
    assert model.labels == ("negative", "positive")
    probabilities = model.probabilities(["great service", "terrible service"])
    assert probabilities.shape == (2, 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    scores = model.score_batch([row.text for row in BINARY])
    assert {s.label for s in scores} <= {"negative", "positive"}
    correct = sum(s.label == row.label for s, row in zip(scores, BINARY, strict=True))
    assert correct >= 0.9 * len(BINARY)


def test_data_hash_changes_with_the_data(hash_embedder: HashEmbedder) -> None:
    first = train(TRAINING, hash_embedder, cv_folds=0)
    second = train(TRAINING[1:], hash_embedder, cv_folds=0)
    assert first.metadata["data_sha256"] != second.metadata["data_sha256"]
    assert first.metadata["cv_metrics"] == {}


def test_training_needs_two_labels(hash_embedder: HashEmbedder) -> None:
    with pytest.raises(ValueError, match="at least two labels"):
        train([row for row in TRAINING if row.label == "negative"], hash_embedder)


def test_missing_classifier_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"evaluate\.py sentiment --model classifier"):
        load_sentiment(SentimentConfig(model="classifier", classifier_path=tmp_path / "none"))


def test_weights_of_the_wrong_shape_are_refused(hash_embedder: HashEmbedder) -> None:
    with pytest.raises(ValueError, match="retrain"):
        ClassifierSentiment(hash_embedder, np.zeros((3, 5)), np.zeros(3), ["negative", "neutral"])
