"""Training throughput and memory: rmlearn's ``train_reward_model`` vs TRL's ``RewardTrainer``.

Each run is a fresh subprocess (``python -m benchmarks.bench_train --impl rmlearn|trl``), so peak
memory is measured separately. Both start from the same weights (``common.reward_model`` /
``common.sequence_classifier``), see the same pairs for the same number of steps with the same
batch size and optimizer settings, and do one untimed warm-up forward+backward (no update) first.

Timed: rmlearn's whole ``train_reward_model`` call (which tokenizes the data inside it) against
TRL's ``trainer.train()`` (its tokenization already ran in the constructor) — so TRL is *not*
charged for tokenizing. The identical-objective check (first-step loss) is ``first_step_losses``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks import common

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 1  # 2048 pairs / 32 = 64 steps
PAIRS, BATCH_SIZE, LR = 2048, 32, 1e-4  # synthetic_preferences(2048, seed=0), 64 batches of 32
# rmlearn = the library default, TrainConfig() as a Python user and `rmlearn train` get it: the fast path
# (2 data-parallel shards side by side, fused GELU; threads="auto": one thread per shard, at most the usable
# cores); rmlearn-1 = the same on one thread (the same numbers); rmlearn-reference = threads=None, the course's
# reference path (one forward per batch on one thread, the backbone's own code); trl = TRL as installed
# (torch's default threads, what a TRL user gets); trl-1thread = after torch.set_num_threads(1)
IMPLS = ("rmlearn", "rmlearn-1", "rmlearn-reference", "trl-1thread", "trl")
CONFIG = {"rmlearn": {}, "rmlearn-1": {"threads": 1}, "rmlearn-reference": {"threads": None}}
GOAL = 1.5  # the library default should reach at least 1.5x TRL's defaults, idle and busy


def _rss_mib() -> float:
    """Resident memory now, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _warm_up(forward) -> None:
    """One forward+backward, gradients dropped: pays one-time lazy initialisation outside the timer."""
    import torch

    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    forward(ids, mask).sum().backward()


def run_rmlearn(epochs: int, config: dict) -> dict:
    from rmlearn import course_tokenizer, synthetic_preferences, train_reward_model

    tok, data, model = course_tokenizer(), synthetic_preferences(PAIRS, seed=common.SEED), common.reward_model()
    _warm_up(model)
    model.zero_grad(set_to_none=True)
    rss_before = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    history = train_reward_model(model, tok, data, epochs=epochs, batch_size=BATCH_SIZE, lr=LR,
                                 seed=common.SEED, progress=False, **common.AS_TRL, **config)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return dict(pairs=len(data) * epochs, steps=len(history), seconds=seconds, cpu_seconds=cpu_seconds,
                mean_loss=sum(history.loss) / len(history), rss_before_mib=rss_before, threads=history.threads)


def run_trl(epochs: int) -> dict:
    import torch

    from rmlearn import course_tokenizer, synthetic_preferences

    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    tok, data, model = course_tokenizer(), synthetic_preferences(PAIRS, seed=common.SEED), common.sequence_classifier()
    _warm_up(lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits)
    model.zero_grad(set_to_none=True)
    with tempfile.TemporaryDirectory() as out:
        trainer = common.trl_trainer(model, data, tok, out, num_train_epochs=epochs,
                                     per_device_train_batch_size=BATCH_SIZE, learning_rate=LR)
        rss_before = _rss_mib()
        start, cpu = time.perf_counter(), time.process_time()
        result = trainer.train()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return dict(pairs=len(data) * epochs, steps=result.global_step, seconds=seconds, cpu_seconds=cpu_seconds,
                mean_loss=result.training_loss, rss_before_mib=rss_before, threads=torch.get_num_threads())


def worker(impl: str, epochs: int) -> dict:
    import torch

    if impl == "trl-1thread":
        torch.set_num_threads(1)  # the thread setting rmlearn picks for a small CPU model, given to TRL too
    if impl.startswith("rmlearn"):
        out = run_rmlearn(epochs, CONFIG[impl])
    else:
        out = run_trl(epochs)
    out.update(impl=impl, pairs_per_s=out["pairs"] / out["seconds"], peak_rss_mib=_peak_mib(),
               pairs_per_cpu_s=out["pairs"] / out["cpu_seconds"])
    return out


TIMEOUT = 600  # seconds per run; a run cut off is recorded at this time (its pairs/s is an upper bound)


