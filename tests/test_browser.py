"""The course explorers in a real browser: Voila serves a dashboard notebook from ``tests/browser/``,
headless Chromium (Debian's, driven by Playwright) moves a control, and the number the page shows
must be exactly the one the rmlearn library computes in this process. The calibration and ties
explorers are also run as a student runs them, inside JupyterLab: the notebook opened, Run → Run All
Cells from the menu, the slider moved in the cell's output.

Chromium comes from ``scripts/install_browser.sh``. Outside CI a missing browser or a Voila that
will not start skips these tests with the reason; with ``CI=true`` they fail instead (JupyterLab likewise).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import free_port, log_tail, unavailable, wait_for_http

pytestmark = pytest.mark.slow

BROWSER_DIR = Path(__file__).parent / "browser"
START_TIMEOUT_S = 60  # Voila answering HTTP, and a dashboard's first render (imports torch, transformers)
UPDATE_TIMEOUT_S = 20  # a control moved → the new number on the page
# Kernel and this process compute with one thread each, so their float sums run in the same order.
KERNEL_THREADS = 1


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    """A Voila server for ``tests/browser/`` on a free localhost port: (base URL, log path).

    Always stopped at teardown, together with any kernel it leaves behind.
    """
    voila_bin = shutil.which("voila", path=os.path.dirname(sys.executable)) or shutil.which("voila")
    if voila_bin is None:
        unavailable("voila is not installed in this environment")
    port = free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    # the kernels inherit this environment; conftest's MPLBACKEND=Agg is put back to a kernel's default
    env = dict(os.environ, OMP_NUM_THREADS=str(KERNEL_THREADS), MKL_NUM_THREADS=str(KERNEL_THREADS),
               HF_HUB_OFFLINE="1", MPLBACKEND="module://matplotlib_inline.backend_inline")
    cmd = [voila_bin, str(BROWSER_DIR), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
           "--VoilaConfiguration.show_tracebacks=True"]
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=BROWSER_DIR)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(proc, url, log, START_TIMEOUT_S)
        yield url, log
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM lets Voila shut its kernels down; whatever survives 10 s is killed."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    yield context.new_page()
    context.close()


def open_dashboard(page, voila, notebook: str, ready_selector: str):
    """Render ``tests/browser/<notebook>`` and wait until ``ready_selector`` is on the page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url, log = voila
    page.goto(f"{url}voila/render/{notebook}", timeout=START_TIMEOUT_S * 1000)
    try:
        page.wait_for_selector(ready_selector, timeout=START_TIMEOUT_S * 1000)
    except PlaywrightTimeout:
        pytest.fail(f"{notebook}: {ready_selector!r} never appeared. Page text:\n"
                    f"{page.inner_text('body')[:2000]}\nVoila log:\n{log_tail(log)}", pytrace=False)


def set_slider(page, description: str, value) -> None:
    """Type ``value`` into the readout box of the slider labelled ``description`` and press Enter
    (what Voila's own UI tests do)."""
    label = page.locator(".widget-label", has_text=description)
    readout = page.locator(".widget-slider", has=label).locator(".widget-readout")
    readout.fill(str(value))
    readout.press("Enter")


def expect_text(page, selector: str, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator(selector)).to_have_text(text, timeout=UPDATE_TIMEOUT_S * 1000)


