"""Training and evaluating the reward model and the value model (lessons 04 and 07).

What makes a step fast: every text is tokenized once up front; each step runs *one* forward over
chosen and rejected (all K responses of a ranking) stacked into one batch; batches are grouped by
length and padded only to their longest sequence; metrics stay on the device and are read back
only when the progress bar refreshes.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .data import Example, PreferencePair, RankedExample, as_pairs
from .inputs import SEPARATOR, encode_many, pad_batch, special_ids
from .losses import (
    centering_penalty,
    listwise_pairwise_loss,
    pairwise_loss,
    plackett_luce_loss,
    ranking_to_pairs,
    segment_regression_loss,
)
from .models import RewardModel, ValueModel, cpu_threads_for

LOSSES = ("pairwise", "listwise", "plackett_luce")


@dataclass
class TrainConfig:
    """Hyper-parameters of ``train_reward_model``; the defaults train the tiny course model well."""

    epochs: int = 4  # passes over the data
    batch_size: int = 16  # preference pairs (or rankings) per step
    lr: float = 3e-3  # AdamW learning rate; use ~1e-5 for a real pretrained backbone
    loss: str = "pairwise"  # "pairwise", "listwise" (all K choose 2 pairs) or "plackett_luce"
    margin: float = 0.0  # m in −log σ(r_c − r_r − m): demand a gap of at least m
    center_coef: float = 0.0  # weight of the centering penalty mean((r_c + r_r)²)
    weight_decay: float = 0.0  # AdamW weight decay
    max_length: int | None = None  # longest sequence; None = the backbone's context length
    seed: int = 0  # shuffling and dropout: the same seed gives the same numbers
    progress: bool = True  # show a tqdm progress bar

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {LOSSES}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.center_coef < 0:
            raise ValueError(f"center_coef must be >= 0, got {self.center_coef}")


@dataclass
class History:
    """Per-step training record: ``loss``, ``accuracy`` (fraction of pairs ranked right), ``epoch``."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole run
    config: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _groups(data: Sequence[Example], loss: str) -> list[tuple[str, tuple[str, ...]]]:
    """(prompt, responses best → worst) per training example; pairwise training flattens rankings."""
    if not data:
        raise ValueError("no training data")
    if loss == "pairwise":
        return [(p.prompt, (p.chosen, p.rejected)) for p in as_pairs(data)]
    groups = []
    for ex in data:
        if isinstance(ex, RankedExample):
            groups.append((ex.prompt, ex.responses))
        elif isinstance(ex, PreferencePair):
            groups.append((ex.prompt, (ex.chosen, ex.rejected)))
        else:
            raise TypeError(f"expected PreferencePair or RankedExample, got {type(ex).__name__}")
    return groups


def _batches(lengths: list[int], sizes: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-grouped batches: shuffle, sort within chunks of 50 batches by length, shuffle batches.

    Examples in one batch share their number of responses K (``sizes``).
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    chunk = 50 * batch_size
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: (sizes[i], lengths[i]))
        for k in sorted({sizes[i] for i in part}):
            same_k = [i for i in part if sizes[i] == k]
            batches += [same_k[j:j + batch_size] for j in range(0, len(same_k), batch_size)]
    rng.shuffle(batches)
    return batches


