#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/test_browser.py, tests/test_slides.py),
# unless it is already there. Playwright's own browser download is not used: the tests launch this
# binary through executable_path=shutil.which("chromium").
set -euo pipefail
exec bash "$(dirname "$0")/apt_install.sh" chromium 'command -v chromium'
