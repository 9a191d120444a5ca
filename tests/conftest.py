"""Shared fixtures: the course tokenizer, tiny seeded models (cheap: built in well under a second),
Debian's headless Chromium for the browser tests, and the one graded course of the grading tests
(``graded_course.py``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from graded_course import graded_course  # noqa: F401  (a fixture, built once per test run)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach a model hub
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


GRADED_COURSE_GROUP = "graded-course"


def _xdist_group(item) -> str | None:
    """Which tests must share an xdist worker, so that a fixture built once per file or per run is
    built once and not once per worker: those that use the graded course (one group), and those
    of one file that use a module- or session-scoped fixture defined in that file (a server, a
    built wheel, trained models: one group per file)."""
    if "graded_course" in getattr(item, "fixturenames", ()):
        return GRADED_COURSE_GROUP
    module = item.nodeid.split("::")[0]
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    if any(d.scope in ("module", "session") and d.baseid == module for found in defs.values() for d in found):
        return module
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (--dist loadgroup, scripts/test.sh)
def pytest_collection_modifyitems(config, items):
    # tests marked slow first (xdist hands out work in this order, after the groups): a long test
    # started last would leave one worker running it alone
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        group = _xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        if getattr(config.option, "loadgroup", False):  # set on xdist workers
            _name_group(item)


def _name_group(item) -> None:
    """What ``--dist loadgroup`` does to a test's node id (``nodeid@group``, read by the controller's
    scheduler), for pytest >= 9.2: it keeps the id in ``_id``, and pytest-xdist 3.8 still writes
    ``_nodeid``, so every group is silently ignored. A no-op where xdist's own suffix works."""
    groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                     for m in item.iter_markers("xdist_group")})
    if groups and hasattr(item, "_id") and not hasattr(item, "_nodeid") and "@" not in item.nodeid:
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")


@pytest.fixture(scope="session")
def tokenizer():
    from rmlearn import course_tokenizer

    return course_tokenizer()


@pytest.fixture
def reward_model():
    from rmlearn import RewardModel, tiny_backbone

    return RewardModel(tiny_backbone(seed=0), seed=0).eval()


CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",  # the machine's closed network refuses Chromium's own calls
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def unavailable(reason: str):
    """Missing browser or server: a failure in CI, a skip (with the reason) elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # also from a test module's top level


def assert_redraws(box, **values) -> None:
    """An explorer's controls are all labelled, it shows a PNG, and setting its controls to ``values``
    (in order) draws a different one."""
    assert all(control.description for control in box.controls.values())
    image = bytes(box.image.value)
    assert image.startswith(b"\x89PNG")
    for name, value in values.items():
        box.controls[name].value = value
    assert bytes(box.image.value) != image


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_for_http(proc: subprocess.Popen, url: str, log: Path, timeout_s: float, name: str = "voila") -> None:
    """Wait until the server ``proc`` answers ``url`` (any HTTP status); ``unavailable`` with its log's
    tail if it exits or stays silent for ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            unavailable(f"{name} exited with code {proc.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers, that is all we wait for
        except OSError:
            time.sleep(0.2)
    unavailable(f"{name} did not answer on {url} within {timeout_s} s:\n{log_tail(log)}")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium launched through Playwright (its own download is not used)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        unavailable(f"playwright is not installed: {exc}")
    executable = shutil.which("chromium")
    if executable is None:
        unavailable("chromium is not on PATH; run scripts/install_browser.sh")
    playwright = sync_playwright().start()
    try:
        try:
            chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        except Error as exc:
            unavailable(f"chromium ({executable}) did not start: {exc}")
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
