"""`pip install rmlearn` without extras: the library imports, trains, scores and saves a reward model,
and `rmlearn train` / `rmlearn eval` run, without any of the course's or the grader's packages (they
are the [course] and [grading] extras)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

EXTRAS_ONLY = ["matplotlib", "ipywidgets", "IPython", "jupyterlab", "jupyter_server", "notebook", "voila",
               "nbgrader", "nbclient", "nbformat", "psycopg"]

SCRIPT = textwrap.dedent(f"""
    import importlib.abc, sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {EXTRAS_ONLY!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (an extra)", name=name)

    sys.meta_path.insert(0, NotInstalled())
    import tempfile
    import rmlearn
    from rmlearn import RewardModel, course_tokenizer, synthetic_preferences, tiny_backbone, train_reward_model
    from rmlearn.zoo import trained_reward_model

    tokenizer = course_tokenizer()
    model = RewardModel(tiny_backbone(seed=0))
    history = train_reward_model(model, tokenizer, synthetic_preferences(32), epochs=1, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        again = RewardModel.from_pretrained(folder)
    pair = synthetic_preferences(1, seed=5)[0]
    same = again.score(pair.prompt, pair.chosen, tokenizer).item() == model.score(pair.prompt, pair.chosen, tokenizer).item()
    shipped = trained_reward_model().score(pair.prompt, [pair.chosen, pair.rejected], tokenizer)
    print(len(history), same, bool(shipped[0] > shipped[1]))

    # `rmlearn train` and `rmlearn eval` too: everything but the figure, which needs matplotlib
    import contextlib, io, json, os
    from rmlearn.cli import main
    with tempfile.TemporaryDirectory() as folder:
        path, out = os.path.join(folder, "prefs.jsonl"), os.path.join(folder, "rm")
        with open(path, "w") as f:
            for p in synthetic_preferences(40, seed=1):
                f.write(json.dumps(dict(prompt=p.prompt, chosen=p.chosen, rejected=p.rejected)) + "\\n")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            main(["train", path, "--out", out, "--epochs", "1"])
            main(["eval", out, path])
        print(sorted(os.listdir(out)) == ["config.json", "metrics.json", "model.safetensors", "optimizer.pt",
                                          "tokenizer.json", "tokenizer_config.json"],
              "no training.png" in printed.getvalue(), "accuracy (r_chosen > r_rejected)" in printed.getvalue())
    """)


def test_the_library_needs_none_of_the_extras():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["2", "True", "True", "True", "True", "True"]


def test_the_blocker_really_blocks():
    """The check above would prove nothing if importing an extra still worked under it."""
    probe = SCRIPT.split("import tempfile")[0] + "import matplotlib\n"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "an extra" in result.stderr
