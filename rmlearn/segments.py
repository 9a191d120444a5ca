"""Segment scores as differences of cumulative scores (lesson 06).

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
