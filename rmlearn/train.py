"""Training and evaluating the reward model and the value model (lessons 04 and 07).

What makes a step fast: every text is tokenized once up front; each step runs *one* forward over
chosen and rejected (all K responses of a ranking) stacked into one batch; batches are grouped by
length and padded only to their longest sequence; metrics stay on the device and are read back
only when the progress bar refreshes. How the CPU's cores run each batch (shards side by side,
fused activations, the thread count) is ``rmlearn.fastcpu``'s job, chosen by ``threads``.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import PRECISIONS, TrainConfig
from .data import Example, PreferencePair, RankedExample, as_pairs, refuse_ties, split
from .fastcpu import cpu_threads, fused_activations, has_dropout, one_cpu_thread_if_small, sharded
from .inputs import SEPARATOR, encode_many, pad_batch, special_ids
from .losses import (
    all_pairs_loss,
    centering_penalty,
    pairwise_loss,
    plackett_luce_loss,
    ranking_to_pairs,
    segment_regression_loss,
    step_loss,
)
from .models import ProcessRewardModel, RewardModel, ValueModel


@dataclass
class History:
    """Training record: per batch ``loss``, ``accuracy`` (fraction of pairs ranked right), ``epoch``;
    per epoch ``eval_accuracy`` on the held-out split (when ``eval_split`` is set) and ``eval_gaps``,
    its score gaps r_chosen − r_rejected pair by pair (lesson 09 reads calibration from them)."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    eval_gaps: list[list[float]] = field(default_factory=list)  # per epoch: (N,) held-out gaps
    too_long: int = 0  # examples longer than max_length (truncated or dropped, see config["too_long"])
    threads: int = 0  # CPU threads used (on the sharded fast path they do not change the numbers)
    shards: int = 1  # each batch ran as this many shards side by side, one thread each (fastcpu.cpu_threads)
    optimizer_steps: int = 0  # optimizer updates (batches ÷ grad_accum, rounded up per epoch)
    checkpoints: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole run
    config: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, Any] | None = field(default=None, repr=False, compare=False)  # AdamW state → optimizer.pt (del to free it)

    def __len__(self) -> int:
        return len(self.loss)


def _groups(data: Sequence[Example], loss: str) -> tuple[list[tuple[str, tuple[str, ...]]], list[PreferencePair | None]]:
    """(prompt, responses best → worst) per training example, and the pair each group came from (None
    for a ranking the ranking losses see whole); pairwise training flattens rankings."""
    if not data:
        raise ValueError("no training data")
    groups, pairs = [], []
    for ex in data:
        if isinstance(ex, RankedExample) and loss != "pairwise":
            groups.append((ex.prompt, ex.responses))  # all_pairs and plackett_luce see the whole ranking
            pairs.append(None)
        else:  # a pair, or a ranking's K(K-1)/2 pairs; as_pairs also rejects anything else
            flat = as_pairs([ex])
            groups += [(p.prompt, (p.chosen, p.rejected)) for p in flat]
            pairs += flat
    return groups, pairs


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


def _pair_margins(pairs: Sequence[PreferencePair | None], cfg: TrainConfig) -> list[float] | None:
    """Each group's m for the pairwise loss (``pairs`` from ``_groups``): ``cfg.margin`` plus the pair's
    own ``margin`` (TRL's column, or a rating: ``PreferencePair.margin``); None when no pair has one.
    Pairs labelled as ties are refused: Bradley–Terry has no tie outcome."""
    refuse_ties(pairs, "the reward model's Bradley–Terry loss")
    own = [0.0 if p is None else p.margin for p in pairs]
    if not any(own):
        return None
    if cfg.loss != "pairwise":
        raise ValueError(f"pairs carry their own margins, which only the pairwise loss uses; loss={cfg.loss!r}")
    return [cfg.margin + m for m in own]


def _group_loss(scores: torch.Tensor, cfg: TrainConfig,
                margins: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and accuracy for scores (B, K) ordered best → worst; ``margins`` (B,): each pair's m."""
    better, worse = zip(*ranking_to_pairs(range(scores.shape[1])))
    r_better, r_worse = scores[:, list(better)], scores[:, list(worse)]  # (B, K(K-1)/2)
    if cfg.loss == "plackett_luce":
        loss = plackett_luce_loss(scores)
    elif cfg.loss == "all_pairs":
        loss = all_pairs_loss(scores)
    else:  # pairwise: K == 2
        loss = pairwise_loss(scores[:, 0], scores[:, 1], cfg.margin if margins is None else margins)
    if cfg.center_coef:
        loss = loss + cfg.center_coef * centering_penalty(r_better, r_worse)
    accuracy = (r_better > r_worse).float().mean()
    return loss, accuracy


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="step")


