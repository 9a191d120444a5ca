"""Training objectives of the reward model: pure functions of scores (lessons 03, 04, 06 and 10).

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


# ---------------------------------------------------------------------------------------------
# Beyond one pairwise label (lesson 10): ties, graded margins, step labels, DPO
# ---------------------------------------------------------------------------------------------

# Llama 2's four rating levels (Touvron et al., 2023, Table 28, the "small" margins): level 3
# "significantly better" … level 0 "negligibly better / unsure". margin = scale · level / 3.
RATING_LEVELS = ("negligibly better", "slightly better", "better", "significantly better")


def rating_margin(level: int | torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The margin m of −log σ(Δ − m) for a rating level 0 … 3: ``scale · level / 3``.

    Shape: ``level`` an int or (B,); returns a float tensor of the same shape.

    >>> rating_margin(torch.tensor([0, 1, 2, 3]), scale=3.0)
    tensor([0., 1., 2., 3.])
    """
    level = torch.as_tensor(level)
    if bool(((level < 0) | (level > 3)).any()):
        raise ValueError(f"rating levels run from 0 ({RATING_LEVELS[0]}) to 3 ({RATING_LEVELS[3]}), got {level.tolist()}")
    return scale * level.float() / 3


def rao_kupper_probs(delta: torch.Tensor, nu: float | torch.Tensor) -> torch.Tensor:
    """Win, tie and loss probabilities under Rao–Kupper (1967) for a score gap Δ = r_a − r_b.

    P(a wins) = σ(Δ − ν), P(b wins) = σ(−Δ − ν), P(tie) = the rest = σ(Δ + ν) − σ(Δ − ν).
    ν ≥ 0 is the tie threshold: ν = 0 is Bradley–Terry (no ties); gaps within about ±ν are ties.

    Shape: ``delta`` (B,) → (B, 3) with columns (win, tie, loss), each row summing to 1.

    >>> rao_kupper_probs(torch.tensor([0.0, 2.0]), nu=1.0).round(decimals=4)
    tensor([[0.2689, 0.4621, 0.2689],
            [0.7311, 0.2215, 0.0474]])
    """
    nu = torch.as_tensor(nu, dtype=delta.dtype)
    if bool((nu < 0).any()):
        raise ValueError(f"the tie threshold nu must be >= 0, got {nu}")
    win, loss = torch.sigmoid(delta - nu), torch.sigmoid(-delta - nu)  # (B,)
    return torch.stack([win, 1 - win - loss, loss], dim=-1)  # (B, 3)


def _log_rao_kupper_tie(delta: torch.Tensor, nu: torch.Tensor) -> torch.Tensor:
    """log P(tie) = log(σ(ν − |Δ|) − σ(−ν − |Δ|)), stable for any gap (the tie is symmetric in Δ)."""
    d = delta.abs()
    hi, lo = F.logsigmoid(nu - d), F.logsigmoid(-nu - d)  # log σ of the larger and the smaller argument
    return hi + torch.log1p(-torch.exp(lo - hi))


