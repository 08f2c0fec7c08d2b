"""What a sentiment model returns, the Protocol every backend follows, and their registry."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from engine.generators.base import Generator
    from retrieval.config import RetrievalConfig

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class Sentiment:
    """How a message feels: a label, a score in [-1, 1] (negative means upset) and why."""

    label: Label
    score: float
    # Short names of the cues that moved the score, e.g. "profanity", "refund-demand".
    signals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"sentiment label {self.label!r} is not one of {LABELS}")
        if not -1.0 <= self.score <= 1.0:
            raise ValueError(f"sentiment score {self.score} is outside [-1, 1]")


class SentimentModel(Protocol):
    """Scores customer messages; the engine calls it once per user turn."""

    @property
    def name(self) -> str:
        """Identifies the model and its version in the conversation log."""
        ...

    def score(self, text: str) -> Sentiment: ...

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]: ...


@dataclass(frozen=True, slots=True)
class SentimentConfig:
    """Which sentiment model runs, and where the label and escalation thresholds sit."""

    # lexicon, classifier, or llm (the engine's generator picks a label; it must have `choose`).
    model: str = "lexicon"
    # A folder written by ClassifierSentiment.save (scripts/evaluate.py sentiment --save).
    classifier_path: Path = Path("var/sentiment")
    # A lexicon score at or below this is "negative", at or above positive_above "positive".
    negative_below: float = -0.2
    positive_above: float = 0.2
    # SentimentTrend: how many recent scores it keeps and how fast older ones fade.
    trend_window: int = 5
    trend_decay: float = 0.6
    # Escalate when the weighted trend drops below this and the customer is upset with the
    # service (an ANGER_SIGNALS cue now, or the message before was negative too), or after two
    # messages at or below strong_negative in a row. Sad or worried words in a calm question
    # ("in case of my death...") keep their negative label but hand nothing over.
    escalate_below: float = -0.5
    strong_negative: float = -0.6

    def label_for(self, score: float) -> Label:
        """The label a score in [-1, 1] gets under these thresholds."""
        if score <= self.negative_below:
            return "negative"
        if score >= self.positive_above:
            return "positive"
        return "neutral"


def _lexicon(
    config: SentimentConfig, generator: Generator | None, retrieval: RetrievalConfig | None
) -> SentimentModel:
    from engine.sentiment.lexicon import LexiconSentiment

    return LexiconSentiment(config)


def _classifier(
    config: SentimentConfig, generator: Generator | None, retrieval: RetrievalConfig | None
) -> SentimentModel:
    from engine.sentiment.classifier import ClassifierSentiment

    return ClassifierSentiment.load(config.classifier_path, retrieval=retrieval)


def _llm(
    config: SentimentConfig, generator: Generator | None, retrieval: RetrievalConfig | None
) -> SentimentModel:
    from engine.sentiment.llm import LlmSentiment

    if generator is None:
        raise ValueError(
            "the llm sentiment asks the engine's generator; pass it: load_sentiment(config, gen)"
        )
    return LlmSentiment(generator)


# Sentiment backends by the name a config may use. The factories import their module on first
# use, so a deployment that never trains a classifier never loads its embedder. The generator
# is the engine's answering model, which only the llm backend uses; the retrieval settings say
# how the classifier's embedder runs (backend, threads), as the knowledge base's does.
SENTIMENT_MODELS: dict[
    str,
    Callable[[SentimentConfig, Generator | None, RetrievalConfig | None], SentimentModel],
] = {
    "lexicon": _lexicon,
    "classifier": _classifier,
    "llm": _llm,
}


def load_sentiment(
    config: SentimentConfig,
    generator: Generator | None = None,
    retrieval: RetrievalConfig | None = None,
) -> SentimentModel:
    """The sentiment model that `config.model` names; `generator` serves the llm backend, and
    `retrieval` runs the classifier's embedder (default: torch, the library's threads)."""
    factory = SENTIMENT_MODELS.get(config.model)
    if factory is None:
        known = ", ".join(sorted(SENTIMENT_MODELS))
        raise ValueError(f"unknown sentiment model {config.model!r}; use one of: {known}")
    return factory(config, generator, retrieval)


# Cues of a customer upset with the service itself (anger, swearing, threats, a formal
# complaint, shouting, a strongly negative account of a failure: "frustration"), as opposed to
# negative words about the topic of a calm question.
ANGER_SIGNALS = frozenset(
    {
        "anger",
        "profanity",
        "legal-threat",
        "chargeback",
        "complaint",
        "manager-request",
        "shouting",
        "frustration",
    }
)


class SentimentTrend:
    """The mood of one conversation: an exponentially weighted mean of its last scores.

    The engine's policy updates it with every user message and hands the chat to a human
    once `escalate` turns true: when the customer is upset with the service (anger cues, or
    complaints that repeat), not when one calm question is about something sad.
    """

    def __init__(
        self,
        *,
        window: int = 5,
        decay: float = 0.6,
        escalate_below: float = -0.5,
        strong_negative: float = -0.6,
        negative_below: float = -0.2,
    ) -> None:
        if window < 2:
            raise ValueError(f"trend window must keep at least 2 scores, got {window}")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"trend decay must be in (0, 1], got {decay}")
        self._scores: deque[float] = deque(maxlen=window)
        self._decay = decay
        self._escalate_below = escalate_below
        self._strong_negative = strong_negative
        self._negative_below = negative_below
        self._angry = False

    @classmethod
    def from_config(cls, config: SentimentConfig) -> SentimentTrend:
        """A fresh trend with the window and thresholds of `config`."""
        return cls(
            window=config.trend_window,
            decay=config.trend_decay,
            escalate_below=config.escalate_below,
            strong_negative=config.strong_negative,
            negative_below=config.negative_below,
        )

    def update(self, sentiment: Sentiment | float) -> float:
        """Add the newest message's sentiment and return the weighted score.

        A bare score (an older message read back from the log) carries no cues.
        """
        if isinstance(sentiment, Sentiment):
            value = sentiment.score
            self._angry = not ANGER_SIGNALS.isdisjoint(sentiment.signals)
        else:
            value = float(sentiment)
            self._angry = False
        self._scores.append(value)
        return self.weighted

    @property
    def weighted(self) -> float:
        """Recent scores averaged with weights decay**age (the newest has weight 1); 0 if none."""
        if not self._scores:
            return 0.0
        weights = [self._decay**age for age in range(len(self._scores))]
        newest_first = reversed(self._scores)
        return sum(w * s for w, s in zip(weights, newest_first, strict=True)) / sum(weights)

    @property
    def escalate(self) -> bool:
        """True when the customer is upset enough with the service to bring in a human.

        Two strongly negative messages in a row, or a trend below `escalate_below` while the
        newest message is angry or follows another negative one.
        """
        scores = self._scores
        if len(scores) >= 2 and max(scores[-1], scores[-2]) <= self._strong_negative:
            return True
        if not scores or self.weighted >= self._escalate_below:
            return False
        return self._angry or (len(scores) >= 2 and scores[-2] <= self._negative_below)