def _encode_groups(tokenizer: Any, groups: list[tuple[str, tuple[str, ...]]], max_length: int | None,
                   policy: str) -> tuple[list[list[list[int]]], list[int], int]:
    """Token ids per example (one list of K id lists each), the indices of the examples kept, and
    how many examples had a sequence longer than ``max_length`` (truncated or dropped by ``policy``)."""
    prompts = [prompt for prompt, responses in groups for _ in responses]
    responses = [r for _, rs in groups for r in rs]
    starts = [0]  # example i's sequences are flat[starts[i]:starts[i + 1]]
    for _, rs in groups:
        starts.append(starts[-1] + len(rs))

    def encoded(limit: int | None) -> list[list[list[int]]]:  # inputs.encode_many decides what truncation keeps
        flat = encode_many(tokenizer, prompts, responses, limit)
        return [flat[a:b] for a, b in zip(starts, starts[1:])]

    full = encoded(None)
    long = [i for i, seqs in enumerate(full) if max_length and max(len(s) for s in seqs) > max_length]
    keep = list(range(len(groups)))
    if long and policy == "drop":
        keep = sorted(set(keep) - set(long))
        if not keep:
            raise ValueError(f"every example is longer than max_length={max_length}; nothing left to train on")
    elif long:
        full = encoded(max_length)
    return [full[i] for i in keep], keep, len(long)


def _mixed_precision(model: nn.Module, precision: str | None) -> tuple[torch.dtype | None, dict]:
    """fp32 master weights for the *trainable* parameters only: upcast those that are fp16/bf16 to
    fp32, and return the dtype to autocast the forward pass to (None = plain fp32) and the
    parameters upcast, with their dtype (``_restore_dtypes`` puts them back).

    Updates of size lr·1 on a weight w vanish when rounded back to bf16 (8 significant bits) unless
    |w| < ~256·lr, and fp16 overflows past 65504: so what the optimizer updates lives in fp32 and
    only the forward's matmuls run in low precision (what ``torch.autocast`` does). Frozen
    parameters (a LoRA backbone's base weights) stay in their dtype: no fp32 copy of what is not
    trained. ``precision`` None follows the model: an fp16/bf16 backbone is trained this way, an
    fp32 one in plain fp32. Memory per parameter: docs/practitioners.md.
    """
    low = [p.dtype for p in model.parameters() if p.dtype in (torch.float16, torch.bfloat16)]
    if precision is None:  # follow the model: autocast to its low-precision dtype, if it has one
        amp = low[0] if low else None
    else:  # fp32: no autocast
        amp = None if precision == "fp32" else getattr(torch, PRECISIONS[precision])
    upcast = {p: p.dtype for p in model.parameters() if p.requires_grad and p.dtype in (torch.float16, torch.bfloat16)}
    for p in upcast:
        p.data = p.data.float()  # the same Parameter object (hooks, optimizer), now fp32
    return amp, upcast


def _restore_dtypes(upcast: dict) -> None:
    for p, dtype in upcast.items():
        p.data = p.data.to(dtype)


def _non_finite(value: float, step: int, epoch: int, cfg: TrainConfig, amp: torch.dtype | None) -> FloatingPointError:
    """The error for a NaN/inf loss, naming the likely cause."""
    causes = []
    if amp == torch.float16:
        causes.append("fp16 overflow (fp16 stops at 65504): train with precision='bf16' or 'fp32'")
    if step == 1:
        causes.append("bad data or a broken model: the weights had not been updated yet, so lr is not "
                      "the cause; check this batch for empty or extremely long texts")
    else:
        causes.append(f"lr too high (lr={cfg.lr:g}): try a 10x smaller lr, or max_grad_norm=1.0")
        causes.append("bad data in this batch (an empty or extremely long text)")
    return FloatingPointError(f"the training loss is {value} at step {step} (epoch {epoch + 1}); training "
                              "stopped there. Likely cause: " + "; or ".join(causes))


def _lr_factor(cfg: TrainConfig, total_steps: int):
    """Multiplier of lr at optimizer step s: linear warm-up, then constant, linear or cosine decay."""
    warmup = cfg.warmup_steps or round(cfg.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if cfg.lr_schedule == "constant":
            return 1.0
        done = min(1.0, (step - warmup) / max(1, total_steps - warmup))  # 0 → 1, never past
        return 1.0 - done if cfg.lr_schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))
    return factor


