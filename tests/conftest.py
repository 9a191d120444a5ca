"""Shared fixtures: the course tokenizer, tiny seeded models (cheap: built in well under a second), and
Debian's headless Chromium for the browser tests."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach a model hub
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


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
