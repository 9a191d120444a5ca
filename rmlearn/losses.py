"""Training objectives of the reward model: pure functions of scores (lessons 03, 04 and 06).

Glossary: ``r_chosen`` / ``r_rejected`` are rewards (B,) of the preferred and the other response;
``scores`` (B, K) are rewards of K responses to one prompt ordered best → worst.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import TypeVar

import torch
import torch.nn.functional as F

T = TypeVar("T")
_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose one of {_REDUCTIONS}")
    if reduction == "none":
        return values
    return values.mean() if reduction == "mean" else values.sum()


def pairwise_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margin: float | torch.Tensor = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Bradley–Terry pairwise ranking loss, −log σ(r_c − r_r − m) (InstructGPT, eq. 1).

    Computed as ``-logsigmoid`` so it stays finite for any gap: a gap of −10⁴ costs 10⁴, not inf.

    Shape: ``r_chosen``, ``r_rejected`` (B,); ``margin`` a float or (B,). Returns a scalar, or (B,)
    with ``reduction="none"``.

    >>> round(pairwise_loss(torch.tensor([2.0]), torch.tensor([0.0])).item(), 4)  # -log σ(2)
    0.1269
    """
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"r_chosen {tuple(r_chosen.shape)} and r_rejected {tuple(r_rejected.shape)} differ in shape")
    return _reduce(-F.logsigmoid(r_chosen - r_rejected - margin), reduction)


def ranking_to_pairs(ranking: Sequence[T]) -> list[tuple[T, T]]:
    """All (better, worse) pairs of a ranking ordered best → worst: K·(K−1)/2 of them.

    >>> ranking_to_pairs(["A", "B", "C"])
    [('A', 'B'), ('A', 'C'), ('B', 'C')]
    """
    if isinstance(ranking, str) or len(ranking) < 2:
        raise ValueError(f"a ranking needs at least 2 items, got {ranking!r}")
    return list(combinations(ranking, 2))


def all_pairs_loss(scores: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean pairwise loss over all K choose 2 pairs of each ranking (InstructGPT, eq. 1).

    A ranking's pairs, not a listwise likelihood: ``plackett_luce_loss`` is the listwise loss.

    Shape: ``scores`` (B, K), each row ordered best → worst. Returns a scalar, or (B,) with
    ``reduction="none"`` (the mean over a row's pairs).

    >>> s = torch.tensor([[1.0, 0.0]])                      # K = 2: the plain pairwise loss
    >>> bool(all_pairs_loss(s) == pairwise_loss(s[:, 0], s[:, 1]))
    True
    """
    if scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (batch, K) with K >= 2, got shape {tuple(scores.shape)}")
    better, worse = zip(*ranking_to_pairs(range(scores.shape[1])))
    gaps = scores[:, list(better)] - scores[:, list(worse)]  # (B, K(K-1)/2)
    return _reduce(-F.logsigmoid(gaps).mean(dim=1), reduction)


listwise_pairwise_loss = all_pairs_loss  # its first name; lesson 04 calls it so


def plackett_luce_loss(scores: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Negative log-likelihood of a full ranking under the Plackett–Luce model.

    P(ranking) = Π_k exp(s_k) / Σ_{j≥k} exp(s_j): pick the best of all, then the best of the rest, …
    For K = 2 it equals the pairwise loss.

    Shape: ``scores`` (B, K) ordered best → worst. Returns a scalar, or (B,) with ``"none"``.
    """
    if scores.dim() != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (batch, K) with K >= 2, got shape {tuple(scores.shape)}")
    # log Σ_{j≥k} exp(s_j) for every k: a reversed cumulative logsumexp
    tail = torch.logcumsumexp(scores.flip(1), dim=1).flip(1)  # (B, K)
    return _reduce((tail - scores)[:, :-1].sum(dim=1), reduction)  # last term is always 0


def segment_regression_loss(
    pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Squared error between predicted and target segment scores: (pred − target)².

    Regression cares about the values themselves, not only their order: predictions in the right
    order but off by a constant still pay a loss. Shape: any, equal for both.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    return _reduce((pred - target) ** 2, reduction)


def centering_penalty(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """mean((r_c + r_r)²): pulls the scores of each pair towards zero (Eisenstein et al., 2023).

    The pairwise loss sees only differences, so adding a constant to every score changes nothing;
    this term picks the solution whose scores are centred on 0.
    """
    return ((r_chosen + r_rejected) ** 2).mean()
