"""rmlearn.widgets.ranking: rankings → K(K−1)/2 pairs, the all-pairs and Plackett–Luce losses (lesson 04)."""

from __future__ import annotations

import re

import pytest
import torch
from torch.testing import assert_close

from rmlearn import all_pairs_loss, pairwise_loss, plackett_luce_loss, ranking_to_pairs
from rmlearn.widgets.ranking import parse_scores, ranking_explorer, ranking_view


def _shown(box, name: str) -> float:
    return float(re.search(rf"class='rm-{name}'>([-0-9.]+)<", box.summary.value).group(1))


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_view_has_all_pairs_in_ranking_order(k):
    scores = [0.7 * i - 1.0 for i in range(k)]  # the model gets the order backwards
    view = ranking_view(scores)
    assert len(view.pairs) == k * (k - 1) // 2
    assert [(p.better, p.worse) for p in view.pairs] == ranking_to_pairs(list("ABCDEF"[:k]))
    assert view.num_agree == 0


def test_view_losses_are_the_library_losses():
    scores = [2.0, -0.5, 1.0, 0.3]
    row = torch.tensor([scores], dtype=torch.float64)
    view = ranking_view(scores, labels=["w", "x", "y", "z"])
    pair_losses = torch.tensor([p.loss for p in view.pairs], dtype=torch.float64)
    better, worse = zip(*ranking_to_pairs(range(4)), strict=True)
    assert_close(pair_losses, pairwise_loss(row[0, list(better)], row[0, list(worse)], reduction="none"))
    assert_close(view.all_pairs_loss, all_pairs_loss(row).item())
    assert_close(view.all_pairs_loss, pair_losses.mean().item())
    assert_close(view.plackett_luce, plackett_luce_loss(row).item())
    assert view.num_agree == 4  # (w,x) (w,y) (w,z) (y,z) right; (x,y) (x,z) wrong


def test_for_two_answers_plackett_luce_equals_the_pairwise_loss():
    view = ranking_view([0.4, 1.1])
    assert_close(view.plackett_luce, view.all_pairs_loss)
    assert_close(view.plackett_luce, view.pairs[0].loss)


def test_parse_scores_names_the_bad_item():
    assert parse_scores(" 2, 1.5 ;-0.3 ") == [2.0, 1.5, -0.3]
    with pytest.raises(ValueError, match="'abc' is not a number"):
        parse_scores("1, abc")
    with pytest.raises(ValueError, match="between 2 and 6"):
        parse_scores("1")


def test_explorer_shows_the_library_losses_after_controls_change():
    box = ranking_explorer()
    c = box.controls
    assert c["k"].description and c["text"].description and all(s.description for s in c["scores"])
    c["k"].value = 3
    first3 = torch.tensor([[s.value for s in c["scores"][:3]]])
    assert _shown(box, "num-pairs") == 3
    assert _shown(box, "all-pairs") == pytest.approx(all_pairs_loss(first3).item(), abs=5e-5)
    assert _shown(box, "plackett-luce") == pytest.approx(plackett_luce_loss(first3).item(), abs=5e-5)
    c["scores"][0].value = -2.0  # the best answer now scores lowest
    assert _shown(box, "num-agree") == 1
    c["text"].value = "1, 3, -2, 0, 0.5"
    typed = torch.tensor([[1.0, 3.0, -2.0, 0.0, 0.5]])
    assert c["k"].value == 5 and _shown(box, "num-pairs") == 10
    assert _shown(box, "plackett-luce") == pytest.approx(plackett_luce_loss(typed).item(), abs=5e-5)
    c["text"].value = "1, oops"
    assert "oops" in box.children[-2].value and _shown(box, "num-pairs") == 10
