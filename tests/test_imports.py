"""Which module may import which: the layers below, checked over the source's AST.

Read downwards: a module may import its own layer and any layer above it in ``LAYERS``, never one
below; no import cycle; no ``_private`` name (or ``_private`` module) imported from another module.
``grading`` is a package of its own: it may import the library, and only ``cli`` imports it.
Lessons and the exercises' source notebooks import public names only, and from ``rmlearn.widgets``
only the explorers and ``quiz_for``. Imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rmlearn"

# The allowed direction, stated once.
LAYERS = (
    ("config",),  # the recipe's names, choices and defaults (TrainConfig): no torch, read by `rmlearn --help`
    ("pooling", "losses", "segments"),  # pure tensor formulas
    ("fastcpu",),  # how a small model runs on CPU threads (shards, fused activations): torch only
    ("inputs", "backbone", "models", "checkpoints"),  # [prompt; response; EOS] ids, decoders, heads
    ("data", "synthetic"),  # pairs, rankings, loaders; the course's synthetic world
    ("train",),  # the training loop
    ("rlhf", "evaluation"),  # the reward model in the loop; metrics
    ("zoo",),  # the course's fixed trained models
    ("views", "plots", "widgets"),  # what explorers show, figures, the explorers (UI)
    ("cli", "course"),  # faces
)
GRADING = "grading"  # its own package: may import the library; only these import it
IMPORTS_GRADING = {"cli"}

# Edges kept on purpose, each with its reason; the cycle and direction checks skip them.
COMPAT: dict[tuple[str, str], str] = {}

LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def _unit(module: str) -> str:
    """The layer unit of a dotted module: rmlearn.widgets.pooling → widgets, rmlearn.zoo → zoo."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _public_names() -> dict[str, str]:
    """rmlearn's top-level names → the module each comes from (what ``from rmlearn import X`` loads)."""
    import rmlearn

    return {name: f"rmlearn.{module}" for name, module in rmlearn._WHERE.items()}


def _imports(module: str, path: Path, modules: dict[str, Path]):
    """(imported module, imported name or None, line) for every import of rmlearn code in ``path``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "rmlearn":
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "rmlearn":
                continue
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:  # from . import synthetic: a module
                    yield f"{target}.{alias.name}", None, node.lineno
                elif target == "rmlearn" and alias.name in _public_names():
                    yield _public_names()[alias.name], alias.name, node.lineno
                else:
                    yield target, alias.name, node.lineno


def _edges():
    modules = _modules()
    for module, path in modules.items():
        if module == "rmlearn":
            continue  # the facade: lazy names for users, imported by nothing inside
        for target, name, line in _imports(module, path, modules):
            yield module, target, name, f"{path.relative_to(ROOT)}:{line}"


def _compat(module: str, target: str) -> bool:
    return (_unit(module), _unit(target)) in COMPAT


def test_the_scan_sees_relative_lazy_and_facade_imports():
    edges = {(module, target) for module, target, _, _ in _edges()}
    assert {("rmlearn.widgets.pooling", "rmlearn.views"),  # from ..views import …
            ("rmlearn.views", "rmlearn.zoo"),  # inside a function
            ("rmlearn.cli", "rmlearn.train"),  # from . import train_reward_model (the facade)
            ("rmlearn.cli", "rmlearn.grading.instructor")} <= edges


def test_every_module_has_a_layer():
    units = {_unit(m) for m in _modules() if m != "rmlearn"}
    assert sorted(units - set(LAYER_OF) - {GRADING}) == []


def test_imports_run_one_way_down_the_layers():
    wrong = []
    for module, target, _, where in _edges():
        unit, other = _unit(module), _unit(target)
        if unit == GRADING or unit == other or _compat(module, target):
            continue
        if other == GRADING:
            if unit not in IMPORTS_GRADING:
                wrong.append(f"{where}: {module} imports {target} (only {sorted(IMPORTS_GRADING)} may import grading)")
        elif LAYER_OF[other] > LAYER_OF[unit]:
            wrong.append(f"{where}: {module} (layer {LAYER_OF[unit]}) imports {target} (layer {LAYER_OF[other]}), "
                         "which sits below it")
    assert wrong == []


def test_no_import_cycle():
    graph: dict[str, set[str]] = {}
    for module, target, _, _ in _edges():
        if module != target and not _compat(module, target):
            graph.setdefault(module, set()).add(target)
    state: dict[str, str] = {}  # "open" while on the DFS path, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            pytest.fail("import cycle: " + " → ".join(cycle))


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def test_no_private_name_is_imported_from_another_module():
    wrong = [f"{where}: {module} imports {target}{'.' + name if name else ''}"
             for module, target, name, where in _edges()
             if target != module and (_private(target) or (name and _private(name)))]
    assert wrong == []


# ---------------------------------------------------------------------------------------------
# Lessons and exercises: public names only; from rmlearn.widgets only the explorers and quiz_for
# ---------------------------------------------------------------------------------------------

def _notebooks():
    paths = sorted((ROOT / "lessons").glob("*.ipynb")) + sorted((ROOT / "exercises" / "source").rglob("*.ipynb"))
    return [pytest.param(p, id=p.stem) for p in paths]


def _code(cell_source: str) -> str:
    """A code cell without IPython's ``%magic`` and ``!shell`` lines (blanked, so lines still count)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell_source.splitlines())


def _notebook_imports(path: Path):
    for number, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse(_code("".join(cell["source"])))):
            if isinstance(node, ast.Import):
                yield from ((a.name, None, number) for a in node.names if a.name.split(".")[0] == "rmlearn")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "rmlearn":
                yield from ((node.module, a.name, number) for a in node.names)


def _explorers() -> set[str]:
    import rmlearn.widgets

    return {n for n in rmlearn.widgets.__all__ if n.endswith("_explorer")} | {"quiz_for"}


@pytest.mark.parametrize("path", _notebooks())
def test_notebooks_import_only_public_names(path):
    wrong = []
    for module, name, cell in _notebook_imports(path):
        where = f"{path.relative_to(ROOT)} cell {cell}: {module}{'.' + name if name else ''}"
        if _private(module) or (name and _private(name)):
            wrong.append(f"{where}: a private name")
        elif module.startswith("rmlearn.widgets."):
            wrong.append(f"{where}: import explorers from rmlearn.widgets itself")
        elif module == "rmlearn.widgets" and name not in _explorers():
            wrong.append(f"{where}: from rmlearn.widgets only the explorers and quiz_for")
        elif _unit(module) == GRADING and path.parent.name == "lessons":
            wrong.append(f"{where}: lessons are student-facing and never import grading")
    assert wrong == []
