"""The promotion gate: a new model goes live only when it measures at least as well as the old."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
