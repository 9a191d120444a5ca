#!/usr/bin/env bash
# Install Debian's PostgreSQL server binaries for the gradebook test (tests/test_grading_class.py),
# unless they are already there. The test starts its own throwaway server (initdb into a temporary
# directory, a private unix socket; as root it runs them as the `postgres` user the package
# creates, since initdb refuses root) and stops it; no system cluster needs to run.
# Idempotent and quiet; prints apt's log only on failure.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql; } >"$log" 2>&1; then
    echo "install_postgres.sh: installing postgresql with apt-get failed:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi

compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    || { echo "install_postgres.sh: no /usr/lib/postgresql/*/bin/initdb after installing" >&2; exit 1; }
echo "install_postgres.sh: installed $(ls -d /usr/lib/postgresql/*/bin | head -n 1)"
