"""The presenter's path, offline: ``rmlearn lessons --slides NN`` serves a lesson as reveal.js slides
(Voila, template ``rmlearn-reveal``), and headless Chromium shows it at 1280×720 with every request
to anything but this machine blocked. The test fails if the page asked for anything from outside,
if reveal.js did not start, if the slides are not one per heading cell, if no widget rendered, or if
a slide runs off the screen without scrolling.

Like tests/test_browser.py: outside CI a missing Chromium or Voila skips; with ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import free_port, wait_for_http

pytestmark = pytest.mark.slow

LESSON = "03"  # a lesson with an explorer and no model training: quick to execute
LESSONS = Path(__file__).parents[1] / "lessons"
VIEWPORT = {"width": 1280, "height": 720}
START_TIMEOUT_S = 90  # Voila runs the whole lesson before the slides start (loaded 2-core machine)
# ... and lesson 09, whose explorer is the calibration slider: it executes for ~30 s of CPU first
SLIDE_LESSONS = {LESSON: START_TIMEOUT_S, "09": 240}  # lesson → seconds for Voila to run it
# the present slide: its box on the screen, and whether what does not fit scrolls
SLIDE_BOX = """() => {
  const s = document.querySelector('.reveal .slides section.present:not(.stack)');
  const r = s.getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, scrollHeight: s.scrollHeight, clientHeight: s.clientHeight,
          overflowY: getComputedStyle(s).overflowY, title: (s.querySelector('h1, h2, h3') || {}).textContent};
}"""


def heading_cells(path: Path) -> int:
    """Markdown cells that start with a heading: each one starts a slide."""
    nb = nbformat.read(path, as_version=4)
    return sum(c.cell_type == "markdown" and c.source.lstrip().startswith("#") for c in nb.cells)


@pytest.fixture(scope="module", params=list(SLIDE_LESSONS))
def slides_server(tmp_path_factory, request):
    """``rmlearn lessons --slides NN`` on a free localhost port: (URL, log path, lesson number)."""
    lesson, start_timeout = request.param, SLIDE_LESSONS[request.param]
    port = free_port()
    log = tmp_path_factory.mktemp("slides") / "voila.log"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    cmd = [sys.executable, "-m", "rmlearn.cli", "lessons", "--slides", lesson, "--no-browser", "--",
           f"--port={port}", "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=True"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(proc, url, log, start_timeout)
        yield url, log, lesson
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # Voila and the lesson's kernel
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def offline_page(browser):
    """A 1280×720 page that may reach this machine only; the list of the requests it had to block
    comes with it."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    blocked: list[str] = []

    def only_this_machine(route):
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "http://localhost:", "data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", only_this_machine)
    yield page, blocked
    context.close()


def test_a_lesson_presents_as_slides_offline_at_1280x720(slides_server, offline_page):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    url, log, number = slides_server
    page, blocked = offline_page
    lesson, start_timeout = next(LESSONS.glob(f"{number}_*.ipynb")), SLIDE_LESSONS[number]
    page.goto(url, timeout=start_timeout * 1000)
    try:
        page.wait_for_selector(".reveal.ready", timeout=start_timeout * 1000)  # reveal.js initialised
        page.wait_for_selector(".jupyter-widgets.widget-slider", state="attached", timeout=30_000)
    except PlaywrightTimeout:
        pytest.fail(f"the slides never started or no widget rendered. Blocked: {blocked}\n"
                    f"Page text:\n{page.inner_text('body')[:1500]}\nVoila log:\n{log.read_text()[-3000:]}",
                    pytrace=False)

    assert blocked == [], f"the slides asked for outside resources: {blocked}"
    slides = page.locator(".reveal .slides > section")
    assert slides.count() == heading_cells(lesson) >= 4

    off_screen, drawn = [], False
    for number in range(slides.count()):
        box = page.evaluate(SLIDE_BOX)
        fits = box["scrollHeight"] <= box["clientHeight"] + 1
        scrolls = box["overflowY"] in ("auto", "scroll")
        if box["top"] < 0 or box["bottom"] > VIEWPORT["height"] + 1 or not (fits or scrolls):
            off_screen.append((number, box))
        sliders = page.locator(".reveal .slides section.present:not(.stack) .jupyter-widgets.widget-slider")
        if sliders.count() and (sliders.first.bounding_box() or {}).get("width", 0) > 50:
            drawn = True  # a slider drawn on the slide that shows it (the others are hidden)
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(100)
    assert not off_screen, f"slides that neither fit in 1280×720 nor scroll: {off_screen}"
    assert drawn, "no slide shows a drawn slider"
    assert blocked == [], f"the slides asked for outside resources: {blocked}"
