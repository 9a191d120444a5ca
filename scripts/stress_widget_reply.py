"""How often does a headless notebook run miss a cell's reply?  `python scripts/stress_widget_reply.py`

nbclient (under `jupyter nbconvert --execute`, the lesson tests and Voila) mimics an ipywidgets
``Output`` widget: when a cell writes into one, nbclient sends the widget's new state back to the
kernel on the shell channel, the same socket on which it is waiting for the cell's execute_reply.
Now and then that send swallows the wake-up of the reply: the reply sits in the socket, kernel and
client are both idle, and only the cell timeout (none, by default, in nbconvert) ends the wait.
That was the lesson-05 hang of issue 10, at the length-bias explorer.

Each mode runs ``--cells`` copies of one cell with a per-cell timeout of ``--timeout`` seconds and
counts the cells whose reply, already sent by the kernel (its timestamp), was picked up more than a
second later:

    output     a cell that writes into an ipywidgets.Output (the explorers' old way to show a plot)
    image      a cell that sets an ipywidgets.Image (how the explorers show plots now)
    explorer   rmlearn's length_bias_explorer, as lesson 05 shows it (small model, trained once)

Measured on 2 shared, loaded CPU cores (pyzmq 27.3, nbclient 0.10, ipykernel 7.4): output 8 cells
of 600 missed their reply, image 0 of 600 (html 0 of 200); the explorer before the fix (its plot in
an Output; ``--import-from`` a ``git archive`` of 884e5ba) 2 of 150, after it 0 of 150.
"""

from __future__ import annotations

import argparse
import datetime
import time

from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

SETUP = {
    "output": "import ipywidgets as w\nfrom IPython.display import HTML, display",
    "image": "import ipywidgets as w",
    "explorer": "from rmlearn.widgets import length_bias_explorer\nlength_bias_explorer(0.9, n_pairs=120);",
}
CELL = {
    "output": "out = w.Output()\nwith out:\n    out.clear_output(wait=True)\n    display(HTML('<b>x</b>'))\nout",
    "image": "image = w.Image(format='png')\nimage.value = bytes(range(256))\nimage",
    "explorer": "length_bias_explorer(0.9, n_pairs=120)",
}
SETUP_TIMEOUT_S = 300  # the first cell may train a model
LATE_S = 1.0  # a reply picked up this long after the kernel sent it was missed, not slow


def _seconds(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def stalled_cells(mode: str, cells: int, timeout: float, import_from: str | None = None) -> list[tuple[int, float]]:
    """(cell index, seconds between the kernel's reply and the client noticing it) for late cells."""
    setup = SETUP[mode] if import_from is None else f"import sys\nsys.path.insert(0, {import_from!r})\n{SETUP[mode]}"
    nb = new_notebook(cells=[new_code_cell(setup)] + [new_code_cell(CELL[mode]) for _ in range(cells)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True)
    late = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.timeout = SETUP_TIMEOUT_S if index == 0 else timeout
            client.execute_cell(cell, index)
            waited = time.time() - _seconds(cell.metadata.execution["shell.execute_reply"])
            if index and waited > LATE_S:
                late.append((index, waited))
    return late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modes", nargs="*", default=["output", "image"], choices=sorted(CELL))
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=3.0, help="per cell: what a missed reply costs")
    parser.add_argument("--import-from", metavar="DIR",
                        help="a folder holding another rmlearn/ (e.g. `git archive` of an older commit)")
    args = parser.parse_args()
    for mode in args.modes:
        start = time.perf_counter()
        late = stalled_cells(mode, args.cells, args.timeout, args.import_from)
        detail = ", ".join(f"cell {i} +{s:.1f} s" for i, s in late)
        print(f"{mode:9s} {len(late)} of {args.cells} cells missed their reply "
              f"({time.perf_counter() - start:.0f} s){': ' + detail if late else ''}", flush=True)


if __name__ == "__main__":
    main()