@contextmanager
def kernel_threads():
    """Compute expected values with the kernel's thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(KERNEL_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _loss_numbers(r_chosen: float, r_rejected: float, margin: float = 0.0) -> dict[str, str]:
    """The loss explorer's table as it must read, from rmlearn's pairwise loss and autograd."""
    from rmlearn import centering_penalty, pairwise_loss

    chosen = torch.tensor([r_chosen], dtype=torch.float64, requires_grad=True)  # (1,)
    rejected = torch.tensor([r_rejected], dtype=torch.float64, requires_grad=True)  # (1,)
    loss = pairwise_loss(chosen, rejected, margin)
    grad_chosen, grad_rejected = torch.autograd.grad(loss, (chosen, rejected))
    numbers = {"gap": r_chosen - r_rejected, "loss": loss.item(), "grad-chosen": grad_chosen.item(),
               "grad-rejected": grad_rejected.item(),
               "centering": centering_penalty(chosen.detach(), rejected.detach()).item()}
    return {name: f"{value:.4f}" for name, value in numbers.items()}


def expect_loss_table(page, numbers: dict[str, str]) -> None:
    for name, text in numbers.items():
        expect_text(page, f".rm-{name}", text)


def test_loss_explorer_shows_rmlearn_pairwise_loss_as_sliders_move(page, voila):
    from playwright.sync_api import expect

    open_dashboard(page, voila, "loss_dashboard.ipynb", ".rm-loss")
    expect_loss_table(page, _loss_numbers(1.0, 0.0))  # the explorer's starting scores
    plot = page.locator(".jupyter-widgets img")  # an ipywidgets Image, or a PNG in an Output
    expect(plot, "the explorer shows no plot image (a Figure shown as text?)").to_have_count(
        1, timeout=UPDATE_TIMEOUT_S * 1000)
    first_plot = plot.get_attribute("src")

    # the model prefers the rejected answer, and a margin asks for even more: a large loss
    set_slider(page, "r_chosen", 0.4)
    set_slider(page, "r_rejected", 1.3)
    set_slider(page, "margin", 0.5)
    wrong_way = _loss_numbers(0.4, 1.3, 0.5)
    expect_loss_table(page, wrong_way)
    assert float(wrong_way["loss"]) > 1.0
    expect(plot).not_to_have_attribute("src", first_plot, timeout=UPDATE_TIMEOUT_S * 1000)  # redrawn

    # adding the same number to both scores leaves loss and gradients alone; only centering sees it
    set_slider(page, "shift both", 2.5)
    shifted = _loss_numbers(0.4 + 2.5, 1.3 + 2.5, 0.5)
    expect_loss_table(page, shifted)
    assert shifted["loss"] == wrong_way["loss"] and shifted["centering"] != wrong_way["centering"]


def _pooling_expectations():
    """What the pooling explorer must show, computed here with the library."""
    from rmlearn import RewardModel, course_tokenizer, support_pairs, tiny_backbone
    from rmlearn.inputs import encode
    from rmlearn.synthetic import filler_words
    from rmlearn.views import padded_answer, padding_flip, pooling_view

    with kernel_threads():  # the same seeded model as the dashboard notebook builds
        model, tok = RewardModel(tiny_backbone(seed=0), seed=0).eval(), course_tokenizer()
        # what the explorer shows first: a padded answer, padded as in its pair's batch
        first, label = padding_flip(model, tok) or padded_answer(tok, support_pairs()[0])
        answer, other = getattr(first, label), getattr(first, "rejected" if label == "chosen" else "chosen")
        in_batch = len(encode(tok, first.prompt, other)) - len(encode(tok, first.prompt, answer))
        views = {
            "start": pooling_view(model, tok, first.prompt, answer, pad=in_batch, side="right"),
            "unpadded": pooling_view(model, tok, first.prompt, answer),
            "longer": pooling_view(model, tok, first.prompt, answer, filler=7),
        }
        # EOS pooling is what RewardModel.score uses: an independent path to the same number
        eos_longer = model.score([first.prompt], [f"{answer} {filler_words(7)}"], tok)[0].item()
    return {name: {how: f"{r:.4f}" for how, r in view.scores.items()} for name, view in views.items()}, \
        f"{eos_longer:.4f}"


def test_pooling_explorer_shows_library_rewards_as_sliders_move(page, voila):
    with ThreadPoolExecutor(1) as pool:  # compute our numbers while the page renders
        expected = pool.submit(_pooling_expectations)
        open_dashboard(page, voila, "pooling_dashboard.ipynb", ".rm-score-eos")
        shown, eos_longer = expected.result()

    for how in ("eos", "mean", "last"):
        expect_text(page, f".rm-score-{how}", shown["start"][how])

    set_slider(page, "Padding", 0)  # no padding: the naive last column reads EOS again
    expect_text(page, ".rm-score-last", shown["unpadded"]["last"])
    assert shown["unpadded"]["last"] != shown["start"]["last"]
    assert shown["unpadded"]["last"] == shown["unpadded"]["eos"]
    expect_text(page, ".rm-score-eos", shown["start"]["eos"])  # EOS is immune to padding

    set_slider(page, "Filler words", 7)
    expect_text(page, ".rm-score-eos", shown["longer"]["eos"])
    assert shown["longer"]["eos"] == eos_longer
    assert shown["longer"]["eos"] != shown["start"]["eos"]


CALIBRATION_GAPS = [3.0, 2.5, 3.5, -3.0, 4.0, -2.0, 0.5, 1.5, 2.0, -1.0]  # as tests/browser/calibration_dashboard.ipynb


def test_calibration_explorer_shows_rmlearn_ece_as_the_temperature_moves(page, voila):
    """Lesson 09's explorer: the ECE on the page is rmlearn.expected_calibration_error at the slider's T."""
    from playwright.sync_api import expect

    from rmlearn import expected_calibration_error

    gaps = torch.tensor(CALIBRATION_GAPS)
    open_dashboard(page, voila, "calibration_dashboard.ipynb", ".rm-ece")
    expect_text(page, ".rm-ece", f"{expected_calibration_error(gaps, 1.0):.3f}")  # starts at T = 1
    plot = page.locator(".jupyter-widgets img")
    expect(plot).to_have_count(1, timeout=UPDATE_TIMEOUT_S * 1000)
    first_plot = plot.get_attribute("src")
    set_slider(page, "temperature T", 2.5)
    expect_text(page, ".rm-t", "2.50")
    expect_text(page, ".rm-ece", f"{expected_calibration_error(gaps, 2.5):.3f}")
    assert f"{expected_calibration_error(gaps, 2.5):.3f}" != f"{expected_calibration_error(gaps, 1.0):.3f}"
    expect(plot).not_to_have_attribute("src", first_plot, timeout=UPDATE_TIMEOUT_S * 1000)  # redrawn


def _ties_numbers(gap: float, nu: float, kappa: float) -> dict[str, str]:
    """The ties explorer's table as it must read, from rmlearn's Rao–Kupper and Davidson formulas."""
    from rmlearn import davidson_probs, rao_kupper_probs

    delta = torch.tensor([gap], dtype=torch.float64)
    rk, dv = rao_kupper_probs(delta, nu)[0].tolist(), davidson_probs(delta, kappa)[0].tolist()
    parts = ("win", "tie", "loss")
    return {**{f"rk-{p}": f"{v:.4f}" for p, v in zip(parts, rk)}, **{f"dv-{p}": f"{v:.4f}" for p, v in zip(parts, dv)}}


def test_ties_explorer_shows_rmlearn_tie_probabilities_as_sliders_move(page, voila):
    from playwright.sync_api import expect

    open_dashboard(page, voila, "ties_dashboard.ipynb", ".rm-rk-tie")
    for name, text in _ties_numbers(0.5, 1.0, 1.0).items():  # the explorer's starting values
        expect_text(page, f".rm-{name}", text)
    plot = page.locator(".jupyter-widgets img")
    expect(plot).to_have_count(1, timeout=UPDATE_TIMEOUT_S * 1000)
    first_plot = plot.get_attribute("src")

    # a clear gap and a small threshold: the tie almost vanishes under Rao–Kupper
    set_slider(page, "gap r_a − r_b", 3.0)
    set_slider(page, "ν (Rao–Kupper)", 0.5)
    set_slider(page, "κ (Davidson)", 2.0)
    moved = _ties_numbers(3.0, 0.5, 2.0)
    for name, text in moved.items():
        expect_text(page, f".rm-{name}", text)
    assert float(moved["rk-tie"]) < 0.1 < float(moved["dv-tie"])
    expect(plot).not_to_have_attribute("src", first_plot, timeout=UPDATE_TIMEOUT_S * 1000)  # redrawn


# ---- the same explorers inside JupyterLab: the notebook opened, run from the Run menu, driven in place ----

LAB_START_TIMEOUT_S = 60  # JupyterLab answering HTTP; the page's own load and the cells' first run
REPO_ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """``jupyter lab`` on a free localhost port with no token, serving a temporary copy of
    ``tests/browser/``: (base URL, log path). Its settings and workspaces live in temporary folders,
    so nothing a user saved changes what the page shows. Always stopped at teardown, with its kernels.
    """
    lab_bin = shutil.which("jupyter-lab", path=os.path.dirname(sys.executable)) or shutil.which("jupyter-lab")
    if lab_bin is None:
        unavailable("jupyterlab is not installed in this environment")
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "notebooks"
    shutil.copytree(BROWSER_DIR, root)
    port, log = free_port(), home / "jupyterlab.log"
    # the kernel imports this checkout's rmlearn and sums floats with the thread count used here
    env = dict(os.environ, OMP_NUM_THREADS=str(KERNEL_THREADS), MKL_NUM_THREADS=str(KERNEL_THREADS),
               HF_HUB_OFFLINE="1", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    cmd = [lab_bin, "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True", "--allow-root", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(proc, f"{url}api/status", log, LAB_START_TIMEOUT_S, "jupyter lab")
        yield url, log
    finally:
        _stop(proc)


def open_in_lab(page, jupyterlab, notebook: str, ready_selector: str) -> str:
    """Open ``notebook`` in JupyterLab (a fresh workspace), wait for its kernel, run every cell from
    the Run menu and wait until ``ready_selector`` shows in the notebook's output area. Returns the
    selector prefix for that output area."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    url, log = jupyterlab
    output = ".jp-NotebookPanel .jp-OutputArea-output"
    step = "load JupyterLab"
    try:
        page.goto(f"{url}lab/tree/{notebook}?reset", timeout=LAB_START_TIMEOUT_S * 1000)
        step = "the notebook's kernel to start"
        # the status bar says "Python 3 (ipykernel) | Idle" once the kernel is connected; the toolbar's
        # execution indicator reads idle even before that, and Run All then runs nothing
        kernel_idle = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
        kernel_idle.wait_for(timeout=LAB_START_TIMEOUT_S * 1000)
        # ?reset gave a fresh workspace: this notebook is the only one open, not one restored with it
        expect(page.locator(".jp-NotebookPanel")).to_have_count(1)
        step = "Run → Run All Cells"
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        step = "the code cells to start running (their prompts still read [ ]:)"
        expect(page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt", has_text=re.compile(r"\[[*0-9]+\]"))
               ).to_have_count(page.locator(".jp-NotebookPanel .jp-CodeCell").count(), timeout=10_000)
        step = f"{ready_selector!r} in the output area"
        page.wait_for_selector(f"{output} {ready_selector}", timeout=LAB_START_TIMEOUT_S * 1000)
    except (PlaywrightTimeout, AssertionError):
        shown = page.inner_text("body")[:2000] if page.locator("body").count() else ""
        pytest.fail(f"{notebook} in JupyterLab: gave up waiting for {step}. Page text:\n{shown}\n"
                    f"JupyterLab log:\n{log_tail(log)}", pytrace=False)
    return output


