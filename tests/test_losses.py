"""rmlearn.losses: formulas, stability, gradients, rankings."""

import math

import pytest
import torch
from torch.testing import assert_close

from rmlearn import (
    all_pairs_loss,
    centering_penalty,
    pairwise_loss,
    plackett_luce_loss,
    ranking_to_pairs,
    segment_regression_loss,
)


def test_pairwise_loss_is_minus_log_sigmoid_of_gap_minus_margin():
    r_c, r_r = torch.tensor([2.1, 3.4, 1.8]), torch.tensor([0.5, 1.2, 0.9])
    for m in (0.0, 0.5):
        by_hand = sum(-math.log(1 / (1 + math.exp(-(c - r - m)))) for c, r in zip(r_c.tolist(), r_r.tolist())) / 3
        assert pairwise_loss(r_c, r_r, margin=m).item() == pytest.approx(by_hand, rel=1e-6)
    assert pairwise_loss(r_c, r_r, reduction="none").shape == (3,)
    assert pairwise_loss(r_c, r_r, reduction="sum").item() == pytest.approx(3 * pairwise_loss(r_c, r_r).item())


def test_pairwise_loss_decreases_as_the_gap_grows():
    gaps = torch.tensor([-2.0, 0.0, 1.0, 3.0])
    losses = pairwise_loss(gaps, torch.zeros(4), reduction="none")
    assert (losses[1:] < losses[:-1]).all()
    assert losses[1].item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("gap", [1e4, -1e4])
def test_pairwise_loss_is_finite_for_huge_gaps(gap):
    r_c = torch.tensor([gap], requires_grad=True)
    loss = pairwise_loss(r_c, torch.tensor([0.0]))
    loss.backward()
    assert math.isfinite(loss.item()) and math.isfinite(r_c.grad.item())
    assert loss.item() == pytest.approx(max(0.0, -gap), abs=1e-3)


def test_pairwise_gradient_raises_chosen_and_lowers_rejected():
    r_c, r_r = torch.tensor([0.3], requires_grad=True), torch.tensor([0.9], requires_grad=True)
    pairwise_loss(r_c, r_r).backward()
    assert r_c.grad.item() < 0 < r_r.grad.item()  # gradient descent pushes r_c up, r_r down
    assert r_c.grad.item() == pytest.approx(-(1 - torch.sigmoid(torch.tensor(-0.6)).item()))


def test_only_differences_matter():
    r_c, r_r = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.0])
    assert_close(pairwise_loss(r_c + 100.0, r_r + 100.0), pairwise_loss(r_c, r_r))
    assert centering_penalty(r_c + 100.0, r_r + 100.0) > centering_penalty(r_c, r_r)
    assert centering_penalty(r_c, r_r).item() == pytest.approx(((1.5) ** 2 + (-2.0) ** 2) / 2)


def test_ranking_to_pairs_gives_k_choose_2_pairs():
    assert ranking_to_pairs(["A", "B", "C", "D"]) == [
        ("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")]
    for k in range(2, 8):
        assert len(ranking_to_pairs(list(range(k)))) == k * (k - 1) // 2
    with pytest.raises(ValueError, match="at least 2"):
        ranking_to_pairs(["only"])


def test_all_pairs_loss_on_k4_is_the_mean_over_exactly_six_pairs():
    scores = torch.tensor([[2.0, 0.5, 1.0, -1.0]])
    pairs = ranking_to_pairs(range(4))
    assert len(pairs) == 6
    by_hand = sum(pairwise_loss(scores[:, i], scores[:, j]).item() for i, j in pairs) / 6
    assert all_pairs_loss(scores).item() == pytest.approx(by_hand, rel=1e-6)


def test_plackett_luce_matches_a_hand_computed_value():
    s = [2.0, 1.0, 0.0]
    e = [math.exp(x) for x in s]
    nll = -(math.log(e[0] / (e[0] + e[1] + e[2])) + math.log(e[1] / (e[1] + e[2])))
    assert plackett_luce_loss(torch.tensor([s])).item() == pytest.approx(nll, rel=1e-6)
    # log(1 + e⁻¹ + e⁻²) + log(1 + e⁻¹), worked out by hand to 6 places
    assert plackett_luce_loss(torch.tensor([s])).item() == pytest.approx(0.407606 + 0.313262, abs=1e-6)
    assert plackett_luce_loss(torch.tensor([s[::-1]])).item() > 3.0  # the ranking backwards costs far more


def test_plackett_luce_with_two_items_is_the_pairwise_loss():
    s = torch.tensor([[0.3, 1.2], [4.0, -1.0]])
    assert_close(plackett_luce_loss(s), pairwise_loss(s[:, 0], s[:, 1]))


def test_plackett_luce_is_stable_for_huge_scores():
    assert math.isfinite(plackett_luce_loss(torch.tensor([[1e4, -1e4, 0.0]])).item())


def test_segment_regression_loss_is_squared_error():
    pred, target = torch.tensor([0.8, 0.5, -0.7]), torch.tensor([0.9, 0.1, -0.6])
    per_segment = segment_regression_loss(pred, target, reduction="none")
    assert_close(per_segment, torch.tensor([0.01, 0.16, 0.01]))
    assert int(per_segment.argmax()) + 1 == 2  # the second segment dominates
    # the right order is not enough: a constant offset keeps the order and still costs loss
    assert segment_regression_loss(target + 1.0, target).item() == pytest.approx(1.0)


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        pairwise_loss(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="K >= 2"):
        all_pairs_loss(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        pairwise_loss(torch.zeros(2), torch.zeros(2), reduction="avg")
