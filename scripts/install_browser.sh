#!/usr/bin/env bash
# Install Debian's Chromium for the browser test (tests/test_browser.py), unless it is already there.
# Playwright's own browser download is not used: the test launches this binary through
# executable_path=shutil.which("chromium"). Idempotent and quiet; prints apt's log only on failure.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium; } >"$log" 2>&1; then
    echo "install_browser.sh: installing chromium with apt-get failed:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi

command -v chromium >/dev/null 2>&1 || { echo "install_browser.sh: chromium still not on PATH" >&2; exit 1; }
echo "install_browser.sh: installed $(command -v chromium)"
