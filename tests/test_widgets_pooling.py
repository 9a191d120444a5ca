"""rmlearn.views.pooling_view and rmlearn.widgets.pooling: the pooling explorer reads its numbers from the library (lesson 02)."""

from __future__ import annotations

import re

import pytest
import torch
from torch.testing import assert_close

from rmlearn import PASSWORD_RESET, PreferencePair
from rmlearn.synthetic import filler_words
from rmlearn.views import pooling_view
from rmlearn.widgets import pooling_explorer

P = PASSWORD_RESET


def _shown(box, how: str) -> float:
    return float(re.search(rf"class='rm-score-{how}'>([-0-9.]+)<", box.summary.value).group(1))


def test_view_scores_equal_reward_model_with_that_pooling(reward_model, tokenizer):
    for side in ("right", "left"):
        view = pooling_view(reward_model, tokenizer, P.prompt, P.rejected, filler=2, pad=3, side=side)
        for how in ("eos", "mean", "last"):
            reward_model.pooling = how
            with torch.no_grad():
                expected = reward_model(view.input_ids[None], view.attention_mask[None])  # (1,)
            assert_close(torch.tensor([view.scores[how]]), expected, msg=f"{how} pooling, {side} padding")


def test_last_pooling_under_right_padding_reads_a_pad_position(reward_model, tokenizer):
    view = pooling_view(reward_model, tokenizer, P.prompt, P.rejected, pad=4, side="right")
    at = view.reads["last"]
    assert at == len(view.tokens) - 1
    assert view.attention_mask[at] == 0 and view.input_ids[at] == tokenizer.pad_token_id
    assert view.read_token("last") == tokenizer.pad_token
    assert view.read_token("eos") == tokenizer.eos_token
    assert abs(view.scores["last"] - view.scores["eos"]) > 1e-4


def test_eos_pooling_score_is_the_same_for_left_and_right_padding(reward_model, tokenizer):
    plain = pooling_view(reward_model, tokenizer, P.prompt, P.chosen)
    right = pooling_view(reward_model, tokenizer, P.prompt, P.chosen, pad=5, side="right")
    left = pooling_view(reward_model, tokenizer, P.prompt, P.chosen, pad=5, side="left")
    assert_close(torch.tensor([right.scores["eos"], left.scores["eos"]]), torch.tensor([plain.scores["eos"]] * 2),
                 atol=1e-5, rtol=1e-5)
    assert_close(left.scores["last"], left.scores["eos"])  # left padding puts EOS in the last column
    assert left.reads["eos"] == len(left.tokens) - 1 and right.reads["eos"] == plain.reads["eos"]


def test_eos_score_is_the_token_score_at_eos_and_mean_is_their_average(reward_model, tokenizer):
    view = pooling_view(reward_model, tokenizer, P.prompt, P.rejected, filler=6, pad=2)
    real = view.attention_mask.bool()
    assert torch.isnan(view.token_scores[~real]).all()
    assert_close(view.token_scores[view.reads["eos"]].item(), view.scores["eos"])
    # the head is linear without bias, so head(mean of states) = mean of head(state)
    assert_close(view.token_scores[real].mean().item(), view.scores["mean"], atol=1e-5, rtol=1e-5)
    assert view.read_token("mean") == f"all {int(real.sum())} real tokens"


def test_filler_words_lengthen_the_response_by_that_many_words(reward_model, tokenizer):
    assert len(filler_words(13).split()) == 13 and filler_words(0) == ""
    short = pooling_view(reward_model, tokenizer, P.prompt, P.rejected)
    longer = pooling_view(reward_model, tokenizer, P.prompt, P.rejected, filler=10)
    assert longer.num_real > short.num_real + 5
    with pytest.raises(ValueError, match="side"):
        pooling_view(reward_model, tokenizer, P.prompt, P.rejected, side="middle")