def _fit(model: nn.Module, cfg: TrainConfig, lengths: list[int], sizes: list[int], batch_loss: Callable,
         desc: str, history: History, tokenizer: Any = None, eval_data: Sequence[Example] = (),
         weight: Callable[[list[int]], float] = len) -> History:
    """The one training loop, for both objectives.

    ``batch_loss(model, batch)`` gets the model to call (under DDP, its wrapper) and a list of
    example indices, and returns ``(loss, accuracy or None)``, both means over the batch in which
    each example counts ``weight(example's indices)``: then a batch cut into shards has the loss
    Σ weight(shard)·loss(shard) / weight(batch) (how a small CPU model uses several threads,
    ``fastcpu.sharded``, and how DDP processes split a batch, ``_accelerator``). Batches are
    length-grouped (``_batches``); ``grad_accum`` batches make one optimizer step. The model comes
    back in eval mode; after an error (a non-finite loss) also in the dtype it came in.
    """
    _check_trainable(model)
    amp, upcast = _mixed_precision(model, cfg.precision)
    try:
        with _gradient_checkpointing(model, cfg.gradient_checkpointing):
            _loop(model, cfg, lengths, sizes, batch_loss, desc, history, tokenizer, eval_data, weight, amp)
    except BaseException:
        model.eval()
        _restore_dtypes(upcast)  # as it came in: the fp32 masters of a failed run are of no use
        raise
    model.eval()
    _warn_if_diverged(history.loss)
    return history


def _loop(model: nn.Module, cfg: TrainConfig, lengths: list[int], sizes: list[int], batch_loss: Callable,
          desc: str, history: History, tokenizer: Any, eval_data: Sequence[Example],
          weight: Callable[[list[int]], float], amp: torch.dtype | None) -> None:
    accelerator = _accelerator(model)  # None unless started by `accelerate launch` / torchrun
    if accelerator is not None:
        model.to(accelerator.device)  # this process's GPU (or the CPU)
    device = next(model.parameters()).device
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None  # fp16 gradients underflow
    rng = random.Random(cfg.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]  # a LoRA backbone: adapters and head
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    if cfg.resume_from:
        _load_optimizer_state(optimizer, scaler, cfg)
    net = model
    if accelerator is not None:  # DDP (or FSDP / DeepSpeed as configured): gradients averaged over processes
        net, optimizer = accelerator.prepare(model, optimizer)
    plan = [_batches(lengths, sizes, cfg.batch_size, rng) for _ in range(cfg.epochs)]  # the batches of every epoch
    total = sum(math.ceil(len(batches) / cfg.grad_accum) for batches in plan)  # optimizer steps
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(cfg, total))
    losses, accuracies, step = [], [], 0
    start = time.perf_counter()
    model.train()
    shardable = scaler is None and accelerator is None and not has_dropout(model)
    # threads=None is the course's reference path: one forward per batch, the backbone's own code
    fused = fused_activations(model) if cfg.threads is not None else contextlib.nullcontext()
    with _own_rng(cfg.seed, device), fused, \
            cpu_threads(model, cfg.threads, cfg.shards, shardable) as (history.threads, history.shards), \
            _shards(net, history.shards, history.threads, batch_loss, weight, device, amp, accelerator) as run_batch, \
            _progress(sum(map(len, plan)), cfg.progress and (accelerator is None or accelerator.is_main_process),
                      desc) as bar:
        for epoch, batches in enumerate(plan):
            for i, batch in enumerate(batches):
                first = i - i % cfg.grad_accum  # first batch of this optimizer step
                in_step = min(cfg.grad_accum, len(batches) - first)
                last = i == first + in_step - 1
                if i == first:
                    optimizer.zero_grad(set_to_none=True)
                loss, accuracy = run_batch(batch, in_step, scaler, last)  # forward and backward
                if (device.type == "cpu" or last) and not _all_finite(loss, losses, first - i, accelerator):
                    # stop before a NaN reaches the weights (on a GPU once per optimizer step: a host sync)
                    bad = torch.stack([*losses[len(losses) + first - i:], loss]).float().cpu()
                    at = int((~torch.isfinite(bad)).nonzero()[0])
                    raise _non_finite(bad[at].item(), len(losses) + first - i + at + 1, epoch, cfg, amp)
                if last:
                    step += 1
                    _optimizer_step(net, optimizer, scaler, cfg.max_grad_norm)
                    schedule.step()
                    if cfg.save_dir and cfg.save_every and step % cfg.save_every == 0:
                        history.checkpoints.append(_checkpoint(model, tokenizer, cfg.save_dir, step, optimizer,
                                                               scaler, accelerator))
                losses.append(loss.detach())
                if accuracy is not None:
                    accuracies.append(accuracy)
                history.epoch.append(epoch)
                bar.update()
                # the only host sync; under DDP a process holds only its share of the loss: no postfix
                if not bar.disable and accelerator is None and (bar.n % 10 == 0 or bar.n == bar.total):
                    bar.set_postfix(loss=f"{loss.item():.3f}",
                                    **({"acc": f"{accuracy.item():.2f}"} if accuracy is not None else {}))
            if eval_data:
                gaps = pair_gaps(model, tokenizer, eval_data)  # (N,) as evaluate() scores them
                history.eval_accuracy.append((gaps > 0).float().mean().item())
                history.eval_gaps.append(gaps.tolist())
                model.train()
            if cfg.save_dir and not cfg.save_every:
                history.checkpoints.append(_checkpoint(model, tokenizer, cfg.save_dir, step, optimizer, scaler,
                                                       accelerator))
    history.loss = _gathered(losses, accelerator)
    if accuracies:
        history.accuracy = _gathered(accuracies, accelerator)
    history.optimizer_steps = step
    history.optimizer_state = _optimizer_state(optimizer, scaler)
    history.seconds = time.perf_counter() - start


