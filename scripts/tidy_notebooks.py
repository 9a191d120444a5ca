"""Tidy lesson notebooks after editing them in JupyterLab, before committing.

    python scripts/tidy_notebooks.py lessons/            # rewrite what needs it
    python scripts/tidy_notebooks.py --check lessons/    # only list what would change (exit 1 if any)

The notebooks are the source: edit them where students read them, run this, commit. It
- clears outputs and execution counts;
- keeps every cell id that is already unique and gives the others the next free ``cNN`` id, so ids
  never churn between commits;
- splits a markdown cell at every heading that is not its first line, because every heading starts
  its own cell (and so its own slide);
- marks slides for ``voila --template=reveal`` and RISE: the first cell and every markdown cell
  that opens with a heading start a slide, every other cell continues the slide before it;
- keeps only the metadata the course uses (``slideshow`` and ``tags`` on cells, the kernelspec and
  language name on the notebook), dropping what JupyterLab adds while editing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

CELL_METADATA = ("slideshow", "tags")
NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
HEADING = re.compile(r"^#{1,6} ")
FENCE = re.compile(r"^\s*(```|~~~)")


def split_at_headings(source: str) -> list[str]:
    """Markdown source → one piece per heading (text before the first heading stays on its own).

    >>> split_at_headings("# A\\ntext\\n## B\\nmore")
    ['# A\\ntext', '## B\\nmore']
    >>> split_at_headings("```\\n# a comment in a code block\\n```")
    ['```\\n# a comment in a code block\\n```']
    """
    pieces: list[list[str]] = [[]]
    in_fence = False
    for line in source.split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and HEADING.match(line) and any(s.strip() for s in pieces[-1]):
            pieces.append([])
        pieces[-1].append(line)
    return ["\n".join(piece).strip("\n") for piece in pieces]


def _cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            cells.append(cell)
            continue
        first, *rest = split_at_headings(cell.source)
        cell.source = first
        cells.append(cell)
        for piece in rest:
            cells.append(nbformat.v4.new_markdown_cell(piece))
            del cells[-1]["id"]  # gets the next free cNN below
    return cells


def _ids(cells: list[nbformat.NotebookNode]) -> None:
    seen: set[str] = set()
    fresh = (f"c{n:02d}" for n in range(10_000))
    taken = {cell.get("id") for cell in cells}
    for cell in cells:
        if cell.get("id") in seen or not cell.get("id") or re.fullmatch(r"[0-9a-f-]{30,}", cell["id"]):
            # missing, duplicated, or the random uuid JupyterLab gives a new cell: the next free cNN
            cell["id"] = next(i for i in fresh if i not in taken and i not in seen)
        seen.add(cell["id"])


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The tidied notebook (changed in place and returned)."""
    nb.cells = _cells(nb)
    _ids(nb.cells)
    for i, cell in enumerate(nb.cells):
        cell.source = cell.source.strip("\n")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if "attachments" in cell and not cell.attachments:
            del cell["attachments"]
        starts = i == 0 or (cell.cell_type == "markdown" and HEADING.match(cell.source.lstrip()) is not None)
        kept = {k: v for k, v in cell.metadata.items() if k in CELL_METADATA}
        kept["slideshow"] = {"slide_type": "slide" if starts else "-"}
        cell.metadata = nbformat.from_dict(kept)
    nb.metadata = nbformat.from_dict(NOTEBOOK_METADATA)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def tidy_file(path: Path, check: bool = False) -> bool:
    """Tidy one notebook file; True when it was (or, with ``check``, would be) changed."""
    before = path.read_text(encoding="utf-8")
    after = nbformat.writes(tidy(nbformat.reads(before, as_version=4)))
    after += "" if after.endswith("\n") else "\n"  # as nbformat.write and JupyterLab end the file
    if after == before:
        return False
    if not check:
        path.write_text(after, encoding="utf-8")
    return True


def notebooks(paths: list[str]) -> list[Path]:
    """The .ipynb files named, or found (not in checkpoints) under the folders named."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.suffix == ".ipynb" and path.is_file():
            found.append(path)
        else:
            raise SystemExit(f"tidy_notebooks: {name} is neither a folder nor a notebook file")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="notebooks or folders of notebooks")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file needs tidying")
    args = parser.parse_args(argv)
    changed = [path for path in notebooks(args.paths) if tidy_file(path, check=args.check)]
    for path in changed:
        print(f"{'would tidy' if args.check else 'tidied'} {path}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
