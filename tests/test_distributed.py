"""Training under Hugging Face Accelerate: 2 CPU processes (torchrun; DDP on gloo, set up by Accelerate)
gives the losses and the gradients of a 1-process run on the same global batches. (Not the
weights to 1e-5: AdamW divides by √v, so a gradient component near 0 that differs by float
rounding can move its weight by up to lr.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).parent / "distributed" / "train_worker.py"


def _run(command: list[str], out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    result = subprocess.run([*command, str(WORKER), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out, weights_only=True)


@pytest.mark.slow
def test_two_ddp_processes_match_one_process_on_the_same_global_batches(tmp_path):
    """torchrun starts the 2 processes (`accelerate launch --cpu` would start one process per
    machine, or MPI); inside, Accelerate sets up gloo and wraps the model in DDP."""
    try:
        import accelerate  # noqa: F401
    except ImportError as exc:
        from conftest import unavailable

        unavailable(f"accelerate is not installed (the [test] extra has it): {exc}")
    one = _run([sys.executable], tmp_path / "one.pt")
    two = _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"],
               tmp_path / "two.pt")
    assert (one["world"], two["world"]) == (1, 2)
    # the first process's cuts of the batches of 7, 7 and 1: 4, 4 and none (it runs 1 example at weight 0)
    assert one["rows"] == 2 * 2 * 15 and two["rows"] == 2 * 2 * (4 + 4 + 1)
    assert one["optimizer_steps"] == two["optimizer_steps"] == len(one["steps"]) == len(two["steps"]) == 4
    torch.testing.assert_close(torch.tensor(two["loss"]), torch.tensor(one["loss"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.tensor(two["accuracy"]), torch.tensor(one["accuracy"]), atol=1e-6, rtol=0)
    for step, (a, b) in enumerate(zip(one["steps"], two["steps"])):
        assert a.keys() == b.keys() and len(a) > 10
        for name in a:
            torch.testing.assert_close(b[name], a[name], atol=1e-5, rtol=0, msg=f"step {step}, parameter {name}")
    assert max(g.abs().max().item() for g in one["steps"][0].values()) > 1e-3  # not trivially equal
