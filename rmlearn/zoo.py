"""Ready-trained tiny course models, trained on first use in a few seconds and cached.

Lessons, widgets and the demo share them, so a notebook that asks twice trains once.
"""

from __future__ import annotations

from functools import lru_cache

from .backbone import course_tokenizer, tiny_backbone
from .data import split, support_pairs, synthetic_preferences
from .models import RewardModel
from .train import train_reward_model

SUPPORT_REPEATS = 4  # the 16 hand-written pairs are few next to the synthetic ones: show them 4×


def course_data(n_pairs: int = 500, length_bias: float = 0.0, seed: int = 0):
    """(train, test): synthetic pairs split 80/20, with the support pairs added to train."""
    train, test = split(synthetic_preferences(n_pairs, seed=seed, length_bias=length_bias), 0.2, seed)
    return train + support_pairs() * SUPPORT_REPEATS, test


def trained_reward_model(
    length_bias: float = 0.0, seed: int = 0, pooling: str = "eos", n_pairs: int = 500
) -> RewardModel:
    """The tiny reward model trained on ``course_data`` (about 4 s on 2 CPU cores), cached.

    The same settings give the same (shared) model however they are passed. Do not train it
    further; copy it first (``copy.deepcopy``).
    """
    return _trained(float(length_bias), int(seed), str(pooling), int(n_pairs))


@lru_cache(maxsize=8)
def _trained(length_bias: float, seed: int, pooling: str, n_pairs: int) -> RewardModel:
    model = RewardModel(tiny_backbone(seed=seed), pooling=pooling, seed=seed)
    train, _ = course_data(n_pairs, length_bias, seed)
    train_reward_model(model, course_tokenizer(), train, seed=seed, progress=False)
    return model.eval()


def trained_policy(seed: int = 0):
    """The tiny policy of lesson 08, SFT'd on synthetic responses (about 10 s on 2 CPU cores), cached.

    Do not train it further; copy it first (``copy.deepcopy``) or take ``rlhf.frozen_copy``.
    """
    return _policy(int(seed))


@lru_cache(maxsize=2)
def _policy(seed: int):
    from .rlhf import sft_data, sft_policy, tiny_policy

    policy = tiny_policy(seed)
    sft_policy(policy, course_tokenizer(), sft_data(1600, seed=seed), epochs=4, lr=5e-3, seed=seed)
    return policy.eval()
