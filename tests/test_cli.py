"""The `rmlearn` command: train → score round trip, clear errors, the demo, and a light import."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from rmlearn import RewardModel, course_tokenizer, support_pairs, synthetic_preferences, tiny_backbone
from rmlearn.cli import main
from rmlearn.course import course_path
from rmlearn.grading.instructor import ASSIGNMENTS


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
    assert "has no config.json" in capsys.readouterr().err


def test_import_loads_neither_torch_nor_transformers():
    code = ("import sys, time; t = time.perf_counter(); import rmlearn; "
            "print(time.perf_counter() - t, 'torch' in sys.modules, 'transformers' in sys.modules)")
    _, torch_loaded, transformers_loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert (torch_loaded, transformers_loaded) == ("False", "False")


def test_parser_loads_neither_torch_nor_transformers():
    """`rmlearn --help` only builds the parser: its choices and defaults come from rmlearn.config."""
    code = ("import sys, rmlearn.cli; rmlearn.cli._parser().format_help(); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == ["False", "False"]


@pytest.mark.slow
@pytest.mark.kernels
def test_demo_trains_and_prints_scores(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rmlearn.cli", "demo", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("Held-out pairs ranked correctly"))
    accuracy = float(line.split(":")[1].split("%")[0]) / 100
    assert accuracy >= 0.97
    assert "The model prefers the helpful answer." in result.stdout
    words = re.search(r"two answers of (\d+) words each", result.stdout).group(1)
    lines = result.stdout.splitlines()
    example = lines[lines.index(next(x for x in lines if x.startswith("Prompt:"))) + 1:][:2]
    assert [len(x.split()) - 1 for x in example] == [int(words)] * 2  # equal length: the score is not length
    assert "The model reads the question: its own answer" in result.stdout and "beats all 5 of them" in result.stdout
    assert f"saved to {(tmp_path / 'training.png').resolve()}" in result.stdout
    assert (tmp_path / "training.png").stat().st_size > 1000
    assert "reward model: 100%" in result.stderr  # the tqdm progress bar ran to the end


def test_course_init_writes_a_course_and_refuses_to_overwrite(tmp_path, capsys):
    main(["course", "init", str(tmp_path / "course")])
    assert "nbgrader generate_assignment" in capsys.readouterr().out
    assert (tmp_path / "course" / "nbgrader_config.py").exists()
    assert len(list((tmp_path / "course" / "source").glob("ps*/ps*.ipynb"))) == len(ASSIGNMENTS)
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
        assert len([n for n in names if n.endswith(".ipynb")]) == len(list(course_path("lessons").glob("*.ipynb")))
        _assert_no_nbgrader_authoring_ui(f"http://127.0.0.1:{port}", "rmlearn-test")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and anything it started
        server.wait(timeout=30)


def _tiny_backbone_dir(tmp_path):
    """A local 'pretrained' backbone and tokenizer folder (random init, no hub)."""
    from rmlearn import tiny_backbone

    folder = tmp_path / "backbone"
    tiny_backbone(seed=4).save_pretrained(folder)
    course_tokenizer().save_pretrained(folder)
    return folder


def test_train_with_backbone_dtype_grad_accum_eval_split_then_score_and_eval(tmp_path, capsys):
    from rmlearn.inputs import encode_many

    pairs = synthetic_preferences(40, seed=1)
    data = _jsonl(tmp_path / "prefs.jsonl", pairs)
    main(["train", str(data), "--out", str(tmp_path / "rm"), "--backbone", str(_tiny_backbone_dir(tmp_path)),
          "--dtype", "bf16", "--device", "cpu", "--grad-accum", "2", "--eval-split", "0.25", "--epochs", "2",
          "--max-length", "24", "--threads", "1"])
    out = capsys.readouterr().out
    assert "30 training and 10 held-out examples" in out
    assert "lr 1e-05, 1 CPU thread(s), 2 optimizer steps (4 batches)" in out  # the pretrained lr; 2 batches an epoch
    assert "epoch 1: held-out accuracy" in out and "epoch 2: held-out accuracy" in out
    long_pairs = sum(max(len(a), len(b)) > 24 for a, b in zip(*(
        encode_many(course_tokenizer(), [p.prompt for p in pairs], texts)
        for texts in ([p.chosen for p in pairs], [p.rejected for p in pairs]))))
    metrics = json.loads((tmp_path / "rm" / "metrics.json").read_text())
    assert len(metrics["eval_accuracy_per_epoch"]) == 2 and metrics["test_num_pairs"] == 10
    assert 0 < metrics["too_long"] <= long_pairs  # counted among the 30 training pairs

    rows = [{"prompt": "Q?", "response": "An answer."}, {"prompt": "Q?", "chosen": "Yes.", "rejected": "No."},
            {"prompt": "Q?", "responses": ["a", "b", "c"]}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    main(["score", str(tmp_path / "rm"), "--jsonl", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "s.jsonl")])
    scored = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    model = RewardModel.from_pretrained(tmp_path / "rm")
    expected = model.score(["Q?"] * 6, ["An answer.", "Yes.", "No.", "a", "b", "c"], course_tokenizer()).tolist()
    got = [scored[0]["score"], scored[1]["score_chosen"], scored[1]["score_rejected"], *scored[2]["scores"]]
    assert got == pytest.approx(expected, abs=1e-5) and scored[1]["chosen"] == "Yes."

    capsys.readouterr()
    eval_data = _jsonl(tmp_path / "eval.jsonl", pairs[:12])
    main(["eval", str(tmp_path / "rm"), str(eval_data), "--json"])
    metrics = json.loads(capsys.readouterr().out)
    chosen = model.score([p.prompt for p in pairs[:12]], [p.chosen for p in pairs[:12]], course_tokenizer())
    rejected = model.score([p.prompt for p in pairs[:12]], [p.rejected for p in pairs[:12]], course_tokenizer())
    shorter = torch.tensor([len(p.chosen) < len(p.rejected) for p in pairs[:12]])
    assert metrics["accuracy"] == pytest.approx((chosen > rejected).float().mean().item())
    assert metrics["mean_gap"] == pytest.approx((chosen - rejected).mean().item(), abs=1e-5)
    assert metrics["num_shorter_chosen"] == int(shorter.sum()) > 0
    assert metrics["length_controlled_accuracy"] == pytest.approx((chosen > rejected)[shorter].float().mean().item())
    main(["eval", str(tmp_path / "rm"), str(eval_data)])
    text = capsys.readouterr().out
    assert f"mean gap r_chosen − r_rejected:   {metrics['mean_gap']:+.4f}" in text
    assert f"on the {int(shorter.sum())} pairs whose chosen response is the shorter one" in text


def test_score_and_eval_refuse_a_model_folder_without_tokenizer(tmp_path, capsys):
    RewardModel(tiny_backbone()).save_pretrained(tmp_path / "rm")  # no tokenizer saved
    (tmp_path / "in.jsonl").write_text('{"prompt": "Q", "response": "A"}\n')
    for argv in (["score", str(tmp_path / "rm"), "--jsonl", str(tmp_path / "in.jsonl")],
                 ["eval", str(tmp_path / "rm"), str(tmp_path / "in.jsonl")]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert f"{tmp_path / 'rm'} has no tokenizer" in capsys.readouterr().err


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


# --- defects a user hit (each test failed before its fix) --------------------------------------------------------------

def _error(argv, capsys) -> str:
    """Run the CLI expecting a clean failure: exit status 2 and one `rmlearn: error:` line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    assert exit_info.value.code == 2, captured
    assert captured.err.splitlines()[-1].startswith("rmlearn: error: ") and "Traceback" not in captured.err
    return captured.err + captured.out


