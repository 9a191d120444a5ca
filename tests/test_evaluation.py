"""rmlearn.evaluation: metrics against hand-computed values (lesson 09)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from rmlearn.evaluation import (
    accuracy_by_length,
    best_of_4_sets,
    best_of_k_accuracy,
    conservative_reward,
    disagreement,
    expected_calibration_error,
    fit_temperature,
    pairwise_accuracy,
    preference_nll,
    reliability,
)


def test_pairwise_accuracy_counts_a_tie_as_half():
    assert pairwise_accuracy(torch.tensor([1.0, 2.0, 0.0, 5.0]), torch.tensor([0.0, 2.0, 1.0, 4.0])) == 0.625


def test_best_of_4_ties_for_the_top_share_the_credit():
    scores = torch.tensor([[5.0, 1.0, 2.0, 3.0],   # chosen alone on top: 1
                           [2.0, 2.0, 2.0, 0.0],   # three tied on top: 1/3
                           [1.0, 3.0, 0.0, 0.0],   # beaten: 0
                           [4.0, 4.0, 4.0, 4.0]])  # all tied: 1/4 (chance)
    assert math.isclose(best_of_k_accuracy(scores), (1 + 1 / 3 + 0 + 1 / 4) / 4)


def test_accuracy_by_length_splits_on_the_chosen_answers_length():
    out = accuracy_by_length(torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]),
                             torch.tensor([True, False, False]))
    assert out == {"chosen longer": 1.0, "chosen shorter": 0.5}


def test_ece_by_hand():
    # σ(Δ) for Δ = 0.5, 2.2, −2.2: 0.622 (bin 0.6–0.7, right), 0.900 twice (bin 0.9–1.0: one right, one wrong)
    gap = torch.tensor([0.5, 2.2, -2.2])
    r = reliability(gap, n_bins=5)
    conf = [1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(-2.2))]
    assert r.count == [0, 1, 0, 0, 2]
    assert math.isclose(r.ece, (abs(1 - conf[0]) + 2 * abs(0.5 - conf[1])) / 3, rel_tol=1e-6)  # Δ is float32
    assert expected_calibration_error(gap) == r.ece


def test_a_larger_temperature_lowers_the_confidence():
    gap = torch.tensor([3.0, 3.0, 3.0, -3.0])  # confident, right 3 times in 4
    assert expected_calibration_error(gap, temperature=3 / math.log(3)) < 1e-9  # σ(Δ/T) = 3/4 exactly
    assert expected_calibration_error(gap, temperature=1.0) > 0.15


def test_fitted_temperature_minimises_the_held_out_loss():
    gap = torch.randn(200, generator=torch.Generator().manual_seed(0)) * 3 + 1
    t = fit_temperature(gap)
    for other in (0.8 * t, 1.25 * t):
        assert preference_nll(gap, t) < preference_nll(gap, other)


def test_conservative_aggregates_by_hand():
    scores = torch.tensor([[1.0, 2.0, 0.0], [3.0, 2.0, -2.0]])  # (M=2, N=3)
    assert_close(conservative_reward(scores, how="mean"), torch.tensor([2.0, 2.0, -1.0]))
    assert_close(conservative_reward(scores, how="min"), torch.tensor([1.0, 2.0, -2.0]))
    std = math.sqrt(2)
    assert_close(disagreement(scores), torch.tensor([std, 0.0, std]))
    assert_close(conservative_reward(scores, k=0.5), torch.tensor([2 - std / 2, 2.0, -1 - std / 2]))
    with pytest.raises(ValueError, match="mean_std"):
        conservative_reward(scores, how="max")


def test_best_of_4_sets_are_seeded():
    assert best_of_4_sets(5, seed=1) == best_of_4_sets(5, seed=1) != best_of_4_sets(5, seed=2)
