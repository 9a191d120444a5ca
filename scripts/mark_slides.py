"""Give lesson notebooks slide types so `voila --template=reveal lessons/NN_….ipynb` shows slides.

    python scripts/mark_slides.py lessons/*.ipynb

A markdown cell that opens with a heading starts a new slide; every other cell continues the slide
before it. The build scripts call `mark_slides` on every notebook they write.
"""

from __future__ import annotations

import sys

import nbformat


def mark_slides(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for i, cell in enumerate(nb.cells):
        starts = i == 0 or (cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"))
        cell.metadata["slideshow"] = {"slide_type": "slide" if starts else "-"}
    return nb


if __name__ == "__main__":
    for name in sys.argv[1:]:
        nb = nbformat.read(name, as_version=4)
        nbformat.write(mark_slides(nb), name)
        print("marked", name)
