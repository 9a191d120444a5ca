#!/usr/bin/env bash
# Install one Debian package with apt-get unless CHECK (a shell condition) already holds; then
# require CHECK. Idempotent and quiet: prints apt's log only on failure. Used by install_browser.sh
# and install_postgres.sh.
#
#   bash scripts/apt_install.sh PACKAGE 'CHECK'
set -euo pipefail
package=$1
check=$2

if eval "$check" >/dev/null 2>&1; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq "$package"; } >"$log" 2>&1; then
    echo "apt_install.sh: installing $package with apt-get failed:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi

eval "$check" >/dev/null 2>&1 || { echo "apt_install.sh: '$check' still fails after installing $package" >&2; exit 1; }
echo "apt_install.sh: installed $package"
