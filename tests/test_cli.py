"""The `rmlearn` command: train → score round trip, clear errors, the demo, and a light import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from rmlearn import RewardModel, course_tokenizer, support_pairs, synthetic_preferences
from rmlearn.cli import main


def _jsonl(path, pairs):
    path.write_text("".join(json.dumps({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}) + "\n"
                            for p in pairs))
    return path


def test_train_then_score_round_trip(tmp_path, capsys):
    data = _jsonl(tmp_path / "prefs.jsonl", synthetic_preferences(40, seed=0))
    main(["train", str(data), "--out", str(tmp_path / "rm"), "--epochs", "1"])
    out = capsys.readouterr().out
    assert "32 training and 8 held-out examples" in out
    metrics = json.loads((tmp_path / "rm" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_num_pairs"] == 8
    assert (tmp_path / "rm" / "training.png").stat().st_size > 1000

    pair = support_pairs()[0]
    main(["score", str(tmp_path / "rm"), "--prompt", pair.prompt, "--response", pair.chosen,
          "--response", pair.rejected])
    printed = [float(line.split("\t")[0]) for line in capsys.readouterr().out.strip().splitlines()]
    expected = RewardModel.from_pretrained(tmp_path / "rm").score(pair.prompt, [pair.chosen, pair.rejected],
                                                                  course_tokenizer())
    assert printed == pytest.approx(expected.tolist(), abs=1e-4)


def test_bad_data_file_exits_2_naming_file_and_line(tmp_path, capsys):
    data = tmp_path / "broken.jsonl"
    data.write_text('{"prompt": "Q", "chosen": "a", "rejected": "b"}\n{"prompt": "Q", "chosen": "a"}\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(data), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert f"{data}:2: missing key 'rejected'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_score_a_folder_that_is_not_a_model(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["score", str(tmp_path), "--prompt", "q", "--response", "a"])
    assert "has no rmlearn_config.json" in capsys.readouterr().err


def test_import_loads_neither_torch_nor_transformers():
    code = ("import sys, time; t = time.perf_counter(); import rmlearn; "
            "print(time.perf_counter() - t, 'torch' in sys.modules, 'transformers' in sys.modules)")
    _, torch_loaded, transformers_loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert (torch_loaded, transformers_loaded) == ("False", "False")


@pytest.mark.slow
def test_demo_trains_and_prints_scores(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rmlearn.cli", "demo", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("Held-out pairs ranked correctly"))
    accuracy = float(line.split(":")[1].split("%")[0]) / 100
    assert accuracy >= 0.95
    assert "The model prefers the answer the annotators chose." in result.stdout
    assert "The model reads the question" in result.stdout
    assert (tmp_path / "training.png").stat().st_size > 1000
    assert "reward model: 100%" in result.stderr  # the tqdm progress bar ran to the end


def test_course_init_writes_a_course_and_refuses_to_overwrite(tmp_path, capsys):
    main(["course", "init", str(tmp_path / "course")])
    assert "nbgrader generate_assignment" in capsys.readouterr().out
    assert (tmp_path / "course" / "nbgrader_config.py").exists()
    assert len(list((tmp_path / "course" / "source").glob("ps*/ps*.ipynb"))) == 4
    with pytest.raises(SystemExit) as exit_info:
        main(["course", "init", str(tmp_path / "course")])
    assert exit_info.value.code == 2 and "--force" in capsys.readouterr().err


def test_lessons_slides_names_the_lessons_when_the_number_matches_none(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["lessons", "--slides", "99"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "'99' names no single lesson" in err and "03_learning_from_comparisons" in err


@pytest.mark.slow
def test_lessons_command_serves_the_lessons_in_jupyterlab():
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "rmlearn.cli", "lessons", "--no-browser", "--", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=rmlearn-test"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, names = time.monotonic() + 90, None
        while names is None and time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{port}/api/contents?token=rmlearn-test"
                with urllib.request.urlopen(url, timeout=5) as response:
                    names = sorted(item["name"] for item in json.load(response)["content"])
            except OSError:
                assert server.poll() is None, "jupyter lab exited"
                time.sleep(0.5)
        assert names is not None, "JupyterLab did not answer within 90 s"
        assert [n for n in names if n.endswith(".ipynb")][:2] == ["01_text_to_one_number.ipynb",
                                                                   "02_which_hidden_state.ipynb"]
        assert len([n for n in names if n.endswith(".ipynb")]) == 7
        _assert_no_nbgrader_authoring_ui(f"http://127.0.0.1:{port}", "rmlearn-test")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and anything it started
        server.wait(timeout=30)


def _assert_no_nbgrader_authoring_ui(base: str, token: str) -> None:
    """The students' JupyterLab: nbgrader's lab extension (menu, panels, the "No nbgrader_config.py
    found" notice) is disabled in the page config and the extension manager, its server extensions
    are not loaded, and the widgets extension still is."""
    import re
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as response:
        page = response.read().decode()
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                  page, re.S).group(1))
    assert "@jupyter/nbgrader" in config["disabledExtensions"]
    with urllib.request.urlopen(f"{base}/lab/api/extensions?token={token}", timeout=10) as response:
        enabled = {e["name"]: e["enabled"] for e in json.load(response)}  # names normalised by the manager
    assert enabled["jupyter-nbgrader"] is False
    assert enabled["jupyter-widgets-jupyterlab-manager"]  # widgets stay
    with pytest.raises(urllib.error.HTTPError) as not_found:
        urllib.request.urlopen(f"{base}/formgrader?token={token}", timeout=10)
    assert not_found.value.code == 404
