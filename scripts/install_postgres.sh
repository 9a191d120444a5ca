#!/usr/bin/env bash
# Install Debian's PostgreSQL server binaries for the gradebook test (tests/test_grading_class.py),
# unless they are already there. The test starts its own throwaway server (initdb into a temporary
# directory, a private unix socket; as root it runs them as the `postgres` user the package
# creates, since initdb refuses root) and stops it; no system cluster needs to run.
set -euo pipefail
exec bash "$(dirname "$0")/apt_install.sh" postgresql 'compgen -G "/usr/lib/postgresql/*/bin/initdb"'
