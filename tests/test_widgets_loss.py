"""rmlearn.widgets.loss: the loss explorer's numbers are rmlearn.pairwise_loss and its gradients (lesson 03)."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import assert_redraws
from torch.testing import assert_close

from rmlearn import centering_penalty, pairwise_loss
from rmlearn.widgets.loss import loss_explorer, loss_view


def _shown(box, name: str) -> float:
    return float(re.search(rf"class='rm-{name}'>([-0-9.]+)<", box.summary.value).group(1))


@pytest.mark.parametrize("r_c, r_r, margin", [(2.1, 0.5, 0.0), (0.5, 2.1, 0.0), (1.0, 0.2, 1.5), (-3.0, -3.0, 0.0)])
def test_view_matches_pairwise_loss_and_its_gradient(r_c, r_r, margin):
    view = loss_view(r_c, r_r, margin)
    c, r = torch.tensor([r_c], dtype=torch.float64), torch.tensor([r_r], dtype=torch.float64)
    assert_close(view.loss, pairwise_loss(c, r, margin).item())
    # d/dΔ of −log σ(Δ − m) is −σ(m − Δ); r_chosen gets it, r_rejected its negative
    slope = -torch.sigmoid(torch.tensor(margin - (r_c - r_r), dtype=torch.float64)).item()
    assert_close(view.grad_chosen, slope)
    assert_close(view.grad_rejected, -slope)
    assert_close(view.centering, centering_penalty(c, r).item())


def test_shifting_both_scores_changes_centering_but_not_the_loss():
    base, shifted = loss_view(2.1, 0.5, 0.3), loss_view(2.1, 0.5, 0.3, shift=4.0)
    assert (shifted.r_chosen, shifted.r_rejected) == pytest.approx((6.1, 4.5))
    assert_close(shifted.loss, base.loss)
    assert_close((shifted.grad_chosen, shifted.grad_rejected), (base.grad_chosen, base.grad_rejected))
    assert shifted.centering == pytest.approx(10.6**2) and base.centering == pytest.approx(2.6**2)


def test_explorer_shows_the_library_loss_after_a_slider_moves():
    box = loss_explorer()
    c = box.controls
    assert_redraws(box, r_chosen=0.5, r_rejected=2.0)  # the marked gap moved
    expected = pairwise_loss(torch.tensor([0.5]), torch.tensor([2.0])).item()
    assert _shown(box, "loss") == pytest.approx(expected, abs=5e-5)
    assert _shown(box, "gap") == pytest.approx(-1.5)
    c["margin"].value = 1.0
    assert _shown(box, "loss") == pytest.approx(pairwise_loss(torch.tensor([0.5]), torch.tensor([2.0]), 1.0).item(),
                                                abs=5e-5)
    loss_before = _shown(box, "loss")
    c["shift"].value = 3.0
    assert _shown(box, "loss") == loss_before  # only the difference matters
    assert _shown(box, "centering") == pytest.approx((3.5 + 5.0) ** 2, abs=5e-5)
