#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it:
#   1. every test, on this CPU's own kernels;
#   2. again, the tests marked `kernels` (lessons executed with their claims checked, the course
#      models, the RL experiments, the demo: whatever depends on a trained model's numbers) under a
#      second CPU kernel set, with an empty model cache: what a student whose CPU rounds differently
#      sees. AVX2 when this CPU runs AVX-512, else no SIMD (`default`).
# Extra arguments go to both pytest runs (e.g. a test file, or -x).
# Two workers, --dist loadgroup: tests that share an expensive fixture (the graded course, a server,
# trained models) run on one worker, which builds it once (tests/conftest.py names the groups); the
# groups and the slow tests are handed out first, so neither worker is left alone with a long tail.
# Each run prints its slowest tests (--durations, pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
"$py" -m pytest -n 2 --dist loadgroup "$@"
own=$("$py" -c "import torch; print(torch.backends.cpu.get_cpu_capability().lower())")
other=$([ "$own" = avx512 ] && echo avx2 || echo default)
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
echo "== again under ATEN_CPU_CAPABILITY=$other (this CPU: $own), the tests marked 'kernels'"
marker=kernels rest=()  # a -m EXPR of the caller narrows the second pass to "kernels and (EXPR)"
while [ $# -gt 0 ]; do
    if [ "$1" = -m ] && [ $# -gt 1 ]; then marker="kernels and ($2)"; shift 2; else rest+=("$1"); shift; fi
done
status=0
ATEN_CPU_CAPABILITY=$other RMLEARN_CACHE=$cache "$py" -m pytest -n 2 --dist loadgroup -m "$marker" -p no:cacheprovider ${rest[@]+"${rest[@]}"} || status=$?
[ "$status" -eq 5 ] && status=0  # the arguments selected no such test
exit "$status"