def test_calibration_explorer_works_in_jupyterlab(page, jupyterlab):
    """Lesson 09's explorer run as a student runs it, in JupyterLab: the ECE in the cell's output is
    rmlearn.expected_calibration_error at the slider's T, before and after the slider moves."""
    from playwright.sync_api import expect

    from rmlearn import expected_calibration_error

    gaps = torch.tensor(CALIBRATION_GAPS)
    out = open_in_lab(page, jupyterlab, "calibration_dashboard.ipynb", ".rm-ece")
    expect_text(page, f"{out} .rm-ece", f"{expected_calibration_error(gaps, 1.0):.3f}")  # starts at T = 1
    plot = page.locator(f"{out} .jupyter-widgets img")
    expect(plot).to_have_count(1, timeout=UPDATE_TIMEOUT_S * 1000)
    first_plot = plot.get_attribute("src")
    set_slider(page, "temperature T", 2.5)
    expect_text(page, f"{out} .rm-t", "2.50")
    expect_text(page, f"{out} .rm-ece", f"{expected_calibration_error(gaps, 2.5):.3f}")
    assert f"{expected_calibration_error(gaps, 2.5):.3f}" != f"{expected_calibration_error(gaps, 1.0):.3f}"
    expect(plot).not_to_have_attribute("src", first_plot, timeout=UPDATE_TIMEOUT_S * 1000)  # redrawn


def test_ties_explorer_works_in_jupyterlab(page, jupyterlab):
    """The ties explorer in JupyterLab: its win, tie and loss probabilities are rmlearn's, before and
    after the sliders move."""
    out = open_in_lab(page, jupyterlab, "ties_dashboard.ipynb", ".rm-rk-tie")
    for name, text in _ties_numbers(0.5, 1.0, 1.0).items():  # the explorer's starting values
        expect_text(page, f"{out} .rm-{name}", text)
    set_slider(page, "gap r_a − r_b", 3.0)
    set_slider(page, "ν (Rao–Kupper)", 0.5)
    set_slider(page, "κ (Davidson)", 2.0)
    for name, text in _ties_numbers(3.0, 0.5, 2.0).items():
        expect_text(page, f"{out} .rm-{name}", text)
