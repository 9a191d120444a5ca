"""The Jupyter pieces the course relies on are installed and load (nbgrader's lab extension has broken
with new JupyterLab minors before, nbgrader #1948: pinned in pyproject.toml and checked here)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "jupyter", *args], capture_output=True, text=True, timeout=120)
    return ANSI.sub("", result.stdout + result.stderr)


@pytest.mark.slow
def test_lab_extensions_for_widgets_nbgrader_and_voila_are_enabled_and_ok():
    listing = _jupyter("labextension", "list")
    for name in ("@jupyter-widgets/jupyterlab-manager", "@jupyter/nbgrader", "@voila-dashboards/jupyterlab-preview"):
        line = next((x for x in listing.splitlines() if name in x), "")
        assert "enabled" in line and "OK" in line, f"{name} not enabled/OK:\n{listing}"


@pytest.mark.slow
def test_nbgrader_server_extensions_load():
    listing = _jupyter("server", "extension", "list")
    for name in ("formgrader", "assignment_list", "validate_assignment"):
        assert re.search(rf"nbgrader\.server_extensions\.{name}\s+OK", listing), listing
