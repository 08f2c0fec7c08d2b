"""The promotion gate lets a model through when it is at least as good, never when worse."""

from __future__ import annotations

import pytest

from training.gate import judge, judge_paired, paired_bootstrap


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


def test_the_paired_bootstrap_brackets_the_difference_and_repeats() -> None:
    old = [0.0] * 60 + [1.0] * 40
    new = [0.0] * 30 + [1.0] * 70
    diff = paired_bootstrap("resolution", old, new)
    assert diff.delta == pytest.approx(0.30)
    assert 0 < diff.low < 0.30 < diff.high
    assert paired_bootstrap("resolution", old, new) == diff  # fixed seed


def test_a_clear_gain_is_promoted() -> None:
    better = paired_bootstrap("resolution", [0.0] * 50 + [1.0] * 50, [1.0] * 100)
    verdict = judge_paired(better)
    assert verdict.promote and verdict.reason.startswith("better")


def test_a_tie_is_not_enough_evidence() -> None:
    old = [0.0, 1.0] * 50
    new = [1.0, 0.0] * 50  # same mean, every item changed
    verdict = judge_paired(paired_bootstrap("resolution", old, new))
    assert not verdict.promote
    assert verdict.reason.startswith("not enough evidence")
    small = paired_bootstrap("resolution", [0.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert not judge_paired(small).promote  # one item better out of three proves nothing


def test_more_wrong_answers_are_refused_even_with_more_resolved() -> None:
    better = paired_bootstrap("resolution", [0.0] * 100, [1.0] * 100)
    wrong = paired_bootstrap("wrong", [0.0] * 100, [0.0] * 70 + [1.0] * 30)
    verdict = judge_paired(better, [wrong])
    assert not verdict.promote and verdict.reason.startswith("worse: wrong")


def test_unpaired_scores_are_an_error() -> None:
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap("resolution", [1.0], [1.0, 0.0])
