"""rmlearn.widgets.ties: the ties explorer's numbers are rmlearn's Rao–Kupper and Davidson probabilities (lesson 10)."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import assert_redraws
from torch.testing import assert_close

from rmlearn import davidson_probs, rao_kupper_probs
from rmlearn.widgets.ties import ties_explorer, ties_view


def _shown(box, name: str) -> float:
    return float(re.search(rf"class='rm-{name}'>([-0-9.]+)<", box.summary.value).group(1))


@pytest.mark.parametrize("gap, nu, kappa", [(0.0, 1.0, 1.0), (2.5, 0.5, 2.0), (-4.0, 3.0, 0.2), (1.0, 0.0, 0.0)])
def test_view_matches_the_library_and_sums_to_one(gap, nu, kappa):
    view = ties_view(gap, nu, kappa)
    delta = torch.tensor([gap], dtype=torch.float64)
    assert_close(torch.tensor(view.rao_kupper, dtype=torch.float64), rao_kupper_probs(delta, nu)[0])
    assert_close(torch.tensor(view.davidson, dtype=torch.float64), davidson_probs(delta, kappa)[0])
    assert sum(view.rao_kupper) == pytest.approx(1.0) and sum(view.davidson) == pytest.approx(1.0)


def test_no_threshold_means_no_ties():
    view = ties_view(0.7, nu=0.0, kappa=0.0)
    assert view.rao_kupper[1] == pytest.approx(0.0, abs=1e-12) and view.davidson[1] == pytest.approx(0.0, abs=1e-12)


def test_explorer_shows_the_library_probabilities_after_a_slider_moves():
    box = ties_explorer()
    c = box.controls
    assert_redraws(box, gap=2.0, nu=0.5)
    rk = rao_kupper_probs(torch.tensor([2.0], dtype=torch.float64), 0.5)[0].tolist()
    assert [_shown(box, f"rk-{k}") for k in ("win", "tie", "loss")] == pytest.approx(rk, abs=5e-5)
    c["kappa"].value = 3.0
    dv = davidson_probs(torch.tensor([2.0], dtype=torch.float64), 3.0)[0].tolist()
    assert [_shown(box, f"dv-{k}") for k in ("win", "tie", "loss")] == pytest.approx(dv, abs=5e-5)
