"""rmlearn.segments reproduces the worked numbers of the segment-score course page."""

import pytest
import torch
from torch.testing import assert_close

from rmlearn import PASSWORD_RESET, cumulative_scores, rank_segments, segment_scores


def test_second_segment_score_is_minus_point_two():
    scores = segment_scores([0.7, 0.5, 0.9])
    assert scores[1].item() == pytest.approx(-0.2)
    assert_close(scores, torch.tensor([0.7, -0.2, 0.4], dtype=torch.float64))


def test_segments_two_to_four_rank_as_2_4_3():
    scores = segment_scores([0.6, 0.9, 0.7, 0.8])
    assert_close(scores, torch.tensor([0.6, 0.3, -0.2, 0.1], dtype=torch.float64))
    assert [k for k in rank_segments([0.6, 0.9, 0.7, 0.8]) if k != 1] == [2, 4, 3]


def test_baseline_is_subtracted_from_the_first_segment():
    assert segment_scores([0.7, 0.5], baseline=0.2).tolist() == pytest.approx([0.5, -0.2])


def test_segment_scores_sum_to_the_final_score():
    cumulative = torch.tensor([0.1, -0.4, 0.3, 1.2])
    assert segment_scores(cumulative).sum().item() == pytest.approx(1.2)


def test_bad_cumulative_scores_are_rejected():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        segment_scores([])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        segment_scores([[0.1, 0.2]])


def test_cumulative_scores_score_each_prefix(reward_model, tokenizer):
    segments = ["To reset your password, click 'Forgot password'.", "Then follow the emailed link.",
                "Tell me if you need more help."]
    got = cumulative_scores(reward_model, tokenizer, PASSWORD_RESET.prompt, segments)
    assert got.shape == (3,)
    prefixes = [" ".join(segments[:k]) for k in (1, 2, 3)]  # in order: the k-th score is after k segments
    expected = torch.cat([reward_model.score(PASSWORD_RESET.prompt, p, tokenizer).reshape(1) for p in prefixes])
    assert len(set(expected.tolist())) == 3  # distinct, so a reversed or shuffled order would fail
    assert_close(got, expected)
    assert_close(segment_scores(got), torch.cat([expected[:1], expected[1:] - expected[:-1]]))
