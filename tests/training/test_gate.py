"""The promotion gate lets a model through when it measures better on the same items, never on a
tie or when worse."""

from __future__ import annotations

import pytest

from engine.settings import TrainingConfig
from training.gate import MIN_ITEMS, judge_adapters, judge_paired, paired_bootstrap


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


# Per held-out dialogue: the loss per token of the reference answer (lower is better).
LIVE = [2.1, 1.7, 2.6, 1.9, 2.3, 2.0, 1.8, 2.4, 2.2, 1.6, 2.5, 2.0]


def test_an_adapter_that_fits_every_answer_better_is_promoted() -> None:
    verdict = judge_adapters(LIVE, [x - 0.3 + 0.05 * (i % 3) for i, x in enumerate(LIVE)])
    assert verdict.promote and verdict.reason.startswith("better: answer_log_likelihood")
    assert "95% CI [+0.2" in verdict.reason and "n=12" in verdict.reason


def test_an_adapter_that_fits_as_well_is_not_enough_evidence() -> None:
    # Half the answers fit better, half worse, by the same amounts: a tie.
    tie = [x - 0.4 if i % 2 else x + 0.4 for i, x in enumerate(LIVE)]
    verdict = judge_adapters(LIVE, tie)
    assert not verdict.promote
    assert verdict.reason.startswith("not enough evidence: answer_log_likelihood")
    assert verdict.reason.endswith("kept the current lora model")
    # A lower mean loss carried by one dialogue of twelve is no evidence either.
    one = [x - 2.0 if i == 0 else x + 0.01 for i, x in enumerate(LIVE)]
    assert sum(one) < sum(LIVE) and not judge_adapters(LIVE, one).promote


def test_a_worse_adapter_is_refused_unless_the_loss_is_tolerated() -> None:
    worse = [x + 0.2 for x in LIVE]
    verdict = judge_adapters(LIVE, worse)
    assert not verdict.promote and verdict.reason.startswith("worse: answer_log_likelihood")
    assert judge_adapters(LIVE, worse, tolerance=0.25).promote


def test_an_adapter_without_held_out_dialogues_is_kept_out() -> None:
    verdict = judge_adapters([], [])
    assert not verdict.promote and "no held-out dialogues" in verdict.reason
    with pytest.raises(ValueError, match="same items"):
        judge_adapters(LIVE, LIVE[:-1])


def test_one_or_two_held_out_wins_are_not_enough_evidence() -> None:
    # One item: every resample is the same, so the interval has no width and would pass.
    one = paired_bootstrap("answer_log_likelihood", [-2.0], [-1.9])
    assert one.low == one.high > 0
    for verdict in (judge_paired(one), judge_adapters([2.0], [1.9])):
        assert not verdict.promote and verdict.reason.startswith("not enough evidence")
        assert "n=1" in verdict.reason and "fewer than 6 items" in verdict.reason
    verdict = judge_adapters([2.0, 2.1], [1.9, 2.0])
    assert not verdict.promote and "n=2" in verdict.reason
    # The floor holds whatever the caller asks for, and for the `worse` side too.
    assert not judge_adapters(LIVE[:5], [x - 0.3 for x in LIVE[:5]], min_items=1).promote
    better = paired_bootstrap("resolution", [0.0] * 100, [1.0] * 100)
    wrong = paired_bootstrap("wrong", [0.0, 0.0], [0.0, 0.0])
    assert not judge_paired(better, [wrong]).promote


def test_a_win_on_exactly_the_minimum_of_held_out_items_is_promoted() -> None:
    fitter = [x - 0.3 + 0.05 * (i % 3) for i, x in enumerate(LIVE)]
    assert judge_adapters(LIVE[:10], fitter[:10], min_items=10).promote
    verdict = judge_adapters(LIVE[:9], fitter[:9], min_items=10)
    assert not verdict.promote and "fewer than 10 items" in verdict.reason
    assert judge_adapters(LIVE[:6], fitter[:6]).promote  # the floor itself


def test_the_minimum_of_held_out_items_cannot_go_below_the_floor() -> None:
    assert TrainingConfig().min_held_out == 10
    assert TrainingConfig(min_held_out=MIN_ITEMS).min_held_out == MIN_ITEMS
    with pytest.raises(ValueError, match="min_held_out must be 6 or more"):
        TrainingConfig(min_held_out=MIN_ITEMS - 1)
