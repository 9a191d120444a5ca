"""What the explorers show, computed through the library with no UI (lessons 02 and 05).

A view function takes a model and a few settings and returns plain numbers (a dataclass of floats
and tensors); the widgets in ``rmlearn.widgets`` only wire controls to these and redraw, and lessons
and tests call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .data import PreferencePair, support_pairs
from .inputs import encode, encode_batch, pad_batch, special_ids
from .pooling import POOLINGS, last_token_index, pool
from .synthetic import by_quality, filler_words, length_probe, num_words, quality

# ---------------------------------------------------------------------------------------------
# Pooling: which hidden state becomes the reward (lesson 02)
# ---------------------------------------------------------------------------------------------

SIDES = ("right", "left")  # where a batch puts its padding


def pair_rewards(model: Any, tokenizer: Any, pair: PreferencePair, side: str = "right") -> dict[str, tuple[float, float]]:
    """(r_chosen, r_rejected) of ``pair`` under every pooling, both scored in one batch padded on
    ``side`` (the shorter answer gets the padding, as in training and evaluation).

    >>> from rmlearn import PASSWORD_RESET, RewardModel, course_tokenizer, tiny_backbone
    >>> rewards = pair_rewards(RewardModel(tiny_backbone()), course_tokenizer(), PASSWORD_RESET, side="left")
    >>> sorted(rewards), rewards["last"] == rewards["eos"]  # left padding: the last column is the EOS
    (['eos', 'last', 'mean'], True)
    """
    if side not in SIDES:
        raise ValueError(f"padding side must be one of {SIDES}, got {side!r}")
    ids, mask = encode_batch(tokenizer, [pair.prompt] * 2, [pair.chosen, pair.rejected], side=side)  # (2, T)
    with torch.no_grad():
        hidden = model.hidden(ids, mask)  # (2, T, D)
        return {how: tuple(model.head(pool(hidden, mask, how)).squeeze(-1).tolist()) for how in POOLINGS}


def padding_flip(model: Any, tokenizer: Any, pairs: list[PreferencePair] | None = None,
                 min_gap: float = 1.0) -> tuple[PreferencePair, str] | None:
    """The first pair of ``pairs`` (default: ``support_pairs()``) whose preference right padding turns
    around: in one right-padded batch, EOS pooling prefers the chosen answer and the naive ``last``
    pooling the rejected one, each by at least ``min_gap``. Returns ``(pair, label)``, ``label`` being
    the answer that gets the padding (``"chosen"`` or ``"rejected"``), or ``None`` if no pair flips.

    The gap keeps the pick the same on every CPU: scores that differ in the 6th digit cannot move a
    pair across it.
    """
    for pair in support_pairs() if pairs is None else pairs:
        rewards = pair_rewards(model, tokenizer, pair, "right")
        (eos_c, eos_r), (last_c, last_r) = rewards["eos"], rewards["last"]
        if eos_c - eos_r >= min_gap and last_r - last_c >= min_gap:
            return padded_answer(tokenizer, pair)
    return None


def padded_answer(tokenizer: Any, pair: PreferencePair) -> tuple[PreferencePair, str]:
    """``(pair, label)`` of the answer that gets the padding when the pair is batched (the shorter one)."""
    return pair, "chosen" if pad_in_batch(tokenizer, pair, "chosen") else "rejected"


@dataclass
class PoolingView:
    """One (prompt, response) row as the model sees it, and what each pooling makes of it.

    ``tokens``, ``input_ids``, ``attention_mask`` and ``token_scores`` are per position (T,);
    ``token_scores`` is NaN on padding. ``scores[how]`` is the reward under pooling ``how`` and
    ``reads[how]`` the position it reads (``None`` for ``"mean"``, which averages all real tokens).
    """

    tokens: list[str]
    input_ids: torch.Tensor  # (T,)
    attention_mask: torch.Tensor  # (T,)
    token_scores: torch.Tensor  # (T,)
    scores: dict[str, float] = field(default_factory=dict)
    reads: dict[str, int | None] = field(default_factory=dict)
    side: str = "right"

    @property
    def num_real(self) -> int:
        return int(self.attention_mask.sum())

    def read_token(self, how: str) -> str:
        """The token a pooling reads, as text (``"all N real tokens"`` for mean pooling)."""
        at = self.reads[how]
        return f"all {self.num_real} real tokens" if at is None else self.tokens[at]


def pad_in_batch(tokenizer: Any, pair: PreferencePair, label: str) -> int:
    """How many PAD tokens the ``label`` answer gets when batched with the other answer of ``pair``."""
    lengths = {k: len(encode(tokenizer, pair.prompt, getattr(pair, k))) for k in ("chosen", "rejected")}
    return max(lengths.values()) - lengths[label]


def pooling_view(
    model: Any, tokenizer: Any, prompt: str, response: str, filler: int = 0, pad: int = 0, side: str = "right"
) -> PoolingView:
    """Score one response under every pooling, with ``filler`` neutral words appended to it and
    ``pad`` padding tokens added on ``side``.

    The padded row is what the model would see inside a batch whose longest sequence is ``pad``
    tokens longer. Each score is the model's own head applied to ``pool(hidden, mask, how)``.

    >>> from rmlearn import RewardModel, course_tokenizer, tiny_backbone
    >>> view = pooling_view(RewardModel(tiny_backbone()), course_tokenizer(), "Q?", "click forgot password", pad=2)
    >>> view.tokens[view.reads["eos"]], view.tokens[view.reads["last"]]  # right padding: last reads a PAD
    ('<|endoftext|>', '<|pad|>')
    >>> len(view.tokens) - view.num_real, view.reads["mean"]
    (2, None)
    """
    if side not in SIDES:
        raise ValueError(f"padding side must be one of {SIDES}, got {side!r}")
    if filler < 0 or pad < 0:
        raise ValueError(f"filler and pad must be >= 0, got filler={filler}, pad={pad}")
    if filler:
        response = f"{response} {filler_words(filler)}"
    _, pad_id = special_ids(tokenizer)
    seq = encode(tokenizer, prompt, response, getattr(model, "max_length", None))
    # a placeholder row `pad` tokens longer makes pad_batch pad ours, as in a real batch
    ids, mask = pad_batch([seq, [pad_id] * (len(seq) + pad)], pad_id, side)
    ids, mask = ids[:1], mask[:1]  # (1, T)
    with torch.no_grad():
        hidden = model.hidden(ids, mask)  # (1, T, D)
        scores = {how: model.head(pool(hidden, mask, how)).item() for how in POOLINGS}
    reads = {"eos": int(last_token_index(mask)[0]), "mean": None, "last": ids.shape[1] - 1}
    return PoolingView(
        tokens=[tokenizer.decode([i]) for i in ids[0].tolist()],
        input_ids=ids[0],
        attention_mask=mask[0],
        token_scores=model.token_scores(ids, mask)[0],
        scores=scores,
        reads=reads,
        side=side,
    )


# ---------------------------------------------------------------------------------------------
# Length bias: when annotators like long answers, so does the reward model (lesson 05)
# ---------------------------------------------------------------------------------------------

STEP = 0.1  # biases are snapped to this grid so each trained model can be cached and reused


@dataclass
class LengthBiasReport:
    """What a reward model trained with annotator ``length_bias`` learned.

    ``accuracy_annotators``: held-out pairs ranked as the (biased) annotators labelled them.
    ``accuracy_quality``: the same held-out pairs ranked by their true quality.
    ``probe_prefers_longer``: fraction of ``length_probe`` pairs (better = shorter) where the
    model scores the longer answer higher. ``correlation``: Pearson correlation of reward with
    length over the held-out responses, whose ``lengths`` (words), ``scores`` and true
    ``quality`` are kept, each (N,).
    """

    length_bias: float
    accuracy_annotators: float
    accuracy_quality: float
    probe_prefers_longer: float
    correlation: float
    lengths: torch.Tensor  # (N,)
    scores: torch.Tensor  # (N,)
    quality: torch.Tensor  # (N,)


def snap_bias(length_bias: float) -> float:
    """Round to the 0.1 grid; outside [0, 1] raises ``ValueError``.

    >>> snap_bias(0.87), snap_bias(0.04)
    (0.9, 0.0)
    """
    if not 0.0 <= length_bias <= 1.0:
        raise ValueError(f"length_bias is a probability in [0, 1], got {length_bias}")
    return round(round(length_bias / STEP) * STEP, 1)


def length_bias_report(length_bias: float, seed: int = 0, n_pairs: int | None = None, n_probe: int = 200) -> LengthBiasReport:
    """Train (or reuse) ``trained_reward_model(length_bias, seed, n_pairs=n_pairs)`` and measure it.

    ``n_pairs=None`` means the course model's own number of pairs (``rmlearn.zoo.N_PAIRS``).
    """
    from .backbone import course_tokenizer
    from .train import evaluate, pair_metrics, scores_by_text
    from .zoo import N_PAIRS, course_data, trained_reward_model

    n_pairs = N_PAIRS if n_pairs is None else n_pairs
    bias = snap_bias(length_bias)
    model = trained_reward_model(length_bias=bias, seed=seed, n_pairs=n_pairs)  # shared with the lesson
    tokenizer = course_tokenizer()
    _, test = course_data(n_pairs, bias, seed)
    probe = length_probe(n_probe, seed=seed + 1)
    responses = [r for p in test for r in (p.chosen, p.rejected)]
    scores = model.score([p.prompt for p in test for _ in (0, 1)], responses, tokenizer)  # (2·N_test,)
    lengths = torch.tensor([num_words(r) for r in responses], dtype=torch.float32)  # (2·N_test,)
    qualities = torch.tensor([quality(p.prompt, r) for p in test for r in (p.chosen, p.rejected)])  # (2·N_test,)
    r_chosen, r_rejected = scores.view(-1, 2).unbind(1)  # (N_test,) each
    # evaluate's accuracy from these scores, on the annotators' labels and on the true quality's
    score_of = scores_by_text(test, r_chosen, r_rejected)
    by_truth = by_quality(test)
    r_better = torch.stack([score_of[p.prompt, p.chosen] for p in by_truth])  # (N_test,)
    r_worse = torch.stack([score_of[p.prompt, p.rejected] for p in by_truth])  # (N_test,)
    return LengthBiasReport(
        length_bias=bias,
        accuracy_annotators=pair_metrics(test, r_chosen, r_rejected)["accuracy"],
        accuracy_quality=pair_metrics(by_truth, r_better, r_worse)["accuracy"],
        probe_prefers_longer=1.0 - evaluate(model, tokenizer, probe)["accuracy"],
        correlation=torch.corrcoef(torch.stack([scores, lengths]))[0, 1].item(),
        lengths=lengths,
        scores=scores,
        quality=qualities,
    )
