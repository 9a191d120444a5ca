"""Segment scores as differences of cumulative scores (lessons 06 and 10).

If a reward model gives s_k for the text made of the first k segments, the k-th segment's own
score is what its addition changed: s_k − s_{k−1} (with s_0 a baseline, 0 by default).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch


def _as_tensor(cumulative: Sequence[float] | torch.Tensor) -> torch.Tensor:
    values = torch.as_tensor(cumulative, dtype=torch.float64 if not torch.is_tensor(cumulative) else None)
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError(f"cumulative scores must be a non-empty 1-D sequence, got {cumulative!r}")
    return values


def segment_scores(cumulative: Sequence[float] | torch.Tensor, baseline: float = 0.0) -> torch.Tensor:
    """``[s1, s2, …, sn]`` → ``[s1 − baseline, s2 − s1, …, sn − s(n−1)]``, shape (n,).

    >>> segment_scores([0.7, 0.5, 0.9]).round(decimals=6).tolist()   # the second segment: −0.2
    [0.7, -0.2, 0.4]
    """
    values = _as_tensor(cumulative)
    previous = torch.cat([values.new_tensor([baseline]), values[:-1]])  # (n,)
    return values - previous


def rank_segments(cumulative: Sequence[float] | torch.Tensor, baseline: float = 0.0) -> list[int]:
    """1-based segment ids ordered by contribution, largest first (ties keep text order).

    >>> rank_segments([0.6, 0.9, 0.7, 0.8])                   # +0.6, +0.3, −0.2, +0.1
    [1, 2, 4, 3]
    """
    contributions = segment_scores(cumulative, baseline).tolist()
    return sorted(range(1, len(contributions) + 1), key=lambda k: -contributions[k - 1])


def cumulative_scores(
    model: Any, tokenizer: Any, prompt: str, segments: Sequence[str], sep: str = " "
) -> torch.Tensor:
    """The reward model's score after each prefix of the response, shape (n,).

    Prefix k is ``sep.join(segments[:k])``, scored as a complete response (with EOS).
    """
    if isinstance(segments, str) or not segments:
        raise ValueError("segments must be a non-empty list of strings")
    prefixes = [sep.join(segments[: k + 1]) for k in range(len(segments))]
    return model.score([prompt] * len(prefixes), prefixes, tokenizer)


def split_sentences(text: str) -> list[str]:
    """Split a response after each ``.``, ``!`` or ``?`` followed by a space (sentences as segments).

    >>> split_sentences("Update the app. Version 4.2 fixes it!  Thanks.")
    ['Update the app.', 'Version 4.2 fixes it!', 'Thanks.']
    """
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


# ---------------------------------------------------------------------------------------------
# Steps and tokens as segments (lesson 10): process rewards and DPO's implicit reward
# ---------------------------------------------------------------------------------------------

AGGREGATIONS = ("min", "product")


def aggregate_steps(step_probs: torch.Tensor, how: str = "min", step_mask: torch.Tensor | None = None) -> torch.Tensor:
    """One score per answer from a process reward model's step probabilities (Lightman et al., 2023).

    ``"product"``: P(every step is correct) if steps were independent, Π_k p_k;
    ``"min"``: the weakest step, min_k p_k. Padding steps (``step_mask`` 0) count as certain (1).

    Shape: ``step_probs`` (B, S) or (S,), ``step_mask`` the same → (B,) or a scalar.

    >>> p = torch.tensor([[0.9, 0.2, 0.9], [0.8, 0.8, 0.8]])
    >>> aggregate_steps(p, "min"), aggregate_steps(p, "product").round(decimals=3)
    (tensor([0.2000, 0.8000]), tensor([0.1620, 0.5120]))
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {AGGREGATIONS}")
    if step_mask is not None:
        step_probs = step_probs.masked_fill(step_mask == 0, 1.0)  # padding: certain, changes nothing
    return step_probs.amin(dim=-1) if how == "min" else step_probs.prod(dim=-1)


def first_error_step(step_probs: torch.Tensor, threshold: float = 0.5,
                     step_mask: torch.Tensor | None = None) -> torch.Tensor:
    """1-based index of the first step judged wrong (p < ``threshold``), 0 when every step passes.

    Shape: (B, S) or (S,) → (B,) or a scalar, int64.

    >>> first_error_step(torch.tensor([[0.9, 0.3, 0.1], [0.9, 0.8, 0.7]]))
    tensor([2, 0])
    """
    wrong = step_probs < threshold  # (B, S)
    if step_mask is not None:
        wrong = wrong & (step_mask != 0)
    first = wrong.long().argmax(dim=-1) + 1  # argmax finds the first True
    return torch.where(wrong.any(dim=-1), first, torch.zeros_like(first))


def implicit_token_rewards(logp: torch.Tensor, logp_ref: torch.Tensor, beta: float,
                           response_mask: torch.Tensor | None = None) -> torch.Tensor:
    """DPO's per-token implicit rewards β·(log π(y_t|x, y_<t) − log π_ref(y_t|x, y_<t)) (Rafailov et al.,
    2023; Rafailov et al., 2024 "From r to Q*"). Their running sum is a cumulative score, so a span's
    implicit reward is a difference of cumulative scores, as lesson 06's segment scores are.

    Shape: (B, L) each → (B, L); padding (``response_mask`` 0) gets 0.

    >>> implicit_token_rewards(torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]]), beta=0.5)
    tensor([[ 0.2500, -0.5000]])
    """
    rewards = beta * (logp - logp_ref)  # (B, L)
    return rewards if response_mask is None else rewards * response_mask


def implicit_sequence_reward(logp: torch.Tensor, logp_ref: torch.Tensor, beta: float,
                             response_mask: torch.Tensor | None = None) -> torch.Tensor:
    """DPO's implicit reward r(x, y) = β·log π(y|x)/π_ref(y|x), up to a term in x alone: the sum of
    the per-token implicit rewards. Shape: (B, L) each → (B,).

    >>> implicit_sequence_reward(torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]]), beta=0.5)
    tensor([-0.2500])
    """
    return implicit_token_rewards(logp, logp_ref, beta, response_mask).sum(dim=-1)
