"""The promotion gate: old and new models scored on the same held-out items; the new one goes
live only when a paired bootstrap shows it better, never on a tie."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The fewest paired items any gate judges on, whatever the caller asks. On fewer, an exact
# two-sided sign test cannot reach 5% even when every item is better (2 / 2**5 = 0.0625), and
# the bootstrap is worse than that: with one item every resample is the same, so its interval
# has no width and any gain, however small, would pass.
MIN_ITEMS = 6


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to promote, and why, in one sentence for the report."""

    promote: bool
    reason: str


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
    min_items: int = MIN_ITEMS,
) -> Verdict:
    """Promote when `better` (higher is better) rose at its confidence and none of `worse`
    (lower is better, e.g. wrong answers) rose at theirs.

    An interval that holds zero is a tie: "not enough evidence", and `keeping` stays. So is a
    difference on fewer than `min_items` items (never fewer than `MIN_ITEMS`), whatever its
    interval says.
    `tolerance` (0 by default) is a loss the operator accepts on purpose: the new model may be
    worse by up to that much at the confidence and still be promoted.
    """
    need = max(min_items, MIN_ITEMS)
    for diff in (better, *worse):
        if diff.items < need:
            return Verdict(
                False,
                f"not enough evidence: {diff.render()} is on fewer than {need} items; "
                f"kept {keeping}",
            )
    for diff in worse:
        if diff.low > tolerance:
            return Verdict(False, f"worse: {diff.render()}; kept {keeping}")
    if better.high < -tolerance:
        return Verdict(False, f"worse: {better.render()}; kept {keeping}")
    if better.low <= -tolerance:
        return Verdict(False, f"not enough evidence: {better.render()} holds zero; kept {keeping}")
    notes = "; ".join(d.render() for d in worse)
    return Verdict(True, f"better: {better.render()}" + (f"; {notes}" if notes else ""))


def judge_adapters(
    old_losses: Sequence[float],
    new_losses: Sequence[float],
    *,
    tolerance: float = 0.0,
    min_items: int = MIN_ITEMS,
) -> Verdict:
    """The adapter gate on the same held-out dialogues: per dialogue, the loss per token of the
    reference answer under the current model and under the new adapter.

    Compared as the answer's log-likelihood per token (the negated loss, higher is better), so
    the new adapter is promoted only when it rose at 95% confidence; a tie is "not enough
    evidence", and so is a difference on fewer than `min_items` dialogues. Without held-out
    dialogues nothing is promoted.
    """
    if not old_losses and not new_losses:
        return Verdict(
            False, "no held-out dialogues to compare the adapters on; kept the current one"
        )
    likelihood = paired_bootstrap(
        "answer_log_likelihood", [-x for x in old_losses], [-x for x in new_losses]
    )
    return judge_paired(
        likelihood, tolerance=tolerance, keeping="the current lora model", min_items=min_items
    )
