"""A lesson's claims as values.

A lesson's code keeps what its text says about its own output in a dict named ``claims``: plain
numbers, booleans and lists with names that say what they are (``claims["trained_gap"] = r_c - r_r``).
``tests/test_lessons.py`` appends one cell to the notebook before executing it (``add_claims_cell``);
that cell prints the dict as JSON, and ``read_claims`` reads it back from the executed notebook. A
lesson's check then asserts each claim as a shape with margins (``> 0.9``, ``a < b``, within 0.05),
never as the rounded figure one CPU happens to print.

    nb = nbformat.read(path, as_version=4)
    add_claims_cell(nb)
    NotebookClient(nb, ...).execute()
    claims = read_claims(nb)
    assert claims["held_out_accuracy"] > 0.9
"""

from __future__ import annotations

import json

from nbformat.v4 import new_code_cell

CELL_ID = "read-claims"
MARKER = "lesson claims as JSON:"
# tensors and numpy values the lesson stored as they are become lists or numbers
SOURCE = ("import json as _json\n"
          f"print({MARKER!r}, _json.dumps(globals().get('claims', {{}}), default=lambda v: v.tolist()))")


def add_claims_cell(nb) -> None:
    """Append the cell that prints the lesson's ``claims`` (``{}`` when it has none) to ``nb``."""
    cell = new_code_cell(SOURCE)
    cell.id = CELL_ID
    nb.cells.append(cell)


class Claims(dict):
    """The lesson's claims; a missing name fails with the names the lesson does set."""

    def __missing__(self, key):
        raise KeyError(f"the lesson sets no claims[{key!r}]; it sets {sorted(self)}")


def printed(cell) -> str:
    """What an executed cell printed to stdout (the kernel may send one print as several messages)."""
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def read_claims(nb) -> Claims:
    """The ``claims`` dict of a notebook executed with ``add_claims_cell``."""
    cell = nb.cells[-1]
    assert cell.get("id") == CELL_ID, "execute the lesson after add_claims_cell(nb)"
    text = printed(cell)
    assert MARKER in text, f"the claims cell printed no claims: {cell.outputs}"
    return Claims(json.loads(text.split(MARKER, 1)[1]))
