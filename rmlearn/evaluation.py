"""How far to trust a reward model's score (lesson 09): a small RewardBench-style evaluation,
calibration, and ensembles.

The metrics are pure functions of scores (tensors in, numbers out); the reports run a model:
``reward_bench`` on the synthetic world's suites (``synthetic_suites``) or on any pairs, and
``eval_report`` (``rmlearn eval``) on a file's pairs and rankings, scoring each pair once.

- **accuracy**: the share of pairs with r_chosen > r_rejected (a tie counts 1/2);
- **best-of-4 accuracy**: one chosen and three rejected answers, right when the chosen one scores
  highest (chance 25 %; a tie for the top counts 1/number tied), as RewardBench 2 does;
- **accuracy split by length**: pairs whose chosen answer is the longer one, and the others: a
  model that learned "longer is better" is right on the first and wrong on the second;
- **calibration**: the Bradley–Terry reading P(chosen ≻ rejected) = σ(Δ/T), Δ = r_c − r_r; its
  reliability diagram, the expected calibration error (ECE) and the temperature T fitted on a split
  (Guo et al., 2017, "On calibration of modern neural networks");
- **ensembles**: k reward models' scores, their disagreement, and the mean, worst-case and
  mean − λ·std aggregates (Coste et al., 2023, "Reward model ensembles help mitigate
  overoptimization").

>>> import torch
>>> pairwise_accuracy(torch.tensor([2.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 3.0]))   # right, tie, wrong
0.5
>>> best_of_k_accuracy(torch.tensor([[3.0, 1.0, 2.0, 0.0],     # chosen (column 0) on top: 1
...                                  [2.0, 2.0, 0.0, 1.0]]))   # tied with one other: 1/2
0.75
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .data import PreferencePair, RankedExample, as_pairs
from .synthetic import num_words
from .train import pair_gaps, pair_metrics, pair_scores, scores_by_text

# ---------------------------------------------------------------------------------- accuracy

def pairwise_accuracy(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> float:
    """Share of pairs the model orders like the label, (N,), (N,) → float; a tie counts 1/2."""
    right = (r_chosen > r_rejected).double() + 0.5 * (r_chosen == r_rejected).double()  # (N,)
    return float(right.mean())


def best_of_k_accuracy(scores: torch.Tensor) -> float:
    """Share of sets whose chosen answer (column 0) scores highest, (N, K) → float.

    A tie for the top counts 1/(number tied), so a model that scores everything the same gets
    exactly the chance level 1/K. RewardBench 2 uses K = 4: one chosen, three rejected.

    >>> best_of_k_accuracy(torch.zeros(5, 4))          # all tied: chance
    0.25
    """
    at_top = scores == scores.max(1, keepdim=True).values  # (N, K)
    return float((at_top[:, 0].double() / at_top.sum(1)).mean())


def accuracy_by_length(r_chosen: torch.Tensor, r_rejected: torch.Tensor, chosen_longer: torch.Tensor) -> dict[str, float]:
    """Accuracy on the pairs whose chosen answer is the longer one, and on the others.
    (N,), (N,), (N,) bool → {"chosen longer": float, "chosen shorter": float} (NaN where none).

    >>> accuracy_by_length(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 2.0]), torch.tensor([True, False]))
    {'chosen longer': 1.0, 'chosen shorter': 0.0}
    """
    split = {"chosen longer": chosen_longer, "chosen shorter": ~chosen_longer}
    return {name: pairwise_accuracy(r_chosen[m], r_rejected[m]) if m.any() else float("nan")
            for name, m in split.items()}


# ---------------------------------------------------------------------------------- calibration

def preference_probability(gap: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """P(chosen ≻ rejected) = σ(Δ/T) for score gaps Δ = r_c − r_r, (N,) → (N,) (Bradley–Terry).

    >>> preference_probability(torch.tensor([0.0, 2.0]), temperature=2.0)
    tensor([0.5000, 0.7311])
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return torch.sigmoid(gap / temperature)


@dataclass
class Reliability:
    """A reliability diagram: pairs binned by the model's confidence in its own pick."""

    edges: list[float]  # n_bins + 1 bin edges on [0.5, 1]
    confidence: list[float]  # mean confidence max(p, 1 − p) per bin (NaN for an empty bin)
    accuracy: list[float]  # share of the bin's picks that match the label (NaN for an empty bin)
    count: list[int]  # pairs per bin
    ece: float  # Σ_b (count_b / N)·|accuracy_b − confidence_b|


