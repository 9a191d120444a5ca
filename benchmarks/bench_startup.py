"""Start-up: ``import rmlearn`` in a fresh interpreter (target < 1.5 s) and ``rmlearn demo``'s wall time."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORT = "import time; t = time.perf_counter(); import rmlearn; print(time.perf_counter() - t)"
IMPORT_TORCH = "import time; t = time.perf_counter(); import rmlearn.losses; print(time.perf_counter() - t)"


def import_time(repeats: int = 5, code: str = IMPORT) -> dict:
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return dict(median=statistics.median(times), min=min(times), max=max(times))


def demo_time(timeout: float = 300) -> dict:
    """Wall time of ``rmlearn demo`` (default settings), or why it could not run."""
    exe = shutil.which("rmlearn", path=str(Path(sys.executable).parent)) or shutil.which("rmlearn")
    if exe is None:
        return {"error": "the `rmlearn` command is not installed (pip install -e . provides it)"}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([exe, "demo", "--out", tmp], capture_output=True, text=True, timeout=timeout, cwd=tmp)
        seconds = time.perf_counter() - start
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"`rmlearn demo` failed (exit {proc.returncode}): {' | '.join(tail)}"}
    return {"seconds": seconds, "last_line": proc.stdout.strip().splitlines()[-1]}


def bench(repeats: int = 5, log=print) -> dict:
    result = {"import_rmlearn_s": import_time(repeats), "import_with_torch_s": import_time(repeats, IMPORT_TORCH)}
    log(f"  import rmlearn: {result['import_rmlearn_s']['median']:.3f} s (median of {repeats}); "
        f"with torch (rmlearn.losses): {result['import_with_torch_s']['median']:.2f} s")
    result["demo"] = demo_time()
    log("  rmlearn demo: " + (f"{result['demo']['seconds']:.1f} s" if "seconds" in result["demo"]
                              else result["demo"]["error"]))
    return result


if __name__ == "__main__":
    print(bench())