def _all_finite(loss: torch.Tensor, losses: list[torch.Tensor], back: int, accelerator) -> bool:
    """Whether this batch's loss, and the step's earlier ones (``back`` ≤ 0 of ``losses``), are finite:
    on every process under DDP (one stopping alone would leave the others waiting)."""
    ok = torch.isfinite(torch.stack([*losses[len(losses) + back:], loss.detach()])).all()
    if accelerator is not None:
        ok = accelerator.reduce(ok.float().reshape(1), "sum") == accelerator.num_processes
    return bool(ok)


def _gathered(values: list[torch.Tensor], accelerator) -> list[float]:
    """Per-batch values as floats; under DDP each process holds its share of a batch: add them up."""
    stacked = torch.stack(values).float()
    if accelerator is not None:
        stacked = accelerator.reduce(stacked, "sum")
    return stacked.cpu().tolist()


@contextmanager
def _own_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed dropout with ``seed`` and give the caller's generators back afterwards: the CPU's, and
    the training device's when it is a GPU (``torch.manual_seed`` would reseed every GPU's)."""
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)  # what torch.manual_seed does for the CPU
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


DIVERGED = 1e3  # a loss this many times its first value (and above 1e3) has diverged


def _warn_if_diverged(losses: list[float]) -> None:
    """Warn when the loss exploded and stayed finite (e.g. 6e8): training diverged without a NaN."""
    if not losses:
        return
    limit = DIVERGED * max(1.0, abs(losses[0]))
    at = next((i for i, value in enumerate(losses) if value > limit), None)
    if at is not None:
        warnings.warn(f"the training loss rose to {losses[at]:.3g} at step {at + 1} (it started at "
                      f"{losses[0]:.3g}): training diverged. Try a 10x smaller lr, max_grad_norm=1.0, or "
                      "warmup_steps", RuntimeWarning, stacklevel=4)


def _check_trainable(model: nn.Module) -> None:
    """A quantised backbone (bitsandbytes, GPTQ, AWQ, quanto…) trains only through adapters."""
    backbone = getattr(model, "backbone", model)
    quantizer = getattr(backbone, "hf_quantizer", None)
    quantized = quantizer is not None or getattr(backbone.config, "quantization_config", None) is not None
    if quantized and not any(p.requires_grad for n, p in backbone.named_parameters() if "lora_" in n):
        method = getattr(getattr(backbone.config, "quantization_config", None), "quant_method", None) or "quantised"
        method = getattr(method, "value", method)  # transformers' QuantizationMethod enum
        raise ValueError(f"the backbone is quantised ({method}): its weights cannot be trained directly. Wrap it "
                         "with LoRA adapters first (peft.get_peft_model(backbone, LoraConfig(...))); only the "
                         "adapters and the head are then trained")


@contextmanager
def _gradient_checkpointing(model: nn.Module, enabled: bool) -> Iterator[None]:
    """transformers' gradient checkpointing on the backbone for the run (off again afterwards)."""
    backbone = getattr(model, "backbone", model)
    if not enabled:
        yield
        return
    if not getattr(backbone, "supports_gradient_checkpointing", False):
        raise ValueError(f"{type(backbone).__name__} does not support gradient checkpointing")
    kwargs = {"use_reentrant": False}  # works with frozen embeddings (LoRA) too
    if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5.x's name
        backbone.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    try:
        yield
    finally:
        (getattr(backbone, "activation_checkpointing_disable", None) or backbone.gradient_checkpointing_disable)()


