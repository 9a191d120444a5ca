#!/usr/bin/env bash
# Create .venv with rmlearn installed (editable). With --test: also the test tools and Chromium.
#
#   bash scripts/setup.sh            # enough for `rmlearn demo`, the lessons and the exercises
#   bash scripts/setup.sh --test     # plus pytest, TRL (benchmarks/parity), Playwright + Chromium,
#                                    # PostgreSQL (the gradebook test starts its own server)
#
# torch is pinned to the 2.13.0 CPU wheel these course machines carry, so installs stay small;
# override with TORCH_SPEC="torch==X" elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# pip byte-compiles what it installs one file after another; compileall below does the same on every core
# (the setup on 2 cores: 49 s → 39 s)
pip=(.venv/bin/python -m pip install --quiet --no-compile)
"${pip[@]}" "${TORCH_SPEC:-torch==2.13.0}"
if [ "${1:-}" = "--test" ]; then
    "${pip[@]}" -e ".[course,grading,test]"
    bash scripts/install_browser.sh
    bash scripts/install_postgres.sh
else
    "${pip[@]}" -e ".[course,grading]"
fi
# as with pip, a file that does not compile on this Python (torch ships Python 3.12-only test helpers) is
# left to fail if it is ever imported; compileall then exits 1, which is no reason to stop the setup
.venv/bin/python -m compileall -qq -j 0 .venv/lib || true
echo "rmlearn is installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