def _group_loss(scores: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and accuracy for scores (B, K) ordered best → worst."""
    better, worse = zip(*ranking_to_pairs(range(scores.shape[1])))
    r_better, r_worse = scores[:, list(better)], scores[:, list(worse)]  # (B, K(K-1)/2)
    if cfg.loss == "plackett_luce":
        loss = plackett_luce_loss(scores)
    elif cfg.loss == "listwise":
        loss = listwise_pairwise_loss(scores)
    else:  # pairwise: K == 2
        loss = pairwise_loss(scores[:, 0], scores[:, 1], cfg.margin)
    if cfg.center_coef:
        loss = loss + cfg.center_coef * centering_penalty(r_better, r_worse)
    accuracy = (r_better > r_worse).float().mean()
    return loss, accuracy


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="step")


def train_reward_model(
    model: RewardModel,
    tokenizer: Any,
    data: Sequence[Example],
    **config: Any,
) -> History:
    """Train ``model`` in place on preference pairs or rankings; returns the per-step ``History``.

    Keywords are the fields of ``TrainConfig`` (``epochs``, ``batch_size``, ``lr``, ``loss``,
    ``margin``, ``center_coef``, ``weight_decay``, ``max_length``, ``seed``, ``progress``).

    >>> from rmlearn import RewardModel, tiny_backbone, course_tokenizer, synthetic_preferences
    >>> model = RewardModel(tiny_backbone(seed=0))
    >>> history = train_reward_model(model, course_tokenizer(), synthetic_preferences(32), epochs=1, progress=False)
    >>> len(history)                                          # 32 pairs / batches of 16
    2
    """
    cfg = TrainConfig(**config)
    if cfg.loss != "pairwise" and cfg.margin:
        raise ValueError("margin is defined for the pairwise loss only")
    _, pad = special_ids(tokenizer)
    max_length = cfg.max_length or model.max_length
    groups = _groups(data, cfg.loss)
    prompts = [prompt for prompt, responses in groups for _ in responses]
    flat = encode_many(tokenizer, prompts, [r for _, responses in groups for r in responses], max_length)
    encoded, at = [], 0  # regroup: one list of K id lists per example
    for _, responses in groups:
        encoded.append(flat[at:at + len(responses)])
        at += len(responses)
    lengths = [max(len(s) for s in seqs) for seqs in encoded]
    sizes = [len(seqs) for seqs in encoded]
    device = next(model.parameters()).device

    rng = random.Random(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    history = History(config=asdict(cfg))
    steps_per_epoch = len(_batches(lengths, sizes, cfg.batch_size, random.Random(0)))
    losses, accuracies = [], []
    start = time.perf_counter()
    model.train()
    with torch.random.fork_rng(devices=[]), cpu_threads_for(model), \
            _progress(steps_per_epoch * cfg.epochs, cfg.progress, "reward model") as bar:
        torch.manual_seed(cfg.seed)  # dropout, for backbones that have it
        for epoch in range(cfg.epochs):
            for batch in _batches(lengths, sizes, cfg.batch_size, rng):
                k = sizes[batch[0]]
                ids, mask = pad_batch([s for i in batch for s in encoded[i]], pad)  # (B*K, T)
                scores = model(ids.to(device), mask.to(device)).view(len(batch), k)  # (B, K)
                loss, accuracy = _group_loss(scores, cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
                accuracies.append(accuracy)
                history.epoch.append(epoch)
                bar.update()
                if cfg.progress and (bar.n % 10 == 0 or bar.n == bar.total):  # the only host sync
                    bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{accuracy.item():.2f}")
    model.eval()
    history.loss = torch.stack(losses).float().cpu().tolist()
    history.accuracy = torch.stack(accuracies).float().cpu().tolist()
    history.seconds = time.perf_counter() - start
    if not all(math.isfinite(x) for x in history.loss):
        raise FloatingPointError("the training loss became NaN or infinite; lower lr")
    return history


def evaluate(model: RewardModel, tokenizer: Any, data: Sequence[Example], batch_size: int = 64) -> dict[str, float]:
    """Ranking metrics on held-out data (rankings count all their pairs).

    Returns ``accuracy`` (fraction of pairs with r_chosen > r_rejected), ``mean_gap``
    (mean r_chosen − r_rejected; not "margin", which names the loss's m), ``mean_chosen``, ``mean_rejected``, ``std_reward`` and ``num_pairs``.
    """
    pairs = as_pairs(data)
    if not pairs:
        raise ValueError("no evaluation data")
    prompts = [p.prompt for p in pairs]
    r_chosen = model.score(prompts, [p.chosen for p in pairs], tokenizer, batch_size)
    r_rejected = model.score(prompts, [p.rejected for p in pairs], tokenizer, batch_size)
    return {
        "accuracy": (r_chosen > r_rejected).float().mean().item(),
        "mean_gap": (r_chosen - r_rejected).mean().item(),
        "mean_chosen": r_chosen.mean().item(),
        "mean_rejected": r_rejected.mean().item(),
        "std_reward": torch.cat([r_chosen, r_rejected]).std().item(),
        "num_pairs": len(pairs),
    }


def train_value_model(
    value_model: ValueModel,
    reward_model: RewardModel,
    tokenizer: Any,
    data: Sequence[Example],
    *,
    epochs: int = 4,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train the critic to predict the reward model's score from every prefix of a response.

    With the reward given once, at the end (γ = 1, no per-token penalties), the expected future
    reward at each state is the final score r(x, y), so every state from the end of the prompt to
    EOS gets the target r. Loss: squared error averaged over those states. Every response in
    ``data`` (chosen and rejected, all ranked ones) is used.
    """
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress)
    texts = sorted({(p.prompt, r) for p in as_pairs(data) for r in (p.chosen, p.rejected)})
    targets = reward_model.score([t[0] for t in texts], [t[1] for t in texts], tokenizer)  # (N,)
    max_length = value_model.max_length
    encoded = encode_many(tokenizer, [p for p, _ in texts], [r for _, r in texts], max_length)
    # states = the last prompt token, every response token, and EOS
    n_states = [min(len(ids), len(tokenizer(SEPARATOR + r, add_special_tokens=False)["input_ids"]) + 2)
                for ids, (_, r) in zip(encoded, texts)]
    _, pad = special_ids(tokenizer)
    rng = random.Random(cfg.seed)
    optimizer = torch.optim.AdamW(value_model.parameters(), lr=cfg.lr, foreach=True)
    history = History(config=asdict(cfg))
    losses = []
    start = time.perf_counter()
    value_model.train()
    lengths = [len(s) for s in encoded]
    n_batches = len(_batches(lengths, [1] * len(texts), batch_size, random.Random(0)))
    with torch.random.fork_rng(devices=[]), cpu_threads_for(value_model), \
            _progress(n_batches * epochs, progress, "value model") as bar:
        torch.manual_seed(seed)
        for epoch in range(epochs):
            for batch in _batches(lengths, [1] * len(texts), batch_size, rng):
                ids, mask = pad_batch([encoded[i] for i in batch], pad)  # (B, T)
                lens = mask.sum(1, keepdim=True)  # (B, 1)
                pos = torch.arange(ids.shape[1]).unsqueeze(0)  # (1, T)
                states = (pos < lens) & (pos >= lens - torch.tensor([[n_states[i]] for i in batch]))  # (B, T)
                values = value_model(ids, mask)  # (B, T)
                target = targets[batch].unsqueeze(1).expand_as(values)  # (B, T)
                loss = segment_regression_loss(values[states], target[states])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
                history.epoch.append(epoch)
                bar.update()
    value_model.eval()
    history.loss = torch.stack(losses).cpu().tolist()
    history.seconds = time.perf_counter() - start
    return history