def test_explorer_shows_the_library_numbers_after_a_control_changes(reward_model, tokenizer):
    box = pooling_explorer(reward_model, tokenizer)
    c = box.controls
    assert all(control.description for control in c.values())
    c["pad"].value = 0  # no padding: the last column is EOS
    before, image = _shown(box, "last"), bytes(box.image.value)
    assert image.startswith(b"\x89PNG")
    c["pad"].value = 3  # right padding: the last column is now PAD
    expected = pooling_view(reward_model, tokenizer, c["prompt"].value, c["response"].value, pad=3, side="right")
    assert _shown(box, "last") == pytest.approx(expected.scores["last"], abs=5e-5)
    assert _shown(box, "last") != before and bytes(box.image.value) != image
    assert "&lt;|pad|&gt;" in box.summary.value
    c["side"].value = "left"
    assert _shown(box, "last") == _shown(box, "eos") == pytest.approx(expected.scores["eos"], abs=5e-5)
    c["filler"].value = 5
    c["example"].value = c["example"].options[3][1]  # support pair 1, rejected
    assert c["response"].value == "Passwords cannot be reset. Please create a new account."
    assert c["pad"].value == 24  # what it gets in a batch with its chosen answer
    assert c["filler"].value == 0  # a new example starts without the last one's filler
    assert box.view.scores == pooling_view(reward_model, tokenizer, c["prompt"].value, c["response"].value,
                                           pad=24, side="left").scores


@pytest.mark.kernels
def test_default_view_shows_last_pooling_prefer_the_wrong_answer_under_right_padding(tokenizer):
    """With the trained course model the explorer opens on a support pair that right padding turns
    around: in one right-padded batch, EOS pooling prefers the chosen answer and the naive [:, -1]
    the rejected one; the answer shown is the padded one."""
    from rmlearn.views import padding_flip, pair_rewards
    from rmlearn.zoo import trained_reward_model

    model = trained_reward_model()
    flip = padding_flip(model, tokenizer)
    assert flip is not None, "no support pair where right padding turns the preference around"
    pair, label = flip
    box = pooling_explorer()
    assert box.controls["example"].value == (pair, label) and box.controls["side"].value == "right"
    assert box.controls["response"].value == getattr(pair, label) and box.controls["pad"].value > 0
    rewards = pair_rewards(model, tokenizer, pair, "right")
    (eos_c, eos_r), (last_c, last_r) = rewards["eos"], rewards["last"]
    print(f"eos {eos_c:.2f} vs {eos_r:.2f}; last {last_c:.2f} vs {last_r:.2f}")
    assert eos_c > eos_r + 1.0 and last_c < last_r - 1.0  # a clear win turned into a clear loss
    assert "<td class='rm-prefers-eos'>chosen ✓</td>" in box.summary.value
    assert "<td class='rm-prefers-last'>rejected ✗</td>" in box.summary.value
    padded = rewards["last"][0 if label == "chosen" else 1]
    assert _shown(box, "last") == pytest.approx(padded, abs=5e-4)  # the padded row as in the batch
    assert box.view.read_token("last") == tokenizer.pad_token
    left = pair_rewards(model, tokenizer, pair, "left")
    assert left["last"] == pytest.approx(left["eos"], abs=1e-4)  # left padding: the last column is EOS


def test_padding_flip_finds_nothing_where_no_pair_flips(reward_model, tokenizer):
    from rmlearn import PASSWORD_RESET
    from rmlearn.views import padding_flip

    same = PreferencePair(PASSWORD_RESET.prompt, PASSWORD_RESET.chosen, PASSWORD_RESET.chosen)
    assert padding_flip(reward_model, tokenizer, [same], min_gap=1e-6) is None  # no padding: nothing to flip
    assert padding_flip(reward_model, tokenizer, [PASSWORD_RESET], min_gap=1e9) is None


def test_every_marker_is_drawn_at_its_own_reward(reward_model, tokenizer):
    from rmlearn.plots import plot_token_scores

    view = pooling_view(reward_model, tokenizer, P.prompt, P.rejected, pad=4, side="right")
    fig = plot_token_scores(view.tokens, view.token_scores, view.reads, view.scores)
    lines = {line.get_label().split(":")[0]: line for line in fig.axes[0].get_lines() if ":" in line.get_label()}
    for how in ("eos", "last"):
        (y,) = lines[how].get_ydata()
        assert y == pytest.approx(view.scores[how]), how
    assert lines["last"].get_xdata()[0] == view.reads["last"]
