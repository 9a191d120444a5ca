"""The instructor's side: a ready nbgrader course directory with the course's problem sets.

``init_course(directory)`` writes ``nbgrader_config.py``, ``source/<assignment>/`` (the
problem sets of ``ASSIGNMENTS``, with solutions and hidden tests) and ``answers/<assignment>/`` (the
expected answers, compared outside the student's kernel) into ``directory``;
``next_steps(directory)`` says which nbgrader commands to run next. ``rmlearn course init DIR``
calls both.

The instructor materials (``exercises/`` of the repository) are **not** in the wheel: the wheel is
what students install, and these hold every solution and expected answer. From a checkout
(editable install) ``init_course`` finds ``exercises/`` beside the package; otherwise pass it
``source=PATH/TO/exercises`` (``rmlearn course init DIR --from PATH/TO/exercises``).

The course's ``nbgrader_config.py`` grades with the preprocessors of ``rmlearn.grading.scoring``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ASSIGNMENTS = (
    "ps1_reward_scores", "ps2_preference_training", "ps3_bias_and_segments", "ps4_value_model",
    "ps5_reward_in_the_loop", "ps6_trust_the_score",
    "ps7_beyond_pairs",
)
CONFIG_NAME = "nbgrader_config.py"
CHECKOUT_EXERCISES = Path(__file__).resolve().parents[2] / "exercises"  # beside the package in a checkout


def _missing_parts(folder: Path) -> list[str]:
    """What an instructor ``exercises/`` folder lacks (empty when complete)."""
    needed = [CONFIG_NAME] + [f"source/{a}/{a}.ipynb" for a in ASSIGNMENTS]
    return [part for part in needed if not (folder / part).is_file()]


def exercises_dir(source: str | Path | None = None) -> Path:
    """The instructor materials: ``nbgrader_config.py``, ``source/`` and ``answers/``, checked complete.

    Args:
        source: an ``exercises/`` folder (or a repository checkout holding one); default: the
            ``exercises/`` beside the package in a checkout (editable install). The wheel ships none.

    Raises:
        FileNotFoundError: naming the folder looked in and, when none is found, where to get one.
    """
    if source is not None:
        found = Path(source).expanduser().resolve()
        if _missing_parts(found) and not _missing_parts(found / "exercises"):
            found = found / "exercises"  # a repository checkout
        missing = _missing_parts(found)
        if missing:
            raise FileNotFoundError(
                f"{found} is not rmlearn's exercises/ folder: it lacks {', '.join(missing)}")
        return found
    checkout = CHECKOUT_EXERCISES
    if not _missing_parts(checkout):
        return checkout
    raise FileNotFoundError(
        "rmlearn's instructor materials (the problem sets with solutions, hidden tests and expected "
        "answers) are not part of the installed package, which students install too; looked in "
        f"{checkout}. Get the exercises/ folder of the rmlearn source repository (a git checkout) "
        "and run: rmlearn course init DIR --from PATH/TO/exercises "
        "(in Python: init_course(DIR, source='PATH/TO/exercises'))")


def init_course(directory: str | Path, force: bool = False, source: str | Path | None = None) -> Path:
    """Write a ready nbgrader course directory: ``nbgrader_config.py``, ``source/``, ``answers/``.

    Args:
        directory: created if missing; must be empty unless ``force``.
        force: overwrite ``nbgrader_config.py`` and the shipped assignments in a non-empty
            directory (other files there, such as the gradebook, are left alone).
        source: the instructor ``exercises/`` folder to copy from (``exercises_dir``); default:
            the one beside the package in a repository checkout.

    Returns:
        The course directory as an absolute path.

    Raises:
        FileNotFoundError: no complete ``exercises/`` folder (a wheel install without ``source``).

    >>> import tempfile
    >>> root = init_course(tempfile.mkdtemp())
    >>> sorted(p.name for p in (root / "source").iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['ps1_reward_scores', 'ps2_preference_training', 'ps3_bias_and_segments', 'ps4_value_model',
     'ps5_reward_in_the_loop', 'ps6_trust_the_score', 'ps7_beyond_pairs']
    """
    root = Path(directory).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root} exists and is not a directory")
    if root.exists() and any(root.iterdir()) and not force:
        raise FileExistsError(f"{root} is not empty; choose an empty directory or pass force=True")
    shipped = exercises_dir(source)  # before creating anything: a clear error, no empty folder
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shipped / CONFIG_NAME, root / CONFIG_NAME)
    for assignment in ASSIGNMENTS:
        answers = shipped / "answers" / assignment  # expected answers: never released, never graded in
        if answers.is_dir():
            shutil.copytree(answers, root / "answers" / assignment, dirs_exist_ok=True)
        target = root / "source" / assignment
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(shipped / "source" / assignment, target,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return root


def next_steps(directory: str | Path) -> str:
    """The nbgrader commands an instructor runs next, as printable text."""
    root = Path(directory).expanduser().resolve()
    first = ASSIGNMENTS[0]
    return "\n".join([
        f"Course directory ready: {root}",
        f"Assignments: {', '.join(ASSIGNMENTS)}",
        "",
        "Next steps (run them inside the course directory):",
        f"  cd {root}",
        f"  nbgrader generate_assignment {first}    # student version in release/{first}/",
        f"  nbgrader validate source/{first}/{first}.ipynb   # the solutions pass every test",
        "  # hand out release/<assignment>/ (or nbgrader release_assignment with an exchange);",
        "  # put each submission in submitted/<student>/<assignment>/ (nbgrader collect does this), then:",
        f"  nbgrader autograde {first}",
        f"  nbgrader generate_feedback {first}",
        "  nbgrader export                         # grades.csv",
        "",
        "Settings (timeouts, restored test cells, output limits) are in nbgrader_config.py;",
        "see docs/instructor.md.",
    ])
