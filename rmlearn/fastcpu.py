"""How training and scoring use the CPU: the thread policy and the fast path (``TrainConfig.threads``).

``train.py`` is the training loop; this module decides how its work runs on the CPU's cores.

- **The thread policy** (``one_cpu_thread_if_small``): a model under ``SMALL_MODEL`` parameters on
  the CPU runs on one thread. Its ops are too small to split, and a thread that waits for a busy
  core stalls every op: with two spinning processes on 2 cores, 10 training steps of the course
  model took 2.13 s on 2 threads and 0.55 s on one (3.8×, docs/benchmarks.md). One thread also
  gives the same numbers whatever the core count.
- **The fast path** (the default, ``threads="auto"`` or a number): each batch of a small CPU model
  is cut into ``TrainConfig.shards`` shards, whose forward and backward run side by side on one
  thread each (``sharded``), and transformers' Python-written tanh-GELU is swapped for torch's fused
  kernel during training (``fused_activations``). The numbers depend on the shard count, which is
  part of the config, never on the thread count, the core count or the load: threads only execute
  the shards, and the shards' gradients are added in shard order.
- **The reference path** (``threads=None``): one forward per batch on one thread, the backbone's own
  code. The course's shipped models were trained on it (``rmlearn.zoo.COURSE_RECIPE``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch
from torch import nn

SMALL_MODEL = 5_000_000  # parameters; below this a CPU model runs on one thread (or one thread per shard)
TANH_GELUS = ("NewGELUActivation", "FastGELUActivation")  # transformers' tanh-GELU written in Python


def is_small_cpu_model(model: nn.Module) -> bool:
    """A model on the CPU with fewer than ``SMALL_MODEL`` parameters: its ops are too small to split over threads."""
    params = list(model.parameters())
    return params[0].device.type == "cpu" and sum(p.numel() for p in params) < SMALL_MODEL


@contextmanager
def one_cpu_thread_if_small(model: nn.Module) -> Iterator[int]:
    """Run a small CPU model on one thread inside the ``with`` block; torch's thread count is restored after.

    Larger models and GPUs are left alone. Yields torch's thread count as found.

    >>> import torch
    >>> from rmlearn import RewardModel, tiny_backbone
    >>> before = torch.get_num_threads()
    >>> with one_cpu_thread_if_small(RewardModel(tiny_backbone())):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    before = torch.get_num_threads()
    if is_small_cpu_model(model) and before > 1:
        torch.set_num_threads(1)
    try:
        yield before
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def batches_side_by_side(model: nn.Module, n_batches: int, threads: int) -> Iterator[Callable]:
    """Yields ``run(fn, batches)`` → ``[fn(b) for b in batches]``, for a small CPU model (inside
    ``one_cpu_thread_if_small``) computed side by side on one thread per usable core, at most
    ``threads`` (torch's count as the caller found it); in this thread otherwise. Each batch runs on one thread, so
    its numbers do not depend on how many run at once. Scoring uses it: against a plain transformers
    forward on torch's 2 threads, one thread per batch wins on 2 cores (docs/benchmarks.md).

    >>> from rmlearn import RewardModel, tiny_backbone
    >>> with batches_side_by_side(RewardModel(tiny_backbone()), 3, threads=2) as run:
    ...     run(lambda x: x * 2, [1, 2, 3])
    [2, 4, 6]
    """
    threads = min(n_batches, threads, usable_cores()) if is_small_cpu_model(model) else 1
    if threads <= 1:
        yield lambda fn, batches: [fn(b) for b in batches]
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="rmlearn-score") as pool:
        yield lambda fn, batches: list(pool.map(fn, batches))


