"""The suite's own scheduling (tests/conftest.py): scripts/test.sh runs ``pytest -n 2 --dist loadgroup``
so that the tests sharing an expensive fixture (the graded course, a server, trained models) run on
one worker, which builds it once. pytest >= 9.2 keeps a node's id where pytest-xdist 3.8 does not
write its group, so conftest.py names the groups itself; this checks that the groups hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

CONFTEST = f"""
import importlib.util, sys
sys.path.insert(0, {str(TESTS)!r})
spec = importlib.util.spec_from_file_location("rmlearn_suite_conftest", {str(TESTS / "conftest.py")!r})
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
pytest_collection_modifyitems = suite.pytest_collection_modifyitems
"""
TESTS_FILE = """
import json, os, time
import pytest


def _log(name):
    with open("workers.jsonl", "a") as f:
        f.write(json.dumps([name, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
    time.sleep(0.3)


@pytest.fixture(scope="module")
def built():
    return 1


@pytest.mark.parametrize("k", range(4))
@pytest.mark.xdist_group("marked")
def test_marked(k):
    _log("marked")


@pytest.mark.parametrize("k", range(4))
def test_with_a_module_fixture(k, built):
    _log("fixture")


@pytest.mark.parametrize("k", range(8))
def test_free(k):
    _log("free")
"""


@pytest.mark.slow
def test_tests_of_one_group_run_on_one_worker_and_the_others_spread(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_groups.py").write_text(TESTS_FILE)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_groups.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen: dict[str, set[str]] = {}
    for line in (tmp_path / "workers.jsonl").read_text().splitlines():
        name, worker = json.loads(line)
        seen.setdefault(name, set()).add(worker)
    assert len(seen["marked"]) == 1 and len(seen["fixture"]) == 1, seen  # each group on one worker
    assert seen["free"] == {"gw0", "gw1"}, seen  # the rest shared out
