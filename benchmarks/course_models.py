"""Do the course's models come out right on every CPU? Train them afresh for several seeds under each
CPU kernel set torch can use here, and print (and write) the table.

    .venv/bin/python -m benchmarks.course_models                  # seeds 0-4, every kernel set here
    .venv/bin/python -m benchmarks.course_models --seeds 0 1 --out docs/course_models.md

Each run is a fresh process with ATEN_CPU_CAPABILITY set (default = no SIMD, avx2, avx512), the
shipped weights and the disk cache switched off. Targets (tests/test_zoo.py): the course reward model
reaches held-out accuracy >= 97 % and prompt-swap accuracy >= 95 %, with a loss curve that ends low;
the length-biased models (lesson 05 at bias 0.9, lesson 08's proxy at 0.8 on 300 pairs) prefer the
longer answer of a length probe far more often than the unbiased course model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KERNEL_SETS = ("default", "avx2", "avx512")
MODELS = {"course": (0.0, 1500), "biased 0.9": (0.9, 1500), "proxy 0.8": (0.8, 300)}


def loss_end_and_best(loss: list[float]) -> tuple[float, float]:
    """Mean loss over the last tenth of the steps, and the lowest mean over any tenth: a curve that
    ends low, not rising, has the two close together."""
    tenth = max(1, len(loss) // 10)
    windows = [statistics.mean(loss[i:i + tenth]) for i in range(len(loss) - tenth + 1)]
    return windows[-1], min(windows)


def one_run(seed: int) -> dict:
    """Train the three models for one seed in this process and measure them."""
    import torch

    from rmlearn import (
        RewardModel,
        course_tokenizer,
        evaluate,
        length_probe,
        synthetic_preferences,
        tiny_backbone,
        train_reward_model,
    )
    from rmlearn.synthetic import prompt_swap_probe
    from rmlearn.zoo import COURSE_RECIPE, course_data

    tokenizer, row = course_tokenizer(), {"cpu": torch.backends.cpu.get_cpu_capability(), "seed": seed}
    for name, (bias, n_pairs) in MODELS.items():
        model = RewardModel(tiny_backbone(seed=seed), seed=seed)
        loss = train_reward_model(model, tokenizer, course_data(n_pairs, bias, seed)[0], seed=seed, progress=False,
                                  **COURSE_RECIPE).loss
        model.eval()
        end, best = loss_end_and_best(loss)
        row[name] = {
            "held_out": evaluate(model, tokenizer, synthetic_preferences(300, seed=123))["accuracy"],
            "swap": evaluate(model, tokenizer, prompt_swap_probe(200, seed=2))["accuracy"],
            "longer": 1 - evaluate(model, tokenizer, length_probe(200))["accuracy"],
            "loss_end": end,
            "loss_best": best,
        }
    return row


def _available(cap: str) -> bool:
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    got = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "ATEN_CPU_CAPABILITY": cap},
                         capture_output=True, text=True).stdout.strip().lower()
    return cap == "default" or got == cap


def _spawn(cap: str, seed: int) -> dict:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": cap, "RMLEARN_SHIPPED": "off", "RMLEARN_CACHE": "off"}
    out = subprocess.run([sys.executable, "-m", "benchmarks.course_models", "--one", str(seed)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return {"kernels": cap, **json.loads(out.strip().splitlines()[-1])}


def table(rows: list[dict]) -> str:
    lines = ["| kernels | seed | course: held-out | course: prompt swap | course: loss end / best | "
             "biased 0.9: prefers longer | proxy 0.8 (300 pairs): prefers longer | course: prefers longer |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["course"]
        lines.append(f"| {r['kernels']} | {r['seed']} | {c['held_out']:.1%} | {c['swap']:.1%} | "
                     f"{c['loss_end']:.4f} / {c['loss_best']:.4f} | {r['biased 0.9']['longer']:.1%} | "
                     f"{r['proxy 0.8']['longer']:.1%} | {c['longer']:.1%} |")
    worst = min(r["course"]["held_out"] for r in rows), min(r["course"]["swap"] for r in rows)
    lines.append(f"\nWorst over {len(rows)} runs: held-out {worst[0]:.1%} (target 97 %), prompt swap "
                 f"{worst[1]:.1%} (target 95 %).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_run(args.one)))
        return
    caps = [c for c in KERNEL_SETS if _available(c)]
    jobs = [(c, s) for s in args.seeds for c in caps]
    with ThreadPoolExecutor(max_workers=2) as pool:  # one training per core
        rows = sorted(pool.map(lambda job: _spawn(*job), jobs), key=lambda r: (r["kernels"], r["seed"]))
    text = table(rows)
    print(text)
    if args.out:
        args.out.write_text("# The course models on every CPU\n\nMade by `python -m benchmarks.course_models`"
                            f" (torch {_torch_version()}, kernel sets {', '.join(caps)}).\n\n" + text + "\n")


def _torch_version() -> str:
    import torch
    return torch.__version__


if __name__ == "__main__":
    main()