def _subprocess(impl: str, epochs: int, timeout: int = TIMEOUT) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_train", "--impl", impl, "--epochs", str(epochs)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:  # e.g. TRL on default threads on a busy machine
        n = PAIRS * epochs
        return dict(impl=impl, pairs=n, steps=-1, seconds=timeout, cpu_seconds=math.nan, mean_loss=math.nan,
                    rss_before_mib=math.nan, threads=-1, pairs_per_s=n / timeout, peak_rss_mib=math.nan,
                    pairs_per_cpu_s=math.nan, timed_out=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def first_step_losses() -> dict:
    """The same first batch through both trainers: one batch of 16 pairs, 3 steps (same batch each
    step, so the AdamW updates must agree too). Returns the loss sequences of TRL and of rmlearn's
    reference path (``rmlearn``) and default fast path (``rmlearn_fast``, 2 shards)."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    from datasets import Dataset
    from trl import RewardTrainer

    from rmlearn import course_tokenizer, train_reward_model

    warnings.filterwarnings("ignore")
    tok, data = course_tokenizer(), common.preference_data()[: common.BATCH_SIZE]
    history = train_reward_model(common.reward_model(), tok, data, epochs=3, batch_size=common.BATCH_SIZE,
                                 lr=common.LR, progress=False, threads=None, **common.AS_TRL)
    fast = train_reward_model(common.reward_model(), tok, data, epochs=3, batch_size=common.BATCH_SIZE,
                              lr=common.LR, progress=False, **common.AS_TRL)
    trl_losses: list[float] = []

    class Recording(RewardTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            trl_losses.append((out[0] if return_outputs else out).item())
            return out

    with tempfile.TemporaryDirectory() as tmp:
        Recording(model=common.sequence_classifier(), args=common.trl_config(tmp, num_train_epochs=3),
                  train_dataset=Dataset.from_list(common.trl_records(data)), processing_class=tok).train()
    return dict(rmlearn=history.loss, rmlearn_fast=fast.loss, trl=trl_losses,
                max_abs_diff=max(abs(a - b) for a, b in zip(history.loss, trl_losses, strict=True)),
                max_abs_diff_fast=max(abs(a - b) for a, b in zip(fast.loss, trl_losses, strict=True)))


def _summary(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs]
    return dict(median=statistics.median(values), min=min(values), max=max(values), values=values)


def bench(repeats: int = 5, epochs: int = EPOCHS, slow_repeats: int = 1, log=print, timeout: int = TIMEOUT) -> dict:
    """Alternate the runs (each in its own process): ``repeats`` times rmlearn (its three settings)
    and TRL on one thread, ``slow_repeats`` times TRL with default threads (slow on a busy machine)."""
    runs: dict[str, list[dict]] = {impl: [] for impl in IMPLS}
    for i in range(repeats):
        for impl in runs:
            if impl == "trl" and i >= slow_repeats:
                continue
            r = _subprocess(impl, epochs, timeout)
            runs[impl].append(r)
            cut = f" (cut off after {timeout} s)" if r.get("timed_out") else ""
            log(f"  [{i + 1}/{repeats}] {impl:12s} {r['pairs_per_s']:7.1f} pairs/s{cut}  {r['seconds']:5.2f} s "
                f"{r['threads']} thread(s), load {os.getloadavg()[0]:.1f}  "
                f"({r['cpu_seconds']:5.2f} s CPU)  "
                f"{r['steps']} steps  peak RSS {r['peak_rss_mib']:.0f} MiB")
    keys = ("pairs_per_s", "pairs_per_cpu_s", "seconds", "peak_rss_mib", "rss_before_mib")
    result = {impl: {k: _summary(rs, k) for k in keys} for impl, rs in runs.items()}
    for impl, rs in runs.items():
        result[impl]["steps"] = rs[0]["steps"]
        result[impl]["pairs"] = rs[0]["pairs"]
        result[impl]["mean_loss"] = rs[0]["mean_loss"]
        result[impl]["threads"] = [r["threads"] for r in rs]
        result[impl]["timed_out"] = sum(r.get("timed_out", False) for r in rs)
    for impl in IMPLS[3:]:  # ratios rmlearn / TRL, for each setting of rmlearn
        result[impl]["speedup"] = result["rmlearn"]["pairs_per_s"]["median"] / result[impl]["pairs_per_s"]["median"]
        result[impl]["speedup_reference"] = (result["rmlearn-reference"]["pairs_per_s"]["median"]
                                             / result[impl]["pairs_per_s"]["median"])
        result[impl]["speedup_1"] = (result["rmlearn-1"]["pairs_per_s"]["median"]
                                     / result[impl]["pairs_per_s"]["median"])
        result[impl]["memory_ratio"] = (result["rmlearn"]["peak_rss_mib"]["median"]
                                        / result[impl]["peak_rss_mib"]["median"])
        result[impl]["cpu_speedup"] = (result["rmlearn"]["pairs_per_cpu_s"]["median"]
                                       / result[impl]["pairs_per_cpu_s"]["median"])
    # paired: run i of rmlearn against run i of TRL on one thread (they ran back to back)
    paired = [a["pairs_per_s"] / b["pairs_per_s"] for a, b in zip(runs["rmlearn"], runs["trl-1thread"], strict=True)]
    result["trl-1thread"]["paired_speedup"] = _summary([{"r": r} for r in paired], "r")
    result["first_step"] = first_step_losses()
    result["load_avg"] = os.getloadavg()
    verdict = "meets" if result["trl"]["speedup"] >= GOAL else "MISSES"
    log(f"  rmlearn / TRL (default threads): {result['trl']['speedup']:.2f}x with the library default "
        f"({verdict} the {GOAL}x goal), {result['trl']['speedup_1']:.2f}x with threads=1, "
        f"{result['trl']['speedup_reference']:.2f}x with the reference path (threads=None); rmlearn threads=1 / "
        f"TRL on 1 thread: {result['trl-1thread']['speedup_1']:.2f}x; load average {result['load_avg'][0]:.1f}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=IMPLS, help="worker mode: one run, JSON on stdout")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="also measure with one spinning process per core")
    parser.add_argument("--json-out", help="write the results here after each part")
    parser.add_argument("--busy-only", action="store_true", help="skip the machine-as-found part")
    parser.add_argument("--timeout", type=int, default=TIMEOUT, help="seconds per run before it is cut off")
    args = parser.parse_args()
    if args.impl:
        print(json.dumps(worker(args.impl, args.epochs)))
        return
    out: dict = {}

    def part(name: str, repeats: int, slow_repeats: int) -> None:
        print(name + ":", flush=True)
        out[name] = bench(repeats, args.epochs, slow_repeats, log=lambda m: print(m, flush=True), timeout=args.timeout)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(out, indent=1))

    if not args.busy_only:
        part("as_found", args.repeats, args.repeats)
    if args.busy or args.busy_only:
        from benchmarks.busy import busy_machine

        with busy_machine():
            part("busy", max(1, args.repeats // 2), 1)  # TRL on default threads crawls here: once
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