def usable_cores() -> int:
    """The cores this process may run on (``os.sched_getaffinity``), whatever their load right now."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def cpu_threads(model: nn.Module, threads: int | str | None, shards: int,
                shardable: bool) -> Iterator[tuple[int, int]]:
    """Set torch's CPU threads for a training run; yields ``(threads, shards)`` as used, and restores
    torch's thread count afterwards.

    ``threads=None``, the reference path: ``one_cpu_thread_if_small``, one shard. Otherwise a small
    CPU model whose batches can be cut (``shardable``: no dropout, no fp16 loss scaling, no DDP) runs
    ``shards`` shards on ``threads`` threads, one shard per thread at a time, with torch's own count
    at 1: ``"auto"`` takes one thread per shard, at most the usable cores and torch's thread count
    (``OMP_NUM_THREADS``, ``torch.set_num_threads``). Any other model gets torch's own threading,
    over ``threads`` threads (``"auto"``: torch's count as found), one shard.

    >>> from rmlearn import RewardModel, tiny_backbone
    >>> with cpu_threads(RewardModel(tiny_backbone()), 1, shards=2, shardable=True) as used:
    ...     used
    (1, 2)
    """
    before = torch.get_num_threads()
    if threads is None or next(model.parameters()).device.type != "cpu":
        with one_cpu_thread_if_small(model):
            yield torch.get_num_threads(), 1
        return
    if shardable and shards > 1 and is_small_cpu_model(model):
        n = min(shards, before, usable_cores()) if threads == "auto" else min(shards, threads)
        torch.set_num_threads(1)
    else:
        shards, n = 1, before if threads == "auto" else threads
        torch.set_num_threads(n)
    try:
        yield n, shards
    finally:
        torch.set_num_threads(before)


@contextmanager
def fused_activations(model: nn.Module) -> Iterator[None]:
    """Train with torch's fused tanh-GELU kernel in place of transformers' Python-written ones.

    GPT-2 (and Phi, GPT-J, …) compute GELU's tanh approximation in Python, eight tensor ops
    forward and more backward, each a pass over the MLP's activations: a quarter of a training
    step of the course model (10 steps take 0.34 s with it, 0.27 s with the fused kernel).
    ``nn.GELU(approximate="tanh")`` computes the same function in one kernel; the two differ by
    float rounding only (at most 4.8e-7 on [-10, 10]). The modules are put back afterwards, so
    scoring keeps the backbone's own code (exact parity with transformers).
    """
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ in TANH_GELUS and type(child).__module__ == "transformers.activations":
                setattr(parent, name, nn.GELU(approximate="tanh"))
                swapped.append((parent, name, child))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def has_dropout(model: nn.Module) -> bool:
    """Whether training draws random numbers (dropout): shards running side by side would then
    take them from torch's one generator in a racing order, and the numbers would not repeat."""
    if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()):
        return True
    # some backbones call F.dropout with a rate from their config (Llama's attention_dropout, OPT's
    # dropout); heads that rmlearn replaces (GPT-2's summary_*, classifier_dropout) do not count
    configs = [m.config for m in model.modules() if hasattr(m, "config") and hasattr(m.config, "to_dict")]
    return any(isinstance(v, float) and v > 0 and ("dropout" in k or "pdrop" in k)
               and not k.startswith(("summary", "classifier"))
               for config in configs[:1] for k, v in config.to_dict().items())


def cut(batch: list[int], n: int) -> list[list[int]]:
    """``batch`` in ``n`` contiguous shards of nearly equal size (no empty one).

    >>> cut([0, 1, 2, 3, 4, 5, 6], 3)
    [[0, 1], [2, 3, 4], [5, 6]]
    """
    ends = [round(len(batch) * j / n) for j in range(n + 1)]
    return [batch[a:b] for a, b in zip(ends, ends[1:]) if b > a]


@contextmanager
def sharded(model: nn.Module, shards: int, threads: int, batch_loss: Callable,
            weight: Callable[[list[int]], float], autocast: Callable = contextlib.nullcontext) -> Iterator[Callable]:
    """Yields ``run_batch(batch, in_step, scaler, last) -> (loss, accuracy)`` like ``train._shards``,
    running each batch as ``shards`` shards on ``threads`` threads (torch's kernels let go of
    Python's lock, so the shards' ops run side by side).

    Each shard's loss is weighted by its share of the batch, weight(shard)/weight(batch), and its
    gradients returned; they are added in shard order, so the numbers do not depend on which thread
    finishes first, nor on how many threads there are. Against torch splitting every op over 2
    threads, on 2 idle cores this takes the same time and a sixth less CPU, and when another process
    takes one of the cores mid-run it is about 2× faster: a shard never waits for the other inside
    an op, only at the end of the batch (docs/benchmarks.md).
    """
    params = [p for p in model.parameters() if p.requires_grad]

    def shard(part: list[int], share: float) -> tuple[torch.Tensor, torch.Tensor | None, tuple]:
        with autocast():  # autocast is per thread
            loss, accuracy = batch_loss(model, part)
        grads = torch.autograd.grad(loss * share, params, allow_unused=True)
        return loss.detach() * share, (accuracy * share if accuracy is not None else None), grads

    def run_batch(batch: list[int], in_step: int, scaler, last: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        parts = cut(batch, shards)
        total = sum(weight(part) for part in parts)
        results = list(pool.map(lambda part: shard(part, weight(part) / total), parts))
        loss = sum(r[0] for r in results)  # in shard order, whichever thread finished first
        accuracy = None if results[0][1] is None else sum(r[1] for r in results)
        for k, p in enumerate(params):
            grads = [r[2][k] for r in results if r[2][k] is not None]
            if grads:
                g = sum(grads) / in_step if in_step > 1 else sum(grads)
                p.grad = g if p.grad is None else p.grad + g
        return loss, accuracy

    with ThreadPoolExecutor(threads, thread_name_prefix="rmlearn-shard") as pool:
        yield run_batch