def reliability(gap: torch.Tensor, temperature: float = 1.0, n_bins: int = 5) -> Reliability:
    """The reliability diagram and ECE of P(chosen ≻ rejected) = σ(Δ/T) on labelled pairs, (N,).

    The model picks the answer it gives more than 1/2 and is *confident* max(p, 1 − p) ∈ [0.5, 1];
    calibrated means: of the picks made with confidence 0.8, 80 % match the label. (Every pair is
    labelled chosen-first, so the symmetric reading is the one that can be wrong both ways.)

    >>> r = reliability(torch.tensor([3.0, 3.0, -3.0, 3.0]), n_bins=5)   # σ(3) = 0.95, right 3 times of 4
    >>> r.count, round(r.ece, 3)
    ([0, 0, 0, 0, 4], 0.203)
    """
    p = preference_probability(gap.double(), temperature)  # (N,)
    confidence = torch.maximum(p, 1 - p)  # (N,) in [0.5, 1]
    right = (gap > 0).double() + 0.5 * (gap == 0).double()  # (N,) the pick matches the label
    edges = torch.linspace(0.5, 1.0, n_bins + 1, dtype=torch.float64)
    which = torch.bucketize(confidence, edges[1:-1], right=True)  # (N,) bin index 0 … n_bins − 1
    conf, acc, count, ece = [], [], [], 0.0
    for b in range(n_bins):
        m = which == b
        count.append(int(m.sum()))
        if not m.any():
            conf.append(float("nan"))
            acc.append(float("nan"))
            continue
        conf.append(float(confidence[m].mean()))
        acc.append(float(right[m].mean()))
        ece += count[-1] / len(gap) * abs(acc[-1] - conf[-1])
    return Reliability(edges.tolist(), conf, acc, count, ece)


def expected_calibration_error(gap: torch.Tensor, temperature: float = 1.0, n_bins: int = 5) -> float:
    """ECE of σ(Δ/T) on labelled pairs, (N,) → float: ``reliability(...).ece``.

    >>> gap = torch.tensor([3.0, 3.0, 3.0, -3.0])     # σ(3) = 0.953 sure of each pick; 3 of 4 right
    >>> round(expected_calibration_error(gap), 3)     # |0.75 − 0.953|
    0.203
    """
    return reliability(gap, temperature, n_bins).ece


