"""rmlearn.pooling: which hidden state each pooling reads."""

import pytest
import torch
from torch.testing import assert_close

from rmlearn import pool
from rmlearn.pooling import last_token_index


def test_last_token_index_right_and_left_padding():
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 1, 1], [0, 1, 0, 0]])
    assert last_token_index(mask).tolist() == [1, 3, 3, 1]


def test_eos_pool_reads_last_real_token_for_both_sides():
    hidden = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]])
    assert_close(pool(hidden, mask, "eos"), torch.stack([hidden[0, 2], hidden[1, 4]]))


def test_mean_pool_averages_real_tokens_only():
    hidden = torch.arange(12.0).reshape(1, 4, 3)
    mask = torch.tensor([[0, 1, 1, 0]])
    assert_close(pool(hidden, mask, "mean"), ((hidden[0, 1] + hidden[0, 2]) / 2).unsqueeze(0))


def test_last_pool_is_the_naive_last_column():
    hidden = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1))
    assert_close(pool(hidden, torch.ones(2, 4), "last"), hidden[:, -1])


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="unknown pooling 'first'"):
        pool(torch.zeros(1, 2, 3), None, "first")
    with pytest.raises(ValueError, match=r"rows \[1\] of attention_mask have no real token"):
        pool(torch.zeros(2, 2, 3), torch.tensor([[1, 0], [0, 0]]), "eos")
    with pytest.raises(ValueError, match="does not match"):
        pool(torch.zeros(2, 2, 3), torch.ones(2, 3), "eos")
