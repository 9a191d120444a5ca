"""A reproducible busy machine: one spinning Python process per CPU core, stopped afterwards.

Shared lab servers, CI runners and laptops running a browser rarely give a process every core;
``with busy_machine():`` recreates that on purpose so the thread-count effect can be measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def busy_machine(n: int | None = None) -> Iterator[int]:
    if n is None:  # one per core this process may run on
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield n
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
