"""The instructor's side: a ready nbgrader course directory with the four problem sets.

``init_course(directory)`` writes ``nbgrader_config.py`` and ``source/<assignment>/`` (the
problem sets of lessons 01–07, with solutions and hidden tests) into ``directory``;
``next_steps(directory)`` says which nbgrader commands to run next. ``rmlearn course init DIR``
calls both.

The course's ``nbgrader_config.py`` also grades with ``KernelSafeExecute`` (defined here, built on
first use so that importing this module does not import nbgrader): a cell that kills its kernel
costs that cell only, as a cell that runs past the timeout already does.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

ASSIGNMENTS = (
    "ps1_reward_scores", "ps2_preference_training", "ps3_bias_and_segments", "ps4_value_model",
    "ps5_reward_in_the_loop",
)
CONFIG_NAME = "nbgrader_config.py"


def course_path(name: str) -> Path:
    """A shipped course folder (``lessons`` or ``exercises``): inside the wheel, or beside the
    package in a checkout (editable install)."""
    package = Path(__file__).resolve().parent
    candidates = (package / "_course" / name, package.parent / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"the course's {name}/ folder is missing: looked in {candidates[0]} and {candidates[1]}; "
        "reinstall rmlearn"
    )


def exercises_dir() -> Path:
    """Where the shipped nbgrader course lives (``course_path("exercises")``), checked complete."""
    found = course_path("exercises")
    if not ((found / CONFIG_NAME).is_file() and (found / "source").is_dir()):
        raise FileNotFoundError(f"{found} lacks {CONFIG_NAME} or source/; reinstall rmlearn")
    return found


def init_course(directory: str | Path, force: bool = False) -> Path:
    """Write a ready nbgrader course directory: ``nbgrader_config.py`` and ``source/``.

    Args:
        directory: created if missing; must be empty unless ``force``.
        force: overwrite ``nbgrader_config.py`` and the shipped assignments in a non-empty
            directory (other files there, such as the gradebook, are left alone).

    Returns:
        The course directory as an absolute path.

    >>> import tempfile
    >>> root = init_course(tempfile.mkdtemp())
    >>> sorted(p.name for p in (root / "source").iterdir())
    ['ps1_reward_scores', 'ps2_preference_training', 'ps3_bias_and_segments', 'ps4_value_model', 'ps5_reward_in_the_loop']
    """
    root = Path(directory).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root} exists and is not a directory")
    if root.exists() and any(root.iterdir()) and not force:
        raise FileExistsError(f"{root} is not empty; choose an empty directory or pass force=True")
    shipped = exercises_dir()
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shipped / CONFIG_NAME, root / CONFIG_NAME)
    for assignment in ASSIGNMENTS:
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


def _make_kernel_safe_execute() -> type:
    import copy

    from nbclient.exceptions import DeadKernelError
    from nbformat import NotebookNode
    from nbgrader.preprocessors import Execute
    from traitlets import Integer

    class KernelSafeExecute(Execute):
        """nbgrader's ``Execute``, except that a cell which kills the kernel costs that cell only.

        When the kernel dies (``os._exit``, ``os.kill(os.getpid(), 9)``, a segfault, the OOM
        killer), the notebook is executed again from the start in a fresh kernel, with every cell
        that killed a kernel so far replaced by an error output. Stock nbgrader instead gives up
        on the whole submission.
        """

        max_kernel_deaths = Integer(
            3, help="Cells allowed to kill the kernel before the submission is given up on."
        ).tag(config=True)

        def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):
            pristine = copy.deepcopy(nb)
            self._killers: set[int] = set()
            while True:
                try:
                    return super().preprocess(nb, resources, km)
                except DeadKernelError:
                    if len(self._killers) >= self.max_kernel_deaths:
                        raise
                    self.log.warning("The kernel died in cell %d; re-running without it", self._index)
                    self._killers.add(self._index)
                    nb.cells = copy.deepcopy(pristine.cells)  # same object: the caller holds it

        def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
            self._index = index
            if index in self._killers:
                cell.outputs = [NotebookNode(
                    output_type="error", ename="DeadKernelError", evalue="this cell killed the kernel",
                    traceback=["DeadKernelError: this cell killed the kernel; it was skipped on re-run"],
                )]
                cell.execution_count = None
                return cell, resources
            return super().preprocess_cell(cell, resources, index)

    return KernelSafeExecute


def __getattr__(name: str) -> Any:
    if name == "KernelSafeExecute":  # nbgrader imports it by name from nbgrader_config.py
        value = globals()[name] = _make_kernel_safe_execute()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