def rao_kupper_loss(
    r_a: torch.Tensor, r_b: torch.Tensor, tie: torch.Tensor, nu: float | torch.Tensor = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative log-likelihood under Rao–Kupper: −log σ(r_a − r_b − ν) where a was preferred,
    −log P(tie) where the annotator said "about the same".

    Shape: ``r_a``, ``r_b`` (B,) (``r_a`` the preferred one unless tied), ``tie`` (B,) bool.
    Returns a scalar, or (B,) with ``reduction="none"``. With no ties and ν = 0 it is ``pairwise_loss``.

    >>> a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])
    >>> rao_kupper_loss(a, b, torch.tensor([False, True]), nu=1.0, reduction="none").round(decimals=4)
    tensor([0.3133, 0.7719])
    """
    nu = torch.as_tensor(nu, dtype=r_a.dtype)
    delta = r_a - r_b  # (B,)
    nll = torch.where(tie.bool(), -_log_rao_kupper_tie(delta, nu), -F.logsigmoid(delta - nu))  # (B,)
    return _reduce(nll, reduction)


def davidson_probs(delta: torch.Tensor, kappa: float | torch.Tensor) -> torch.Tensor:
    """Win, tie and loss probabilities under Davidson (1970) for a score gap Δ = r_a − r_b.

    P(a) : P(tie) : P(b) = e^{Δ/2} : κ : e^{−Δ/2}, a softmax over (Δ/2, log κ, −Δ/2); κ ≥ 0 sets
    how often ties happen (κ = 0 is Bradley–Terry).

    Shape: ``delta`` (B,) → (B, 3) with columns (win, tie, loss), each row summing to 1.

    >>> davidson_probs(torch.tensor([0.0]), kappa=1.0)                  # equal scores: a third each
    tensor([[0.3333, 0.3333, 0.3333]])
    """
    log_kappa = torch.log(torch.as_tensor(kappa, dtype=delta.dtype)).expand_as(delta)  # (B,)
    return torch.softmax(torch.stack([delta / 2, log_kappa, -delta / 2], dim=-1), dim=-1)  # (B, 3)


def davidson_loss(
    r_a: torch.Tensor, r_b: torch.Tensor, tie: torch.Tensor, kappa: float | torch.Tensor = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative log-likelihood under Davidson: −log P(a wins), or −log P(tie) for a tie.

    Shape: ``r_a``, ``r_b`` (B,), ``tie`` (B,) bool. Returns a scalar, or (B,) with ``"none"``.

    >>> round(davidson_loss(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([True])).item(), 4)  # log 3
    1.0986
    """
    delta = r_a - r_b  # (B,)
    log_kappa = torch.log(torch.as_tensor(kappa, dtype=delta.dtype)).expand_as(delta)
    logits = torch.stack([delta / 2, log_kappa, -delta / 2], dim=-1)  # (B, 3)
    picked = torch.where(tie.bool(), 1, 0)  # column 1 for a tie, 0 for "a wins"
    nll = -torch.log_softmax(logits, dim=-1).gather(-1, picked[:, None]).squeeze(-1)  # (B,)
    return _reduce(nll, reduction)


def step_loss(step_logits: torch.Tensor, step_labels: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of a process reward model over the real steps (Lightman et al., 2023).

    Shape: ``step_logits``, ``step_labels`` (1 = the step is correct), ``step_mask`` (B, S).
    Returns the mean over real steps.

    >>> logits, labels = torch.zeros(1, 3), torch.tensor([[1, 0, 1]])
    >>> mask = torch.tensor([[1.0, 1.0, 0.0]])                   # the third step is padding
    >>> round(step_loss(logits, labels, mask).item(), 4)         # p = 1/2 on each real step: log 2
    0.6931
    """
    bce = F.binary_cross_entropy_with_logits(step_logits, step_labels.float(), reduction="none")  # (B, S)
    return (bce * step_mask).sum() / step_mask.sum().clamp(min=1)


def dpo_loss(
    logp_chosen: torch.Tensor, logp_rejected: torch.Tensor, ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor, beta: float = 0.1, reduction: str = "mean",
) -> torch.Tensor:
    """Direct Preference Optimization (Rafailov et al., 2023, eq. 7): the pairwise loss on
    implicit rewards, −log σ(β·(log π/π_ref)(y_c) − β·(log π/π_ref)(y_r)).

    Shape: sequence log-probabilities (B,) each. Returns a scalar, or (B,) with ``"none"``.

    >>> z = torch.zeros(1)
    >>> round(dpo_loss(z, z, z, z).item(), 4)                     # policy = reference: log 2
    0.6931
    """
    return pairwise_loss(beta * (logp_chosen - ref_chosen), beta * (logp_rejected - ref_rejected),
                         reduction=reduction)