def _accelerator(model: nn.Module):
    """Hugging Face Accelerate's ``Accelerator`` when this process is one of several (``accelerate
    launch``, ``torchrun``: ``WORLD_SIZE`` > 1), else None. It sets up the process group and wraps
    the model in DDP (FSDP, DeepSpeed: as ``accelerate config`` says); rmlearn only gives each
    process its share of every batch (``_shards``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    try:
        from accelerate import Accelerator
    except ImportError as err:
        raise ImportError("training in several processes (WORLD_SIZE > 1) runs on Hugging Face Accelerate: "
                          "pip install accelerate") from err
    accelerators = getattr(torch, "accelerator", None)  # torch >= 2.6; CUDA before
    on_gpu = accelerators.is_available() if accelerators is not None else torch.cuda.is_available()
    return Accelerator(cpu=not on_gpu)  # cpu=True: processes on CPUs talk over gloo


OPTIMIZER_FILE = "optimizer.pt"


def _optimizer_state(optimizer, scaler) -> dict[str, Any]:
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps it
    return {"optimizer": inner.state_dict(), **({"scaler": scaler.state_dict()} if scaler else {})}


def save_optimizer_state(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``History.optimizer_state`` to ``directory/optimizer.pt``, for ``resume_from=directory``."""
    path = Path(directory) / OPTIMIZER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _load_optimizer_state(optimizer, scaler, cfg: TrainConfig) -> None:
    """AdamW's moments and step counts from ``cfg.resume_from``; the lr is this run's (``cfg.lr``)."""
    path = Path(cfg.resume_from) / OPTIMIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"resume_from: no {OPTIMIZER_FILE} in {cfg.resume_from}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except ValueError as err:
        raise ValueError(f"{path} does not match this model's trainable parameters: {err}") from None
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr
        group.pop("initial_lr", None)
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])