def test_flags_are_checked_before_data_and_model_are_loaded(tmp_path, capsys):
    missing = str(tmp_path / "missing.jsonl")  # a flag error is reported first: nothing was read
    assert "lr must be a positive number, got 0" in _error(["train", missing, "--out", str(tmp_path / "o"), "--lr", "0"], capsys)
    assert "epochs must be a positive integer, got 0" in _error(["train", missing, "--out", str(tmp_path / "o"), "--epochs", "0"], capsys)
    (tmp_path / "file").write_text("x")
    data = _jsonl(tmp_path / "prefs.jsonl", synthetic_preferences(8, seed=0))
    err = _error(["train", str(data), "--out", str(tmp_path / "file")], capsys)
    assert "--out" in err and "is a file" in err and "training" not in err.lower().split("error:")[0]
    if not torch.cuda.is_available():
        assert "CUDA" in _error(["train", str(data), "--out", str(tmp_path / "o"), "--device", "cuda"], capsys)


def test_missing_or_mismatched_backbone_and_tokenizer_are_clean_errors(tmp_path, capsys):
    data = _jsonl(tmp_path / "prefs.jsonl", synthetic_preferences(8, seed=0))
    out = ["--out", str(tmp_path / "o"), "--epochs", "1"]
    err = _error(["train", str(data), *out, "--backbone", str(tmp_path / "nope")], capsys)
    assert f"--backbone {tmp_path / 'nope'}: no tokenizer folder" in err
    assert "mistyped-folder" in _error(["train", str(data), *out, "--backbone", "mistyped-folder"], capsys)
    assert "nope" in _error(["train", str(data), *out, "--tokenizer", str(tmp_path / "nope")], capsys)
    small = tmp_path / "small"
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(vocab_size=100, n_embd=32, n_layer=1, n_head=4)).save_pretrained(small)
    assert "vocabulary of 100" in _error(["train", str(data), *out, "--backbone", str(small),
                                          "--tokenizer", str(_tiny_backbone_dir(tmp_path))], capsys)
    assert "the training loss is" in _error(["train", str(data), *out, "--lr", "1e30", "--eval-split", "0",
                                            "--epochs", "3"], capsys)


