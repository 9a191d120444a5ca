"""rmlearn: how the reward model of RLHF turns a prompt and a response into one number.

The public names below load lazily, so ``import rmlearn`` stays fast and pulls in neither
``transformers`` nor any plotting or widget library until they are used.

>>> import rmlearn
>>> rmlearn.segment_scores([0.7, 0.5, 0.9]).round(decimals=6).tolist()
[0.7, -0.2, 0.4]
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "backbone": ["tiny_backbone", "course_tokenizer", "load_backbone", "load_tokenizer"],
    "pooling": ["pool"],
    "models": ["RewardModel", "ValueModel", "ProcessRewardModel", "pooled_features"],
    "losses": [
        "pairwise_loss", "ranking_to_pairs", "all_pairs_loss", "plackett_luce_loss",
        "segment_regression_loss", "centering_penalty", "rating_margin", "rao_kupper_probs",
        "rao_kupper_loss", "davidson_probs", "davidson_loss", "step_loss", "dpo_loss",
    ],
    "segments": [
        "segment_scores", "rank_segments", "cumulative_scores", "split_sentences", "aggregate_steps",
        "first_error_step", "implicit_token_rewards", "implicit_sequence_reward",
    ],
    "data": [
        "PreferencePair", "RankedExample", "DataError", "load_preferences", "support_pairs", "split",
        "PASSWORD_RESET",
    ],
    "synthetic": [
        "synthetic_preferences", "length_probe", "by_quality", "num_words", "filler_words", "tied_preferences",
        "rated_preferences", "step_answers", "best_of_n_candidates", "StepAnswer",
    ],
    "views": ["pooling_view", "padding_flip", "length_bias_report"],
    "config": ["TrainConfig"],
    "train": [
        "train_reward_model", "evaluate", "train_value_model", "History", "train_process_reward_model",
        "train_head", "minibatch_fit",
    ],
    "rlhf": [
        "tiny_policy", "sft_policy", "frozen_copy", "sample_responses", "per_token_kl", "sequence_kl",
        "kl_penalised_rewards", "gae", "ppo_losses", "ppo", "PPOConfig", "best_of_n_weights",
        "best_of_n_kl", "best_of_n_kl_bound", "best_of_n_curve", "kl_regularised_curve",
        "response_pool", "ResponsePool", "overoptimization_grid", "gold_reward", "fit_gao", "GaoFit",
        "score_stats", "NormalisedReward", "implicit_reward", "train_dpo",
    ],
    "evaluation": [
        "pairwise_accuracy", "best_of_k_accuracy", "accuracy_by_length", "preference_probability",
        "reliability", "expected_calibration_error", "fit_temperature", "ensemble_scores", "disagreement",
        "conservative_reward", "reward_bench", "synthetic_suites",
    ],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value  # cache: the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'rmlearn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
