"""Lesson 10's formulas against hand-computed values: ties, margins from ratings, step
aggregation, DPO's implicit reward, and the data format's margin / rating / tie columns."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.testing import assert_close

from rmlearn.data import DataError, load_preferences
from rmlearn.losses import (
    davidson_loss,
    davidson_probs,
    dpo_loss,
    pairwise_loss,
    rao_kupper_loss,
    rao_kupper_probs,
    rating_margin,
    step_loss,
)
from rmlearn.segments import (
    aggregate_steps,
    first_error_step,
    implicit_sequence_reward,
    implicit_token_rewards,
    segment_scores,
)
from rmlearn.synthetic import rated_preferences, step_answers, tied_preferences


def sig(x):
    return 1 / (1 + math.exp(-x))


@pytest.mark.parametrize("probs", [rao_kupper_probs, davidson_probs])
def test_win_tie_loss_sum_to_one(probs):
    delta = torch.linspace(-30, 30, 61, dtype=torch.float64)
    p = probs(delta, 1.5)
    assert_close(p.sum(-1), torch.ones_like(delta))
    assert bool((p >= 0).all())


def test_rao_kupper_against_hand_values():
    # Δ = 1, ν = 0.5: win σ(0.5), loss σ(−1.5), tie the rest
    p = rao_kupper_probs(torch.tensor([1.0], dtype=torch.float64), 0.5)[0]
    assert_close(p, torch.tensor([sig(0.5), 1 - sig(0.5) - sig(-1.5), sig(-1.5)], dtype=torch.float64))
    # ν = 0 is Bradley–Terry: no ties
    assert rao_kupper_probs(torch.tensor([0.7]), 0.0)[0, 1].item() == pytest.approx(0.0, abs=1e-7)


def test_rao_kupper_loss_is_minus_log_of_its_probabilities_and_stable():
    a = torch.tensor([1.0, 1.0, 40.0, -40.0], dtype=torch.float64)
    b = torch.zeros(4, dtype=torch.float64)
    tie = torch.tensor([False, True, True, False])
    nll = rao_kupper_loss(a, b, tie, nu=0.5, reduction="none")
    p = rao_kupper_probs(a - b, 0.5)
    assert_close(nll[:2], -torch.log(torch.stack([p[0, 0], p[1, 1]])))
    assert bool(torch.isfinite(nll).all())  # a tie at a gap of 40: large but finite
    assert nll[2].item() == pytest.approx(39.5 + math.log1p(-math.exp(-1.0)) * -1, rel=1e-3)
    # no ties and ν = 0: the pairwise loss
    assert_close(rao_kupper_loss(a, b, torch.zeros(4, dtype=torch.bool), nu=0.0), pairwise_loss(a, b))


def test_davidson_against_hand_values():
    # Δ = 2, κ = 1: e^1 : 1 : e^-1
    e = math.e
    p = davidson_probs(torch.tensor([2.0], dtype=torch.float64), 1.0)[0]
    z = e + 1 + 1 / e
    assert_close(p, torch.tensor([e / z, 1 / z, 1 / e / z], dtype=torch.float64))
    nll = davidson_loss(torch.tensor([2.0, 2.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64),
                        torch.tensor([False, True]), kappa=1.0, reduction="none")
    assert_close(nll, torch.tensor([-math.log(e / z), -math.log(1 / z)], dtype=torch.float64))


def test_rating_margin_and_margin_loss():
    assert_close(rating_margin(torch.tensor([0, 1, 2, 3])), torch.tensor([0.0, 1 / 3, 2 / 3, 1.0]))
    with pytest.raises(ValueError, match="0 .* to 3"):
        rating_margin(4)
    # −log σ(Δ − m) with m from the rating: Δ = 1, level 3 → m = 1 → log 2
    loss = pairwise_loss(torch.tensor([1.0]), torch.tensor([0.0]), margin=rating_margin(torch.tensor([3])))
    assert loss.item() == pytest.approx(math.log(2))


def test_step_aggregation_and_first_error():
    p = torch.tensor([[0.9, 0.4, 0.8], [0.95, 0.9, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert_close(aggregate_steps(p, "min", mask), torch.tensor([0.4, 0.9]))
    assert_close(aggregate_steps(p, "product", mask), torch.tensor([0.9 * 0.4 * 0.8, 0.95 * 0.9]))
    assert first_error_step(p, step_mask=mask).tolist() == [2, 0]  # the padding step does not count
    with pytest.raises(ValueError, match="aggregation"):
        aggregate_steps(p, "mean")
    logits, labels = torch.tensor([[0.0, 2.0]]), torch.tensor([[1, 0]])
    expected = (math.log(2) + (2 + math.log1p(math.exp(-2)))) / 2
    assert step_loss(logits, labels, torch.ones(1, 2)).item() == pytest.approx(expected, rel=1e-6)


def test_implicit_rewards_telescope_like_segment_scores():
    logp = torch.tensor([[-1.0, -2.0, -0.5, -3.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5, -2.0]])
    tokens = implicit_token_rewards(logp, ref, beta=0.1)
    assert_close(tokens, torch.tensor([[0.05, -0.1, 0.0, -0.1]]))
    total = implicit_sequence_reward(logp, ref, beta=0.1)
    assert_close(total, 0.1 * (logp.sum() - ref.sum()).reshape(1))
    # the running sum is a cumulative score: its differences give the per-token rewards back
    assert_close(segment_scores(tokens[0].cumsum(0)), tokens[0])
    mask = torch.tensor([[1, 1, 0, 0]])
    assert_close(implicit_sequence_reward(logp, ref, 0.1, mask), torch.tensor([-0.05]))


def test_dpo_loss_is_the_pairwise_loss_on_implicit_rewards():
    c, r, rc, rr = (torch.tensor([x]) for x in (-3.0, -5.0, -4.0, -4.0))
    assert dpo_loss(c, r, rc, rr, beta=0.5).item() == pytest.approx(-math.log(sig(0.5 * (1 - (-1)))))


def test_synthetic_ties_ratings_and_steps():
    pairs = tied_preferences(300, seed=1)
    assert 0.22 < sum(p.tie for p in pairs) / 300 < 0.38
    from rmlearn.synthetic import quality
    for p in pairs:
        qc, qr = quality(p.prompt, p.chosen), quality(p.prompt, p.rejected)
        assert (qc == qr) if p.tie else (qc > qr)
    for p in rated_preferences(200, seed=1):
        gap = quality(p.prompt, p.chosen) - quality(p.prompt, p.rejected)
        assert round(3 * p.margin) == min(abs(gap), 3) and gap >= 0
    answers = step_answers(200, seed=1)
    assert all(a.labels[-1] == 1 for a in answers)  # the final step always looks fine
    assert 60 < sum(not a.correct for a in answers) < 140
    assert all(a.first_error == (a.labels.index(0) + 1 if 0 in a.labels else 0) for a in answers)


def test_loader_reads_margin_rating_and_tie(tmp_path):
    path = tmp_path / "graded.jsonl"
    rows = [{"prompt": "Q?", "chosen": "a", "rejected": "b", "margin": 1.5},
            {"prompt": "Q?", "chosen": "a", "rejected": "b", "rating": "significantly better"},
            {"prompt": "Q?", "chosen": "a", "rejected": "b", "rating": 1},
            {"prompt": "Q?", "chosen": "a", "rejected": "b", "tie": True},
            {"prompt": "Q?", "chosen": "a", "rejected": "b"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    got = load_preferences(path)
    assert [p.margin for p in got] == [1.5, 1.0, pytest.approx(1 / 3), 0.0, 0.0]
    assert [p.tie for p in got] == [False, False, False, True, False]
    assert repr(got[4]) == "PreferencePair(prompt='Q?', chosen='a', rejected='b')"  # unchanged when unlabelled
    path.write_text(json.dumps({"prompt": "Q?", "chosen": "a", "rejected": "b", "rating": 7}) + "\n")
    with pytest.raises(DataError, match=r"graded.jsonl:1: 'rating'"):
        load_preferences(path)
    path.write_text(json.dumps({"prompt": "Q?", "chosen": "a", "rejected": "b", "rating": 1, "margin": 2.0}) + "\n")
    with pytest.raises(DataError, match=r"graded.jsonl:1: give 'margin' or 'rating', not both"):
        load_preferences(path)


def test_ps7_expected_answers_agree_with_the_library():
    """ps7's expected answers (recorded from its reference solution) are what rmlearn's own
    formulas give on the same inputs: the exercise and the library teach one formula."""
    from rmlearn.grading.instructor import exercises_dir
    from rmlearn.grading.scoring import answers_path

    want = json.loads(answers_path(exercises_dir(), "ps7_beyond_pairs", "ps7_beyond_pairs").read_text())
    rk = want["ps7-ex1-test"]
    for name, (delta, nu) in {"equal scores": (0.0, 1.0), "a ahead": (2.0, 0.5), "b ahead": (-1.5, 2.0)}.items():
        got = rao_kupper_probs(torch.tensor([delta], dtype=torch.float64), nu)[0].tolist()
        assert got == pytest.approx(rk[name]["value"], abs=1e-9)
    ml = want["ps7-ex2-test"]
    for name, (rc, rr, level, scale) in {"significantly": (2.0, 0.0, 3, 3.0), "slightly": (0.2, 0.7, 1, 1.5),
                                         "negligibly": (1.25, -0.5, 0, 4.0)}.items():
        got = pairwise_loss(torch.tensor([rc], dtype=torch.float64), torch.tensor([rr], dtype=torch.float64),
                            margin=rating_margin(torch.tensor([level]), scale).double())
        assert got.item() == pytest.approx(ml[name]["value"], abs=1e-9)
    steps = torch.tensor([0.95, 0.30, 0.90, 0.97], dtype=torch.float64)
    pr = want["ps7-ex3-test"]
    assert aggregate_steps(steps, "min").item() == pytest.approx(pr["min"]["value"])
    assert aggregate_steps(steps, "product").item() == pytest.approx(pr["product"]["value"])
    assert first_error_step(steps[None]).item() == pr["first error"]["value"]
    assert first_error_step(steps[None], threshold=0.92).item() == pr["first error, threshold 0.92"]["value"]
    lp = torch.tensor([[-0.5, -1.0, -2.0], [-3.0, -0.25, -9.0]])
    ref = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, -0.5, -0.1]])
    m = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    got = implicit_sequence_reward(lp, ref, 0.1, m).tolist()
    assert got == pytest.approx(want["ps7-ex4-test"]["padded batch"]["value"], abs=1e-6)


def test_quiz_10_numbers_are_the_library_s():
    """The explanations of quiz 10 quote numbers; these are rmlearn's formulas on the quiz's inputs."""
    assert rao_kupper_probs(torch.tensor([0.0]), 1.0)[0, 1].item() == pytest.approx(0.46, abs=0.005)
    assert rao_kupper_probs(torch.tensor([0.0]), 1.0)[0, 0].item() == pytest.approx(0.27, abs=0.005)
    with_m = pairwise_loss(torch.tensor([2.0]), torch.tensor([0.0]), margin=rating_margin(torch.tensor([3]), 3.0))
    assert with_m.item() == pytest.approx(1.31, abs=0.005)
    assert pairwise_loss(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(0.13, abs=0.005)
    steps = torch.tensor([0.95, 0.30, 0.90, 0.97])
    assert aggregate_steps(steps, "min").item() == pytest.approx(0.30)
    assert aggregate_steps(steps, "product").item() == pytest.approx(0.25, abs=0.005)
    assert steps.mean().item() == pytest.approx(0.78, abs=0.005)
    assert first_error_step(steps[None]).item() == 2
    r = implicit_sequence_reward(torch.tensor([[-12.0]]), torch.tensor([[-15.0]]), beta=0.1)
    assert r.item() == pytest.approx(0.3)
