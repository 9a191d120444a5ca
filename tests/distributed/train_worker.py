"""One training run for tests/test_distributed.py: run plainly (1 process) or under torchrun with 2
processes (DDP on gloo, through Accelerate). Saves the losses and every optimizer step's gradients
(the DDP-averaged ones, read just before the step) to the file named by argv[1]."""

from __future__ import annotations

import os
import sys

import torch


def main(out: str) -> None:
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from rmlearn import (
        RewardModel,
        course_tokenizer,
        synthetic_preferences,
        tiny_backbone,
        train_reward_model,
    )

    steps: list[dict[str, torch.Tensor]] = []

    def record(optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        steps.append({str(i): p.grad.detach().clone() for i, p in enumerate(params) if p.grad is not None})

    register_optimizer_step_pre_hook(record)
    model = RewardModel(tiny_backbone(seed=1), seed=1)
    rows = []  # sequences this process scored: under DDP each process takes its cut of every batch
    model.head.register_forward_hook(lambda module, args, output: rows.append(output.shape[0]))
    # 15 pairs in batches of 7: 7, 7 and 1 (a batch smaller than the processes), 2 batches per step
    history = train_reward_model(model, course_tokenizer(), synthetic_preferences(15, seed=3), epochs=2,
                                 batch_size=7, grad_accum=2, center_coef=0.1, lr=1e-3, progress=False)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save({"loss": history.loss, "accuracy": history.accuracy, "steps": steps, "rows": sum(rows),
                    "world": int(os.environ.get("WORLD_SIZE", "1")), "optimizer_steps": history.optimizer_steps},
                   out)
    if torch.distributed.is_initialized():  # as `rmlearn train` does: a process that exits with it open aborts
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
