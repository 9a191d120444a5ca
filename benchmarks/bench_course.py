"""Course: execution time of each lesson notebook (``lessons/NN_*.ipynb``), run with nbclient.

Lessons run in a temporary working directory, as in ``tests/test_lessons.py``. The lesson list is
globbed at run time. ``bench_autograde.py`` (owned by the exercises helper) is run if present.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lesson_times(timeout: int = 300, log=print) -> dict:
    import nbformat
    from nbclient import NotebookClient

    os.environ["MPLBACKEND"] = "Agg"  # as in tests/test_lessons.py: kernels inherit it
    result = {}
    for path in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            try:
                NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": tmp}}).execute()
                result[path.name] = {"seconds": time.perf_counter() - start}
            except Exception as err:  # report and go on: one broken lesson should not hide the others
                result[path.name] = {"error": f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:200]}"}
        log(f"  {path.name}: " + (f"{result[path.name]['seconds']:.1f} s" if "seconds" in result[path.name]
                                  else result[path.name]["error"]))
    if not result:
        log("  no lessons/NN_*.ipynb found")
    return result


def autograde(timeout: int = 600, log=print) -> dict:
    script = ROOT / "benchmarks" / "bench_autograde.py"
    if not script.exists():
        return {"error": "benchmarks/bench_autograde.py is not there yet"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    out = {"seconds": time.perf_counter() - start, "exit": proc.returncode,
           "output": (proc.stdout + proc.stderr).strip().splitlines()[-15:]}
    log(f"  bench_autograde.py: exit {proc.returncode} after {out['seconds']:.1f} s")
    return out


def bench(log=print) -> dict:
    return {"lessons": lesson_times(log=log), "autograde": autograde(log=log)}


if __name__ == "__main__":
    print(bench())