def test_field_limit_flag_and_the_too_long_message(tmp_path, capsys):
    pairs = synthetic_preferences(8, seed=0)
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    rows[0]["chosen"] += " and so on" * 2100  # 21,000+ characters
    (tmp_path / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["train", str(tmp_path / "long.jsonl"), "--out", str(tmp_path / "o"), "--epochs", "1", "--eval-split", "0"]
    assert "(limit 20000)" in _error(args, capsys)
    main([*args, "--max-chars", "30000", "--max-length", "40", "--too-long", "drop"])
    out = capsys.readouterr().out
    assert "longer than max_length: dropped" in out and "dropd" not in out


def test_backbone_naming_a_reward_model_resumes_its_head_and_optimizer(tmp_path, capsys):
    data = _jsonl(tmp_path / "prefs.jsonl", synthetic_preferences(32, seed=0))
    main(["train", str(data), "--out", str(tmp_path / "rm1"), "--epochs", "1", "--eval-split", "0"])
    first = RewardModel.from_pretrained(tmp_path / "rm1")
    state = torch.load(tmp_path / "rm1" / "optimizer.pt", weights_only=True)
    steps = state["optimizer"]["state"][0]["step"].item()
    assert steps == 2  # 32 pairs in batches of 16
    main(["train", str(data), "--out", str(tmp_path / "rm2"), "--epochs", "1", "--eval-split", "0",
          "--backbone", str(tmp_path / "rm1"), "--lr", "1e-12"])
    assert "resuming" in capsys.readouterr().out
    second = RewardModel.from_pretrained(tmp_path / "rm2")
    torch.testing.assert_close(second.head.weight, first.head.weight, atol=1e-9, rtol=0)  # not a new random head
    resumed = torch.load(tmp_path / "rm2" / "optimizer.pt", weights_only=True)
    assert resumed["optimizer"]["state"][0]["step"].item() == 2 * steps


def test_train_flags_default_to_the_librarys_recipe(tmp_path):
    """`rmlearn train` without recipe flags trains with TrainConfig's defaults (not a copy of them);
    a flag overrides one, and --max-grad-norm 0 switches clipping off."""
    from dataclasses import asdict

    from rmlearn.cli import _parser, _train_settings
    from rmlearn.train import TrainConfig

    args = _parser().parse_args(["train", "data.jsonl", "--out", str(tmp_path)])
    settings = TrainConfig(**_train_settings(args))
    defaults = asdict(TrainConfig())
    for name in ("epochs", "batch_size", "margin", "center_coef", "grad_accum", "max_grad_norm", "lr_schedule",
                 "warmup_steps", "warmup_ratio", "lr"):
        assert getattr(settings, name) == defaults[name], name
    args = _parser().parse_args(["train", "data.jsonl", "--out", str(tmp_path), "--epochs", "3",
                                 "--max-grad-norm", "0", "--lr-schedule", "constant"])
    settings = TrainConfig(**_train_settings(args))
    assert (settings.epochs, settings.max_grad_norm, settings.lr_schedule) == (3, None, "constant")


def test_train_flags_take_their_choices_and_defaults_from_the_library():
    from rmlearn.cli import _parser
    from rmlearn.config import LOSSES, POOLINGS, SCHEDULES, TRUNCATIONS, TrainConfig

    parser, base = _parser(), ["train", "data.jsonl", "--out", "out"]
    args = parser.parse_args(base)
    assert (args.loss, args.too_long) == (TrainConfig.loss, TrainConfig.too_long)
    for flag, names in (("--pooling", POOLINGS), ("--loss", LOSSES), ("--too-long", TRUNCATIONS),
                        ("--lr-schedule", SCHEDULES)):
        for name in names:
            parser.parse_args([*base, flag, name])
        with pytest.raises(SystemExit):
            parser.parse_args([*base, flag, "nonsense"])


def test_train_accepts_the_old_loss_name_and_warns_once(tmp_path):
    """`rmlearn train --loss listwise` still works (the old name of all_pairs), with one FutureWarning:
    _train_settings passes on the new name, so train_reward_model's TrainConfig does not warn again."""
    import warnings

    from rmlearn.cli import _parser, _train_settings
    from rmlearn.config import TrainConfig

    args = _parser().parse_args(["train", "data.jsonl", "--out", str(tmp_path), "--loss", "listwise"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = _train_settings(args)
        config = TrainConfig(**settings)  # what train_reward_model(..., **settings) builds first
    assert settings["loss"] == config.loss == "all_pairs"
    assert [w.category for w in caught] == [FutureWarning]
    assert "use loss='all_pairs'" in str(caught[0].message)


def test_eval_reports_accuracy_by_length_calibration_and_best_of_k(tmp_path, capsys, monkeypatch):
    """Lesson 09's report in `rmlearn eval`: the numbers are rmlearn.evaluation's on the same file,
    with each pair scored once (its chosen and its rejected response: 2 texts a pair)."""
    from rmlearn import expected_calibration_error
    from rmlearn.evaluation import best_of_k_accuracy
    from rmlearn.train import pair_gaps

    model = RewardModel(tiny_backbone(seed=0), seed=0)
    model.save_pretrained(tmp_path / "rm")
    course_tokenizer().save_pretrained(tmp_path / "rm")
    pairs = synthetic_preferences(12, seed=5)
    ranked = [{"prompt": "Q?", "responses": ["best answer", "worse", "worst one here", "no"]},
              {"prompt": "R?", "responses": ["a b", "c", "d e f", "g"]}]
    path = _jsonl(tmp_path / "prefs.jsonl", pairs)
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in ranked))
    scored, score = [], RewardModel.score
    monkeypatch.setattr(RewardModel, "score", lambda self, prompts, responses, *a, **k: (
        scored.extend(responses), score(self, prompts, responses, *a, **k))[1])
    main(["eval", str(tmp_path / "rm"), str(path), "--json"])
    metrics = json.loads(capsys.readouterr().out)
    assert len(scored) == 2 * metrics["num_pairs"] == 2 * (12 + 2 * 6)
    monkeypatch.undo()
    from rmlearn import load_preferences
    from rmlearn.data import as_pairs

    tok = course_tokenizer()
    gaps = pair_gaps(model, tok, as_pairs(load_preferences(path)))
    assert abs(metrics["ece"] - expected_calibration_error(gaps)) < 1e-9
    scores = torch.stack([model.score([r["prompt"]] * 4, r["responses"], tok) for r in ranked])  # (2, 4)
    assert abs(metrics["best_of_4_accuracy"] - best_of_k_accuracy(scores)) < 1e-9 and metrics["chance"] == 0.25
    main(["eval", str(tmp_path / "rm"), str(path)])
    out = capsys.readouterr().out
    assert "accuracy, chosen is the longer:" in out and "calibration error (ECE of σ(Δ)):" in out
    assert "best of 4 accuracy:" in out
