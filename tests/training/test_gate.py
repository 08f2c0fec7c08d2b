"""The promotion gate lets a model through when it is at least as good, never when worse."""

from __future__ import annotations

from training.gate import judge


def test_better_or_equal_is_promoted() -> None:
    assert judge("sentiment", {"macro_f1": 0.80}, {"macro_f1": 0.80}).promote
    assert judge("lora", {"validation_loss": 1.9}, {"validation_loss": 2.0}).promote
    assert judge("embedder", {"recall_at_1": 0.9}, None).promote


def test_worse_is_kept_out_with_a_reason() -> None:
    verdict = judge("sentiment", {"macro_f1": 0.70}, {"macro_f1": 0.80}, margin=0.05)
    assert not verdict.promote
    assert "kept the current sentiment model" in verdict.reason
    assert not judge("lora", {"validation_loss": 2.2}, {"validation_loss": 2.0}).promote


def test_the_margin_tolerates_small_losses() -> None:
    assert judge("sentiment", {"macro_f1": 0.78}, {"macro_f1": 0.80}, margin=0.05).promote
    assert judge("lora", {"validation_loss": 2.04}, {"validation_loss": 2.0}, margin=0.05).promote


def test_a_missing_metric_is_not_promoted() -> None:
    assert not judge("embedder", {"recall_at_1": None}, {"recall_at_1": 0.5}).promote
