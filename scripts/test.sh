#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it, in two pytest runs side by side:
#   1. every test, on this CPU's own kernels;
#   2. the tests marked `kernels` (lessons executed with their claims checked, the course models,
#      the RL experiments, the demo: whatever depends on a trained model's numbers) under a second
#      CPU kernel set, with an empty model cache: what a student whose CPU rounds differently sees.
#      AVX2 when this CPU runs AVX-512, else no SIMD (`default`).
# They run at the same time because the first spends much of its time waiting (sandboxed grading
# kernels starting and stopping, browsers, servers): the second fills those cores. Its output is
# printed when the first ends. The exit status is the first failing run's; Ctrl-C stops both.
# Extra arguments go to both pytest runs (e.g. a test file, or -x).
# Two workers each, --dist loadgroup: tests that share an expensive fixture (the graded course, a
# server, trained models) run on one worker, which builds it once (tests/conftest.py names the
# groups); the groups and the slow tests are handed out first, so neither worker is left alone with
# a long tail. Each run prints its slowest tests (--durations, pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
own=$("$py" -c "import torch; print(torch.backends.cpu.get_cpu_capability().lower())")
other=$([ "$own" = avx512 ] && echo avx2 || echo default)
scratch=$(mktemp -d)  # the second run's model cache, pytest folder and output
second=  # the second run's pid, which is also its process group's: its xdist workers are in that group
# on Ctrl-C or a kill, stop the second run too, then remove its folder (set -e holds in a trap: `|| true`)
trap '[ -z "$second" ] || kill -TERM -- "-$second" 2>/dev/null || true; rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM
marker=kernels rest=()  # a -m EXPR of the caller narrows the second run to "kernels and (EXPR)"
args=("$@")
while [ $# -gt 0 ]; do
    if [ "$1" = -m ] && [ $# -gt 1 ]; then marker="kernels and ($2)"; shift 2; else rest+=("$1"); shift; fi
done
mkdir "$scratch/cache" "$scratch/tmp"
ATEN_CPU_CAPABILITY=$other RMLEARN_CACHE=$scratch/cache setsid "$py" -m pytest -n 2 --dist loadgroup \
    -m "$marker" -p no:cacheprovider --basetemp="$scratch/tmp" ${rest[@]+"${rest[@]}"} > "$scratch/second.log" 2>&1 &
second=$!
first_status=0
"$py" -m pytest -n 2 --dist loadgroup ${args[@]+"${args[@]}"} || first_status=$?
second_status=0
wait "$second" || second_status=$?
second=  # ended and reaped: its pid may be reused, never kill it
echo "== the tests marked 'kernels' again, under ATEN_CPU_CAPABILITY=$other (this CPU: $own), empty model cache"
cat "$scratch/second.log"
[ "$second_status" -eq 5 ] && second_status=0  # the arguments selected no such test
[ "$first_status" -ne 0 ] && exit "$first_status"
exit "$second_status"
