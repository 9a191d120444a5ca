"""The training recipe's names, choices and defaults: ``TrainConfig`` and the choices it checks.

No torch here, so that reading them is fast: ``rmlearn --help`` builds its flags from them.

>>> TrainConfig().loss, LOSSES
('pairwise', ('pairwise', 'all_pairs', 'plackett_luce'))
>>> TrainConfig(loss="hinge")
Traceback (most recent call last):
ValueError: unknown loss 'hinge'; choose one of ('pairwise', 'all_pairs', 'plackett_luce')
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

POOLINGS = ("eos", "mean", "last")  # which hidden state becomes the reward (rmlearn.pooling)
DEFAULT_POOLING = "eos"  # RewardModel's
LOSSES = ("pairwise", "all_pairs", "plackett_luce")
RENAMED_LOSSES = {"listwise": "all_pairs"}  # old name → name: still accepted, with a FutureWarning (shown by default)
SCHEDULES = ("constant", "linear", "cosine")
TRUNCATIONS = ("truncate", "drop")  # what happens to a pair longer than max_length
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # name → torch dtype's name


@dataclass
class TrainConfig:
    """Hyper-parameters of ``train_reward_model``; the defaults train the tiny course model well.

    The defaults are chosen so that the tiny course model reaches the same quality on every CPU
    (seeds 0–4, under AVX-512, AVX2 and plain kernels; ``benchmarks/course_models.py``): at a constant
    lr of 3e-3 the rounding differences between CPU kernels grew into different models, so the lr
    warms up, decays along a cosine, and the gradient norm is clipped at 1. The other fields after
    ``max_length`` are what a practitioner expects from TRL's ``RewardConfig``.
    """

    epochs: int = 12  # passes over the data
    batch_size: int = 16  # preference pairs (or rankings) per forward pass
    lr: float = 3e-3  # AdamW learning rate; use ~1e-5 for a real pretrained backbone
    loss: str = "pairwise"  # "pairwise", "all_pairs" (mean over all K choose 2 pairs) or "plackett_luce" (listwise)
    margin: float = 0.0  # m in −log σ(r_c − r_r − m): demand a gap of at least m
    center_coef: float = 0.0  # weight of the centering penalty mean((r_c + r_r)²)
    weight_decay: float = 0.0  # AdamW weight decay
    max_length: int | None = None  # longest sequence; None = the backbone's context length
    too_long: str = "truncate"  # longer pairs: "truncate" (drop tokens from the prompt's start, keep EOS) or "drop"
    grad_accum: int = 1  # batches whose gradients add up to one optimizer step (effective batch × this)
    max_grad_norm: float | None = 1.0  # clip the gradient's global L2 norm to this; None = no clipping
    lr_schedule: str = "cosine"  # after warm-up: "constant", "linear" or "cosine" decay to 0
    warmup_steps: int = 0  # optimizer steps with the lr rising linearly from 0 to lr; 0 = use warmup_ratio
    warmup_ratio: float = 0.05  # warm-up as a fraction of all optimizer steps (when warmup_steps is 0)
    eval_split: float = 0.0  # fraction of the data held out; its accuracy after each epoch → History
    precision: str | None = None  # None = follow the model; "fp32", "bf16", "fp16": autocast, fp32 master weights
    save_dir: str | None = None  # write checkpoints (save_pretrained) to save_dir/checkpoint-<step>
    save_every: int = 0  # with save_dir: every this many optimizer steps; 0 = at the end of each epoch
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30 % more time
    resume_from: str | None = None  # a folder holding optimizer.pt (a checkpoint, `rmlearn train --out`): AdamW's state
    threads: int | str | None = "auto"  # CPU threads running the fast path (rmlearn.fastcpu): "auto" = one per
    # shard, at most the cores this process may use, or N; None = the reference path (one thread, one forward per
    # batch, the backbone's own code: what the course's shipped models were trained with)
    shards: int = 2  # the fast path cuts each batch of a small CPU model into this many shards, run side by side:
    # the numbers depend on this, never on threads, the core count or the load
    seed: int = 0  # shuffling and dropout: the same seed gives the same numbers
    progress: bool = True  # show a tqdm progress bar

    def __post_init__(self) -> None:
        if self.loss in RENAMED_LOSSES:
            new = RENAMED_LOSSES[self.loss]
            warnings.warn(f"loss={self.loss!r} is deprecated, use loss={new!r}: the mean pairwise loss over all "
                          "pairs of a ranking (the listwise loss is 'plackett_luce')", FutureWarning, stacklevel=3)
            self.loss = new
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {LOSSES}")
        for name in ("epochs", "batch_size", "grad_accum"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.center_coef < 0:
            raise ValueError(f"center_coef must be >= 0, got {self.center_coef}")
        choices = {"too_long": TRUNCATIONS, "lr_schedule": SCHEDULES, "precision": (None, *PRECISIONS)}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if not 0.0 <= self.eval_split < 1.0:
            raise ValueError(f"eval_split must be in [0, 1), got {self.eval_split}")
        if self.warmup_steps < 0 or self.save_every < 0:
            raise ValueError("warmup_steps and save_every must be >= 0")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not (self.threads in (None, "auto") or (isinstance(self.threads, int) and self.threads >= 1)):
            raise ValueError(f"threads must be None, 'auto' or a positive integer, got {self.threads!r}")
        if not isinstance(self.shards, int) or self.shards < 1:
            raise ValueError(f"shards must be a positive integer, got {self.shards!r}")