def preference_nll(gap: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean −log σ(Δ/T) over labelled pairs, (N,) → float: the pairwise loss at temperature T."""
    return float(-torch.nn.functional.logsigmoid(gap.double() / temperature).mean())


def fit_temperature(gap: torch.Tensor, low: float = 1e-2, high: float = 1e2) -> float:
    """Temperature scaling: the T in [low, high] that minimises the mean −log σ(Δ/T) on (N,) gaps.

    The loss is convex in s = 1/T, so its derivative −mean(Δ·σ(−sΔ)) rises with s: bisection finds
    the zero. Fit on one split of held-out pairs and judge on another.

    >>> gaps = torch.tensor([4.0, 4.0, 4.0, -4.0])          # confident, but wrong 1 time in 4
    >>> round(fit_temperature(gaps), 2)                     # σ(4/T) = 3/4 at T = 4/log 3
    3.64
    """
    g = gap.double()
    s_lo, s_hi = 1.0 / high, 1.0 / low
    for _ in range(100):
        s = (s_lo + s_hi) / 2
        slope = -(g * torch.sigmoid(-s * g)).mean()  # d/ds of the loss
        s_lo, s_hi = (s, s_hi) if slope < 0 else (s_lo, s)
    return 1.0 / ((s_lo + s_hi) / 2)


# ---------------------------------------------------------------------------------- ensembles

def ensemble_scores(models: Sequence[Any], tokenizer: Any, prompts: Sequence[str],
                    responses: Sequence[str]) -> torch.Tensor:
    """Each member's scores, standardised over the given responses so members are comparable,
    (M, N). Their spread across members (dim 0) is the ensemble's uncertainty.

    >>> from rmlearn import RewardModel, course_tokenizer, tiny_backbone
    >>> members = [RewardModel(tiny_backbone(seed=s)) for s in (0, 1)]
    >>> scores = ensemble_scores(members, course_tokenizer(), ["Q?"] * 3, ["a", "b c", "d e f"])
    >>> scores.shape, [round(s) for s in scores.std(1).tolist()]     # (M, N), each member standardised
    (torch.Size([2, 3]), [1, 1])
    """
    scores = torch.stack([m.score(list(prompts), list(responses), tokenizer) for m in models])  # (M, N)
    return (scores - scores.mean(1, keepdim=True)) / scores.std(1, keepdim=True)


def disagreement(scores: torch.Tensor) -> torch.Tensor:
    """How much the members disagree on each response: the std over members, (M, N) → (N,)."""
    return scores.std(0)


AGGREGATES = ("mean", "min", "mean_std")


def conservative_reward(scores: torch.Tensor, k: float = 1.0, how: str = "mean_std") -> torch.Tensor:
    """One reward from ensemble scores (M, N) → (N,): the ``mean``, the worst case ``min``, or the
    uncertainty-weighted ``mean_std`` = mean − k·std (Coste et al., 2023). The last two are
    pessimistic: where the members disagree, the reward drops.

    >>> conservative_reward(torch.tensor([[1.0, 2.0], [3.0, 2.0]]), k=1.0)
    tensor([0.5858, 2.0000])
    >>> conservative_reward(torch.tensor([[1.0, 2.0], [3.0, 2.0]]), how="min")
    tensor([1., 2.])
    """
    if how == "min":
        return scores.min(0).values
    if how == "mean":
        return scores.mean(0)
    if how != "mean_std":
        raise ValueError(f"how must be one of {AGGREGATES}, got {how!r}")
    return scores.mean(0) - k * disagreement(scores)


# ---------------------------------------------------------------------------------- the bench

@dataclass(frozen=True)
class Candidates:
    """One prompt, its chosen answer and K − 1 rejected ones (a best-of-K item)."""

    prompt: str
    chosen: str
    rejected: tuple[str, ...]


def best_of_4_sets(n: int, seed: int = 4) -> list[Candidates]:
    """``n`` synthetic best-of-4 items: a helpful answer (gold +1) and three answers of lower gold
    to the same prompt (off-topic, unhelpful), each with 0–5 filler phrases.

    >>> from rmlearn.synthetic import quality
    >>> item = best_of_4_sets(1)[0]
    >>> len(item.rejected), all(quality(item.prompt, r) < quality(item.prompt, item.chosen) for r in item.rejected)
    (3, True)
    """
    from .synthetic import SYNTHETIC_PROMPTS, synthetic_response

    rng = random.Random(seed)
    items = []
    while len(items) < n:
        prompt = rng.choice(SYNTHETIC_PROMPTS)
        drawn = [synthetic_response(rng, prompt) for _ in range(12)]
        best = [text for text, q, _ in drawn if q == 1]
        worse = list(dict.fromkeys(text for text, q, _ in drawn if q < 1))
        if best and len(worse) >= 3:
            items.append(Candidates(prompt, best[0], tuple(worse[:3])))
    return items


def synthetic_suites(n: int = 300) -> dict[str, list]:
    """The synthetic world's evaluation suites (none of them in any training set):

    ``pairs``: held-out pairs labelled by the hidden rule; ``best_of_4``: ``best_of_4_sets``;
    ``answer_last``: a distribution shift, the answer phrase after the filler
    (``data.answer_last_preferences``).
    """
    from .synthetic import answer_last_preferences, synthetic_preferences

    return {"pairs": synthetic_preferences(n, seed=123), "best_of_4": best_of_4_sets(n),
            "answer_last": answer_last_preferences(n)}


def pair_report(model: Any, tokenizer: Any, data: Sequence[Any]) -> dict[str, float]:
    """Accuracy, accuracy split by length (in words) and ECE (T = 1) on preference data; rankings
    count all their pairs."""
    pairs = as_pairs(data)
    if not pairs:
        raise ValueError("no preference pairs to evaluate")
    return gap_report(pairs, pair_gaps(model, tokenizer, pairs))


def gap_report(pairs: Sequence[PreferencePair], gap: torch.Tensor) -> dict[str, float]:
    """``pair_report`` from score gaps already taken: ``pairs`` and their (N,) Δ = r_chosen − r_rejected.

    >>> pairs = [PreferencePair("Q?", "a long answer", "short"), PreferencePair("Q?", "ok", "no way")]
    >>> report = gap_report(pairs, torch.tensor([1.0, -1.0]))
    >>> report["accuracy_chosen_longer"], report["accuracy_chosen_shorter"]
    (1.0, 0.0)
    """
    longer = torch.tensor([num_words(p.chosen) > num_words(p.rejected) for p in pairs])  # (N,)
    by_length = accuracy_by_length(gap, torch.zeros_like(gap), longer)
    return {"accuracy": pairwise_accuracy(gap, torch.zeros_like(gap)),
            "accuracy_chosen_longer": by_length["chosen longer"],
            "accuracy_chosen_shorter": by_length["chosen shorter"],
            "ece": expected_calibration_error(gap), "num_pairs": len(pairs)}


def best_of_k_report(model: Any, tokenizer: Any, items: Sequence[Candidates | RankedExample]) -> dict[str, float]:
    """Best-of-K accuracy on ``Candidates`` or rankings (their first response is the chosen one)."""
    rows = [(i.prompt, (i.chosen, *i.rejected)) if isinstance(i, Candidates) else (i.prompt, i.responses)
            for i in items]
    k = len(rows[0][1])
    if any(len(answers) != k for _, answers in rows):
        raise ValueError("best-of-K needs the same number of answers in every item")
    prompts = [p for p, answers in rows for _ in answers]
    scores = model.score(prompts, [a for _, answers in rows for a in answers], tokenizer).view(len(rows), k)  # (N, K)
    return best_of_k_summary(scores)


def best_of_k_summary(scores: torch.Tensor) -> dict[str, float]:
    """``best_of_k_report`` from scores already taken, (N, K) with the chosen answer in column 0.

    >>> best_of_k_summary(torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0]]))
    {'best_of_3_accuracy': 0.5, 'chance': 0.3333333333333333, 'num_sets': 2}
    """
    k = scores.shape[1]
    return {f"best_of_{k}_accuracy": best_of_k_accuracy(scores), "chance": 1.0 / k, "num_sets": len(scores)}


def eval_report(model: Any, tokenizer: Any, data: Sequence[Any]) -> dict[str, float]:
    """What ``rmlearn eval`` prints, from one scoring of every pair (``pair_scores``: its chosen and its
    rejected text; a text in several pairs, as each of a ranking's K texts is in K − 1, is scored once
    per pair): ``evaluate``'s metrics, accuracy by length (in words) and ECE from ``gap_report``, and
    when ``data`` holds rankings, all of one size K ≥ 3, best-of-K accuracy (``best_of_k_summary``) on
    them, read from their pairs' scores (``scores_by_text``)."""
    pairs = as_pairs(data)
    if not pairs:
        raise ValueError("no evaluation data")
    r_chosen, r_rejected = pair_scores(model, tokenizer, pairs)  # (N,) each
    metrics = pair_metrics(pairs, r_chosen, r_rejected)
    report = gap_report(pairs, r_chosen - r_rejected)  # lesson 09: by length (in words) and calibration
    metrics.update({k: report[k] for k in ("accuracy_chosen_longer", "accuracy_chosen_shorter", "ece")})
    ranked = [x for x in data if isinstance(x, RankedExample)]
    sizes = {len(x.responses) for x in ranked}
    if len(sizes) == 1 and min(sizes) >= 3:  # rankings of K answers: is the best one scored highest?
        score_of = scores_by_text(pairs, r_chosen, r_rejected)
        scores = torch.stack([torch.stack([score_of[x.prompt, r] for r in x.responses]) for x in ranked])  # (N, K)
        metrics.update({k: v for k, v in best_of_k_summary(scores).items() if k != "num_sets"})
    return metrics


def reward_bench(model: Any, tokenizer: Any, suites: dict[str, list] | None = None) -> dict[str, dict[str, float]]:
    """Run the evaluation: a ``pair_report`` for each suite of pairs and a ``best_of_k_report`` for
    each suite of ``Candidates`` (default: ``synthetic_suites()``)."""
    suites = synthetic_suites() if suites is None else suites
    return {name: best_of_k_report(model, tokenizer, items) if isinstance(items[0], Candidates)
            else pair_report(model, tokenizer, items) for name, items in suites.items()}