@contextmanager
def _shards(model: nn.Module, n: int, threads: int, batch_loss: Callable, weight: Callable[[list[int]], float],
            device: torch.device, amp: torch.dtype | None, accelerator=None) -> Iterator[Callable]:
    """Yields ``run_batch(batch, in_step, scaler, last) -> (loss, accuracy)``: the forward and
    backward of one batch, its gradients (÷ ``in_step``, the batches per optimizer step) added to
    ``.grad``; ``last``: the step's last batch.

    n == 1: one forward, ``loss.backward()``. n > 1: the batch is cut into n shards that run side by
    side on ``threads`` threads, their gradients added in shard order (``fastcpu.sharded``). Under DDP
    (``accelerator``) each of the W processes takes its cut of the batch; DDP averages the W
    gradients, so each process scales its loss by W·weight(cut)/weight(batch): the average is the
    whole batch's gradient, and the losses (added over processes at the end) its loss.
    """
    def autocast():
        return torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()

    if accelerator is not None:
        rank, world = accelerator.process_index, accelerator.num_processes

        def run_batch(batch: list[int], in_step: int, scaler, last: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
            ends = [round(len(batch) * j / world) for j in range(world + 1)]
            part = batch[ends[rank]:ends[rank + 1]]
            share = weight(part) / weight(batch) if part else 0.0  # a batch smaller than W: some get none
            sync = contextlib.nullcontext() if last else accelerator.no_sync(model)  # sync once per step
            with sync:
                with autocast():
                    loss, accuracy = batch_loss(model, part or batch[:1])  # every process runs a backward
                scaled = loss * (share * world / in_step)
                (scaler.scale(scaled) if scaler else scaled).backward()
            return loss.detach() * share, (accuracy * share if accuracy is not None else None)
        yield run_batch
        return

    if n == 1:
        def run_batch(batch: list[int], in_step: int, scaler, last: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
            with autocast():
                loss, accuracy = batch_loss(model, batch)
            scaled = loss / in_step if in_step > 1 else loss
            (scaler.scale(scaled) if scaler else scaled).backward()
            return loss, accuracy
        yield run_batch
        return

    with sharded(model, n, threads, batch_loss, weight, autocast) as run_batch:  # the fast path (rmlearn.fastcpu)
        yield run_batch


def _optimizer_step(model: nn.Module, optimizer, scaler, max_grad_norm: float | None) -> None:
    if scaler:
        scaler.unscale_(optimizer)  # clip the true gradients
    if max_grad_norm:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    if scaler:
        scaler.step(optimizer)  # skips the step when a gradient overflowed
        scaler.update()
    else:
        optimizer.step()


def _checkpoint(model: nn.Module, tokenizer: Any, save_dir: str, step: int, optimizer=None, scaler=None,
                accelerator=None) -> str:
    """``save_dir/checkpoint-<step>``: the model (``save_pretrained``) and ``optimizer.pt``; under DDP
    the first process writes it while the others wait."""
    path = Path(save_dir) / f"checkpoint-{step}"
    if accelerator is None or accelerator.is_main_process:
        model.save_pretrained(path, tokenizer=tokenizer)
        if optimizer is not None:
            save_optimizer_state(path, _optimizer_state(optimizer, scaler))
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return str(path)


def train_reward_model(
    model: RewardModel,
    tokenizer: Any,
    data: Sequence[Example],
    eval_data: Sequence[Example] | None = None,
    **config: Any,
) -> History:
    """Train ``model`` in place on preference pairs or rankings; returns the per-step ``History``.

    Keywords are the fields of ``TrainConfig`` (``epochs``, ``batch_size``, ``lr``, ``loss``,
    ``margin``, ``center_coef``, ``weight_decay``, ``max_length``, ``seed``, ``progress``, and the
    practitioner's ``grad_accum``, ``max_grad_norm``, ``lr_schedule``, ``warmup_steps``,
    ``eval_split``, ``precision``, ``save_dir``, ``save_every``, ``too_long``, ``threads``, ``shards``).
    ``eval_data`` (or ``eval_split`` of ``data``) is scored after every epoch:
    ``History.eval_accuracy``.

    >>> from rmlearn import RewardModel, tiny_backbone, course_tokenizer, synthetic_preferences
    >>> model = RewardModel(tiny_backbone(seed=0))
    >>> history = train_reward_model(model, course_tokenizer(), synthetic_preferences(32), epochs=1, progress=False)
    >>> len(history)                                          # 32 pairs / batches of 16, 1 epoch
    2
    """
    cfg = TrainConfig(**config)
    if cfg.loss != "pairwise" and cfg.margin:
        raise ValueError("margin is defined for the pairwise loss only")
    if cfg.eval_split:
        if eval_data:
            raise ValueError("give eval_data or eval_split, not both")
        data, eval_data = split(list(data), cfg.eval_split, cfg.seed)
    _, pad = special_ids(tokenizer)
    groups, pairs = _groups(data, cfg.loss)
    margins = _pair_margins(pairs, cfg)
    if cfg.max_length is not None:
        model.max_length = cfg.max_length  # checked against the context; scoring and saving use it too
    encoded, kept, n_long = _encode_groups(tokenizer, groups, model.max_length, cfg.too_long)
    if margins is not None:
        margins = torch.tensor([margins[i] for i in kept])  # (N,): the kept pairs' m, in encoded's order
    model.check_token_ids(max(i for seqs in encoded for s in seqs for i in s), tokenizer)
    lengths = [max(len(s) for s in seqs) for seqs in encoded]
    sizes = [len(seqs) for seqs in encoded]

    def batch_loss(net: nn.Module, batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        k = sizes[batch[0]]
        ids, mask = pad_batch([s for i in batch for s in encoded[i]], pad)  # (B*K, T)
        device = model.input_device
        scores = net(ids.to(device), mask.to(device)).float().view(len(batch), k)  # (B, K)
        return _group_loss(scores, cfg, None if margins is None else margins[batch].to(device))

    history = History(config=asdict(cfg), too_long=n_long)
    return _fit(model, cfg, lengths, sizes, batch_loss, "reward model", history, tokenizer, eval_data or ())


def pair_scores(model: RewardModel, tokenizer: Any, data: Sequence[Example],
                batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(r_chosen, r_rejected) of every pair in ``data`` (rankings give all their pairs), (N,) each."""
    pairs = as_pairs(data)
    prompts = [p.prompt for p in pairs]
    return (model.score(prompts, [p.chosen for p in pairs], tokenizer, batch_size),
            model.score(prompts, [p.rejected for p in pairs], tokenizer, batch_size))


def scores_by_text(pairs: Sequence[PreferencePair], r_chosen: torch.Tensor,
                   r_rejected: torch.Tensor) -> dict[tuple[str, str], torch.Tensor]:
    """The pairs' scores already taken, (N,) each, by text: {(prompt, response): its score}, to read
    back the scores of other pairs or rankings of the same texts (a text in several pairs: its last).

    >>> pairs = [PreferencePair("Q?", "yes", "no"), PreferencePair("Q?", "sure", "yes")]
    >>> score_of = scores_by_text(pairs, torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]))
    >>> [score_of["Q?", text].item() for text in ("sure", "yes", "no")]
    [2.0, 1.0, 0.0]
    """
    return {(p.prompt, response): score for p, c, r in zip(pairs, r_chosen, r_rejected)
            for response, score in ((p.chosen, c), (p.rejected, r))}


def pair_gaps(model: RewardModel, tokenizer: Any, data: Sequence[Example], batch_size: int = 64) -> torch.Tensor:
    """Score gaps Δ = r_chosen − r_rejected of every pair in ``data``, (N,)."""
    r_chosen, r_rejected = pair_scores(model, tokenizer, data, batch_size)
    return r_chosen - r_rejected


def evaluate(model: RewardModel, tokenizer: Any, data: Sequence[Example], batch_size: int = 64) -> dict[str, float]:
    """Ranking metrics on held-out data (rankings count all their pairs), RewardBench-style.

    Returns ``accuracy`` (fraction of pairs with r_chosen > r_rejected), ``mean_gap`` (mean
    r_chosen − r_rejected; not called "margin": that name is the loss's m),
    ``length_controlled_accuracy`` (accuracy on the pairs whose chosen response is the shorter one,
    in characters: a model that just likes long answers fails these; NaN when there are none) with
    their count ``num_shorter_chosen``, ``mean_chosen``, ``mean_rejected``, ``std_reward`` and
    ``num_pairs``.
    """
    pairs = as_pairs(data)
    if not pairs:
        raise ValueError("no evaluation data")
    return pair_metrics(pairs, *pair_scores(model, tokenizer, pairs, batch_size))


def pair_metrics(pairs: Sequence[PreferencePair], r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> dict[str, float]:
    """``evaluate``'s metrics from scores already taken: ``pairs`` and their (N,) ``r_chosen``, ``r_rejected``.

    >>> pairs = [PreferencePair("Q?", "yes", "no, sorry"), PreferencePair("Q?", "sure thing", "no")]
    >>> metrics = pair_metrics(pairs, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
    >>> metrics["accuracy"], metrics["mean_gap"], metrics["length_controlled_accuracy"]
    (0.5, -0.5, 1.0)
    """
    right = r_chosen > r_rejected  # (N,)
    shorter = torch.tensor([len(p.chosen) < len(p.rejected) for p in pairs])  # (N,)
    gap = (r_chosen - r_rejected).mean().item()
    return {
        "accuracy": right.float().mean().item(),
        "mean_gap": gap,
        "length_controlled_accuracy": right[shorter].float().mean().item() if shorter.any() else math.nan,
        "num_shorter_chosen": int(shorter.sum()),
        "mean_chosen": r_chosen.mean().item(),
        "mean_rejected": r_rejected.mean().item(),
        "std_reward": torch.cat([r_chosen, r_rejected]).std().item(),
        "num_pairs": len(pairs),
    }


VALUE_DEFAULTS = {"weight_decay": 0.01}  # torch AdamW's default, which the critic has always trained with


def train_value_model(
    value_model: ValueModel,
    reward_model: RewardModel,
    tokenizer: Any,
    data: Sequence[Example],
    **config: Any,
) -> History:
    """Train the critic to predict the reward model's score from every prefix of a response.

    With the reward given once, at the end (γ = 1, no per-token penalties), the expected future
    reward at each state is the final score r(x, y), so every state from the end of the prompt to
    EOS gets the target r. Loss: squared error averaged over those states. Every response in
    ``data`` (chosen and rejected, all ranked ones) is used. Keywords: the fields of
    ``TrainConfig`` that are not about rankings or evaluation (``epochs``, ``batch_size``, ``lr``,
    ``seed``, ``progress``, ``grad_accum``, ``precision``, …); ``weight_decay`` defaults to 0.01.
    The same loop as ``train_reward_model`` runs it, with this objective.
    """
    ranking_only = {"loss", "margin", "center_coef", "eval_split"} & set(config)
    if ranking_only:
        raise ValueError(f"{sorted(ranking_only)} apply to the reward model, not to the value model")
    cfg = TrainConfig(**{**VALUE_DEFAULTS, **config})
    texts = sorted({(p.prompt, r) for p in as_pairs(data) for r in (p.chosen, p.rejected)})
    groups = [(prompt, (response,)) for prompt, response in texts]
    if cfg.max_length is not None:
        value_model.max_length = cfg.max_length
    encoded, keep, n_long = _encode_groups(tokenizer, groups, value_model.max_length, cfg.too_long)
    value_model.check_token_ids(max(i for seqs in encoded for s in seqs for i in s), tokenizer)
    texts = [texts[i] for i in keep]
    encoded = [seqs[0] for seqs in encoded]
    device = next(value_model.parameters()).device
    targets = reward_model.score([t[0] for t in texts], [t[1] for t in texts], tokenizer).to(device)  # (N,)
    # states = the last prompt token, every response token, and EOS
    separate = tokenizer([SEPARATOR + r for _, r in texts], add_special_tokens=False)["input_ids"]
    n_list = [min(len(ids), len(sep) + 2) for ids, sep in zip(encoded, separate)]  # states per text
    n_states = torch.tensor(n_list, device=device)
    _, pad = special_ids(tokenizer)

    def batch_loss(net: nn.Module, batch: list[int]) -> tuple[torch.Tensor, None]:
        here = value_model.input_device  # under DDP, this process's device (set once training starts)
        ids, mask = pad_batch([encoded[i] for i in batch], pad)  # (B, T)
        ids, mask = ids.to(here), mask.to(here)
        lens = mask.sum(1, keepdim=True)  # (B, 1)
        pos = torch.arange(ids.shape[1], device=here).unsqueeze(0)  # (1, T)
        states = (pos < lens) & (pos >= lens - n_states[batch].to(here).unsqueeze(1))  # (B, T)
        values = net(ids, mask).float()  # (B, T)
        target = targets[batch].to(here).unsqueeze(1).expand_as(values)  # (B, T)
        return segment_regression_loss(values[states], target[states]), None

    lengths = [len(s) for s in encoded]
    history = History(config=asdict(cfg), too_long=n_long)
    return _fit(value_model, cfg, lengths, [1] * len(texts), batch_loss, "value model", history, tokenizer,
                weight=lambda batch: sum(n_list[i] for i in batch))  # the loss is a mean over states


# ---------------------------------------------------------------------------------- small loops
# Lessons 08 and 10 fine-tune small models with plain minibatch AdamW: SFT and DPO of the policy, the
# process reward model. One loop serves them all; train_reward_model above is the full one.

def minibatch_fit(model: nn.Module, items: Sequence[Any], batch_loss: Callable[[list[Any]], torch.Tensor], *,
                  epochs: int, batch_size: int, lr: float, seed: int) -> list[float]:
    """Train ``model`` in place: AdamW on ``batch_loss(batch)`` over ``epochs`` shuffled passes of
    ``items`` in minibatches. Seeded (the order, and dropout if any) without touching the caller's
    random state; the model ends in eval mode. Returns the loss per step.

    >>> net = nn.Linear(1, 1)
    >>> xs = [float(x) for x in range(8)]
    >>> losses = minibatch_fit(net, xs, lambda b: ((net(torch.tensor(b)[:, None]) - 2.0) ** 2).mean(),
    ...                        epochs=20, batch_size=4, lr=0.1, seed=0)
    >>> len(losses), losses[-1] < losses[0]
    (40, True)
    """
    rng, order = random.Random(seed), list(range(len(items)))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    model.train()
    with _own_rng(seed, next(model.parameters()).device), one_cpu_thread_if_small(model):
        for _ in range(epochs):
            rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                loss = batch_loss([items[i] for i in order[start:start + batch_size]])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.item())
    model.eval()
    return losses


def train_process_reward_model(prm: ProcessRewardModel, tokenizer: Any, answers: Sequence[Any], *,
                               epochs: int = 4, batch_size: int = 32, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Train ``prm`` in place on step labels with ``losses.step_loss`` (AdamW, decoder and head).
    ``answers`` have ``prompt``, ``steps`` and ``labels`` (1 = correct; ``rmlearn.synthetic.StepAnswer``).
    Returns the loss per step.

    >>> from rmlearn import course_tokenizer, tiny_backbone
    >>> from rmlearn.synthetic import step_answers
    >>> prm = ProcessRewardModel(tiny_backbone(seed=0))
    >>> losses = train_process_reward_model(prm, course_tokenizer(), step_answers(32, seed=0), epochs=2, batch_size=16)
    >>> len(losses), losses[-1] < losses[0]          # 2 epochs × 2 batches
    (4, True)
    """
    def batch_loss(batch: list[Any]) -> torch.Tensor:
        ids, mask, ends, step_mask = prm.encode_steps([a.prompt for a in batch], [a.steps for a in batch], tokenizer)
        labels = torch.zeros_like(step_mask)  # (B, S)
        for b, a in enumerate(batch):
            labels[b, :len(a.labels)] = torch.tensor(a.labels, dtype=labels.dtype)
        logits = prm(ids, mask).gather(1, ends)  # (B, S): the head at each step's end
        return step_loss(logits, labels, step_mask)

    return minibatch_fit(prm, answers, batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)


def train_head(head: nn.Linear, objective: Callable[[nn.Linear], torch.Tensor], *, steps: int = 300,
               lr: float = 0.05, seed: int = 0) -> list[float]:
    """Fit a linear head on fixed features: ``objective(head)`` → a scalar loss, minimised by
    full-batch Adam for ``steps`` steps, the head re-initialised from ``seed`` first (lesson 10:
    one decoder, many heads, each trained in well under a second). Returns the losses."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.02)
        if head.bias is not None:
            head.bias.zero_()
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    losses = []
    with one_cpu_thread_if_small(head):
        for _ in range(steps):
            loss = objective(head)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses
