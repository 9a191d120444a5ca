"""Run the benchmarks and write ``docs/benchmarks.md`` and ``docs/benchmarks.png``.

    python -m benchmarks                       # everything (about 10 minutes on 2 idle cores)
    python -m benchmarks --parts train score   # only some parts; the others keep their last results

Parts: ``train`` (rmlearn vs TRL RewardTrainer: pairs/s, peak RSS, first-step loss), ``train_busy``
(the same with one spinning process per core), ``score`` (RewardModel.score vs transformers),
``startup`` (``import rmlearn``, ``rmlearn demo``), ``course`` (each lesson executed; autograde via
``bench_autograde.py``), ``profile`` (where a training step's time goes; what each speed-up buys).
Not run by default: ``class`` (20 simulated students on every assignment, graded serially and in
parallel, every grade checked: ``bench_class.py``; about 10 minutes on 2 cores).

Results of each part are kept in ``benchmarks/results.json`` with the time they were measured, so
the report always shows every part and says when each was measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.json"
DOC, PLOT = ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks.png"
PARTS = ("train", "train_busy", "score", "startup", "course", "profile")
EXTRA_PARTS = ("class",)  # on request only: long


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}, torch {torch.__version__}, "
            f"torch threads {torch.get_num_threads()}, load average {load:.1f} when the report was written")


def run(parts: list[str], repeats: int) -> dict:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for part in parts:
        print(f"== {part}", flush=True)
        if part == "train":
            from benchmarks import bench_train as mod
            out = mod.bench(repeats=repeats, slow_repeats=repeats)
        elif part == "train_busy":  # the same, while one spinning process per core competes for the CPU
            from benchmarks import bench_train as mod
            from benchmarks.busy import busy_machine
            with busy_machine():
                out = mod.bench(repeats=3)
        elif part == "score":
            from benchmarks import bench_score as mod
            out = mod.bench()
        elif part == "startup":
            from benchmarks import bench_startup as mod
            out = mod.bench()
        elif part == "course":
            from benchmarks import bench_course as mod
            out = mod.bench()
        elif part == "class":
            from benchmarks import bench_class as mod
            out = mod.bench(students=20)
        else:
            from benchmarks import profile_train as mod
            out = mod.bench()
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # the last minute
        results[part] = {"measured": datetime.datetime.now().isoformat(timespec="seconds"), "load_avg_1min": load,
                         "result": out}
        RESULTS.write_text(json.dumps(results, indent=1))
    results["machine"] = machine()
    RESULTS.write_text(json.dumps(results, indent=1))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="rmlearn benchmarks against TRL and transformers")
    parser.add_argument("--parts", nargs="+", choices=PARTS + EXTRA_PARTS, default=list(PARTS))
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the train runs (score: 3)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from results.json")
    args = parser.parse_args(argv)
    from benchmarks import report

    results = json.loads(RESULTS.read_text()) if args.report_only else run(args.parts, args.repeats)
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(report.markdown(results))
    report.plot(results, PLOT)
    print(f"wrote {DOC.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
