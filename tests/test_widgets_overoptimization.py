"""rmlearn.widgets.overoptimization: the explorer shows rlhf's best-of-n and KL-regularised curves
(lesson 08). A small hand-made response pool keeps it fast; the real one is exercised by lesson 08
itself (tests/claims_08.py)."""

from __future__ import annotations

import re

import pytest
import torch

from rmlearn.rlhf import (
    ResponsePool,
    best_of_n_curve,
    best_of_n_kl_bound,
    kl_regularised_curve,
    overoptimization_grid,
)
from rmlearn.widgets.overoptimization import overoptimization_explorer, overoptimization_view


@pytest.fixture(scope="module")
def pool():
    gen = torch.Generator().manual_seed(0)
    gold = torch.randn(128, generator=gen, dtype=torch.float64)
    length = torch.randint(3, 30, (128,), generator=gen).double()
    samples = ResponsePool(["a"] * 64 + ["b"] * 64, [f"r{i}" for i in range(128)], gold, length, 64)
    honest = gold + 0.5 * torch.randn(128, generator=gen, dtype=torch.float64)
    proxies = {0.0: honest, 0.8: honest + 0.3 * length}
    return samples, proxies, overoptimization_grid(samples, proxies)


def _shown(box, name: str) -> float:
    return float(re.search(rf"class='rm-{name}'>([-0-9.]+)<", box.summary.value).group(1))


def test_view_reads_the_library_curves(pool):
    samples, proxies, grid = pool
    view = overoptimization_view(grid, 8, 0.1, 0.8)
    assert view.gold_at_n == pytest.approx(best_of_n_curve(samples, proxies[0.8], [8]).gold[0])
    assert view.kl_at_beta == pytest.approx(kl_regularised_curve(samples, proxies[0.8], [0.1]).kl[0])
    assert view.kl_bound_at_n == pytest.approx(best_of_n_kl_bound(8))
    assert view.length_at_n > overoptimization_view(grid, 1, 0.1, 0.8).length_at_n + 5  # the bias shows
    with pytest.raises(ValueError, match="n=3 was not precomputed"):
        overoptimization_view(grid, 3, 0.1, 0.0)
    with pytest.raises(ValueError, match="no proxy for length bias 0.5"):
        overoptimization_view(grid, 8, 0.1, 0.5)


def test_explorer_redraws_from_the_view_when_a_slider_moves(pool):
    _, _, grid = pool
    box = overoptimization_explorer(grid)
    box.controls["n"].value = 32
    box.controls["length_bias"].value = 0.8
    view = overoptimization_view(grid, 32, box.controls["beta"].value, 0.8)
    assert box.view == view
    assert _shown(box, "gold-n") == pytest.approx(view.gold_at_n, abs=1e-3)
    assert _shown(box, "kl-n") == pytest.approx(view.kl_at_n, abs=1e-3)
    assert box.image.value[:4] == b"\x89PNG"


def test_first_view_is_the_unbiased_proxy_at_its_gold_peak_and_n_is_an_integer(pool):
    """Lesson 08's text opens the explorer on the unbiased proxy; 'gold peaks at n' reads 16, not 16.000."""
    _, _, grid = pool
    box = overoptimization_explorer(grid)
    assert box.controls["length_bias"].value == 0.0
    assert box.controls["n"].value == 16
    shown = re.search(r"class='rm-best-n'>([^<]+)<", box.summary.value).group(1)
    assert shown == str(grid[0.0].best_of_n.x[grid[0.0].best_of_n.peak()]) and shown.isdigit(), shown
