"""The promotion gate: a new model goes live only when it measures at least as well as the old."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Per kind: the metric the gate compares, and whether higher is better.
GATE_METRICS: dict[str, tuple[str, bool]] = {
    "embedder": ("recall_at_1", True),
    "lora": ("validation_loss", False),
    "sentiment": ("macro_f1", True),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to promote, and why, in one sentence for the report."""

    promote: bool
    reason: str


def judge(
    kind: str,
    new: Mapping[str, float | None],
    current: Mapping[str, float | None] | None,
    *,
    margin: float = 0.0,
) -> Verdict:
    """Promote when the new model's metric is no worse than the current one's by more than `margin`.

    With no current model to compare with, the new one is promoted.
    """
    if kind not in GATE_METRICS:
        raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(GATE_METRICS)}")
    metric, higher_is_better = GATE_METRICS[kind]
    value = new.get(metric)
    if value is None:
        return Verdict(False, f"the new {kind} model has no {metric}; kept the current one")
    old = current.get(metric) if current is not None else None
    if old is None:
        return Verdict(True, f"{metric} {value:.4f}; no current {kind} model to compare with")
    good_enough = value >= old - margin if higher_is_better else value <= old + margin
    direction = "≥" if higher_is_better else "≤"
    bound = old - margin if higher_is_better else old + margin
    if good_enough:
        return Verdict(True, f"{metric} {value:.4f} {direction} {bound:.4f} (current {old:.4f})")
    return Verdict(
        False,
        f"{metric} {value:.4f} is worse than the current {old:.4f} beyond the margin {margin}; "
        f"kept the current {kind} model",
    )


@dataclass(frozen=True, slots=True)
class Difference:
    """Mean of new - old over the same items, with a paired-bootstrap confidence interval."""

    metric: str
    old: float
    new: float
    low: float
    high: float
    items: int
    confidence: float

    @property
    def delta(self) -> float:
        return self.new - self.old

    def render(self) -> str:
        level = round(self.confidence * 100)
        return (
            f"{self.metric} {self.old:.4f} → {self.new:.4f} ({self.delta:+.4f}, {level}% CI "
            f"[{self.low:+.4f}, {self.high:+.4f}], n={self.items})"
        )


def paired_bootstrap(
    metric: str,
    old: Sequence[float],
    new: Sequence[float],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Difference:
    """The difference of the means of `new` and `old`, scored on the same items, with a
    percentile confidence interval from `resamples` paired bootstrap resamples (fixed seed)."""
    if len(old) != len(new):
        raise ValueError(f"old and new must score the same items: {len(old)} vs {len(new)}")
    if not old:
        raise ValueError(f"no items to compare {metric} on; give labelled queries")
    a = np.asarray(old, dtype=np.float64)
    b = np.asarray(new, dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), size=(resamples, len(a)))
    deltas = (b - a)[picks].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return Difference(
        metric, float(a.mean()), float(b.mean()), float(low), float(high), len(a), confidence
    )


def judge_paired(
    better: Difference,
    worse: Sequence[Difference] = (),
    *,
    tolerance: float = 0.0,
    keeping: str = "the current one",
) -> Verdict:
    """Promote when `better` (higher is better) rose at its confidence and none of `worse`
    (lower is better, e.g. wrong answers) rose at theirs.

    An interval that holds zero is a tie: "not enough evidence", and `keeping` stays.
    `tolerance` (0 by default) is a loss the operator accepts on purpose: the new model may be
    worse by up to that much at the confidence and still be promoted.
    """
    for diff in worse:
        if diff.low > tolerance:
            return Verdict(False, f"worse: {diff.render()}; kept {keeping}")
    if better.high < -tolerance:
        return Verdict(False, f"worse: {better.render()}; kept {keeping}")
    if better.low <= -tolerance:
        return Verdict(False, f"not enough evidence: {better.render()} holds zero; kept {keeping}")
    notes = "; ".join(d.render() for d in worse)
    return Verdict(True, f"better: {better.render()}" + (f"; {notes}" if notes else ""))
