"""The nbgrader classes of ``rmlearn.grading.scoring``, kept apart so that the grading kernel,
which imports ``scoring`` for ``record``, never imports nbgrader. Read ``scoring``'s docstring
first; ``make_classes()`` is called once, on first use."""

from __future__ import annotations

import asyncio
import copy
import html
import json
import math
import re
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbconvert.exporters import NotebookExporter
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from nbgrader.plugins.export import CsvExportPlugin
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, SaveAutoGrades
from traitlets import Bool, Float, Integer, Unicode

from .answers import REMOVED, UNGRADED, answers_path, mismatches, records_in
from .files import refuse_special_files, remove_special_files, trim_folder

# run by the kernel before any cell: the working directory ("" or its path) moves to the end of
# sys.path (a stable sort), binding no name in the student's namespace
_CWD_LAST = ("--IPKernelApp.exec_lines=__import__('sys').path.sort(key=lambda p: p in "
             "('', '.', __import__('os').getcwd()))")


class _RunawayCell(DeadKernelError):
    """A cell kept running after the timeout's interrupt (it swallowed KeyboardInterrupt)."""


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _ungraded(resources: dict) -> set[str]:
    return resources.setdefault(UNGRADED, set())


class TolerantNotebookExporter(NotebookExporter):
    """nbgrader's notebook exporter, reading a submission that nbformat would refuse: cell or
    notebook metadata that is not a dict becomes ``{}``, a cell that is not a dict is dropped.
    A file that is not JSON, or has no list of cells, still fails (→ needs manual grading), and so
    does a notebook whose folder holds a link, a fifo or a device file (``files.special_files``):
    nbgrader would read, copy or chmod through it."""

    def from_filename(self, filename: str, resources: dict | None = None, **kw: Any):
        refuse_special_files(Path(filename).parent)  # before anything reads through a link
        return super().from_filename(filename, resources=resources, **kw)

    def from_file(self, file_stream: Any, resources: dict | None = None, **kw: Any):
        nb = json.loads(file_stream.read())
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
            raise ValueError("not a notebook: no list of cells")
        if not isinstance(nb.get("metadata"), dict):
            nb["metadata"] = {}
        nb["cells"] = [c for c in nb["cells"] if isinstance(c, dict)]
        for c in nb["cells"]:
            if not isinstance(c.get("metadata"), dict):
                c["metadata"] = {}
        return self.from_notebook_node(nbformat.reads(json.dumps(nb), as_version=4), resources=resources, **kw)


class NormalizeSubmission(NbGraderPreprocessor):
    """Rebuild every cell's nbgrader metadata from the gradebook before nbgrader looks at it.

    - a grade_id the gradebook knows: metadata rewritten from the gradebook (schema, points,
      flags, checksum), whatever the submission says (``schema_version: 99``, a string for
      ``points``, ...);
    - the same grade_id on several cells (a copied cell, nbgrader #1083): the last copy keeps it,
      the others become plain cells (their code still runs);
    - an unknown or renamed grade_id, non-dict metadata: a plain cell (a deleted or renamed test
      cell is put back by ``OverwriteCells.add_missing_cells``);
    - a deleted answer or locked cell: put back as released (a cut answer cell costs its question);
    - duplicate or missing cell ids: fresh ids.
    """

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            source = gb.find_notebook(info["notebook"], info["assignment"])
            known = {c.name: c for c in source.source_cells}
            self._put_back_missing_cells(nb, source)
            points = {c.name: c.max_score for c in source.grade_cells}
            solutions = {c.name for c in source.solution_cells}
            tasks = {c.name for c in source.task_cells}
            last = {}
            for index, cell in enumerate(nb.cells):
                grade_id = self._grade_id(cell)
                if grade_id in known:
                    last[grade_id] = index
            cell_ids = set()
            for index, cell in enumerate(nb.cells):
                grade_id = self._grade_id(cell)
                if not isinstance(cell.get("metadata"), dict):
                    cell["metadata"] = NotebookNode()
                cell.metadata.pop("nbgrader", None)
                if grade_id in known and last[grade_id] == index:
                    cell.metadata["nbgrader"] = NotebookNode(
                        grade=grade_id in points, solution=grade_id in solutions, task=grade_id in tasks,
                        locked=bool(known[grade_id].locked), grade_id=grade_id, schema_version=3,
                        checksum=known[grade_id].checksum, **(
                            {"points": points[grade_id]} if grade_id in points else {}))
                elif grade_id is not None:
                    self.log.warning("cell %d: grade_id %r is %s; graded as a plain cell", index, grade_id,
                                     "repeated" if grade_id in known else "unknown")
                if not isinstance(cell.get("id"), str) or cell["id"] in cell_ids:
                    cell["id"] = uuid.uuid4().hex[:8]
                cell_ids.add(cell["id"])
        return nb, resources

    def _put_back_missing_cells(self, nb: NotebookNode, source: Any) -> None:
        """Insert every gradebook cell the submission lacks, except test cells (``OverwriteCells``
        puts those back), as released, after the nearest earlier cell that is there. A cut answer
        cell then fails its own test only (its release raises ``NotImplementedError``), and a test
        cell cut with it has a place to go back to (nbgrader needs the cell before it)."""
        present = {self._grade_id(c) for c in nb.cells} - {None}
        grade_ids = {c.name for c in source.grade_cells}
        order = [c for c in source.source_cells]
        for k, missing in enumerate(order):
            if missing.name in present or missing.name in grade_ids:
                continue
            self.log.warning("cell %s is missing: put back as released", missing.name)
            before = [c.name for c in order[:k] if c.name in present]
            at = 1 + max((i for i, c in enumerate(nb.cells) if self._grade_id(c) in before[-1:]), default=-1)
            new = nbformat.v4.new_markdown_cell(missing.source) if missing.cell_type == "markdown" else \
                nbformat.v4.new_code_cell(missing.source)
            new.metadata["nbgrader"] = NotebookNode(grade_id=missing.name)
            nb.cells.insert(at, new)
            present.add(missing.name)

    @staticmethod
    def _grade_id(cell: Any) -> str | None:
        meta = cell.get("metadata") if isinstance(cell, dict) else None
        meta = meta.get("nbgrader") if isinstance(meta, dict) else None
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        return grade_id if isinstance(grade_id, str) else None


class KernelSafeExecute(Execute):
    """nbgrader's ``Execute``, except that one cell can only cost that cell, within a time budget.

    A cell that kills the kernel (``os._exit``, a segfault, the OOM killer), sends output the grader
    cannot decode (JSON nested deeper than Python's recursion limit), or keeps running after
    the timeout's interrupt (a loop around ``except KeyboardInterrupt: pass``) is replaced by an
    error output, and the notebook is executed again from the start in a fresh kernel (stock
    nbgrader gives up on the whole notebook, or times out every later cell). After
    ``max_kernel_deaths`` such cells, the cells from the next one on are not run and fail (0 points,
    not manual grading). Once
    ``submission_timeout`` seconds have passed, no further cell runs: unrun test cells are
    left for manual grading rather than scored 0.
    """

    max_kernel_deaths = Integer(
        3, help="Cells allowed to kill or hang the kernel before the submission is given up on."
    ).tag(config=True)
    interrupt_grace = Float(
        5.0, help="Seconds a timed-out cell has to stop after its interrupt before the kernel is restarted."
    ).tag(config=True)
    submission_timeout = Integer(
        300, help="Seconds of execution per notebook (all re-runs together); 0 for no budget."
    ).tag(config=True)

    count_cpu_time = Bool(
        True, help="A cell that reaches its timeout having used less CPU time than that (other processes "
        "starved it) may go on until it has used the timeout in CPU seconds, up to starved_factor times "
        "the timeout of wall time, within the submission's budget."
    ).tag(config=True)
    starved_factor = Float(
        4.0, help="Most wall time a starved cell may take, as a multiple of its timeout (count_cpu_time)."
    ).tag(config=True)
    waiting_share = Float(
        0.02, help="A cell past its timeout whose kernel has used less than this share of one core since "
        "the cell started is waiting (sleep, input, a lock), not starved: it is interrupted at once "
        "(count_cpu_time). A sleeping kernel uses about 0.002; a starved one its share of the cores."
    ).tag(config=True)

    installed_packages_first = Bool(
        True, help="Put the kernel's working directory last on sys.path, so that a submitted "
        "rmlearn.py or torch.py cannot shadow the installed package (Python kernels)."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):
        pristine = copy.deepcopy(nb)
        self._skipped: dict[int, tuple[str, str]] = {}
        self._deadline = time.monotonic() + self.submission_timeout if self.submission_timeout else None
        self._resources = resources
        while True:
            try:
                return super().preprocess(nb, resources, km)
            except (DeadKernelError, RecursionError) as error:  # RecursionError: output nested too deep
                if len(self._skipped) >= self.max_kernel_deaths:  # the rest is not run: 0, not manual
                    self.log.warning("the kernel died %d times; cells from %d on are not run",
                                     len(self._skipped) + 1, self._index)
                    for cell in nb.cells[self._index:]:
                        if cell.cell_type == "code":
                            cell.outputs = [_error("DeadKernelError", f"not run: the kernel died "
                                                   f"{len(self._skipped) + 1} times in this notebook")]
                            cell.execution_count = None
                    return nb, resources
                if isinstance(error, _RunawayCell):
                    reason = ("RunawayCellError", "this cell kept running after it was interrupted at the "
                              "time limit; it was skipped on re-run")
                elif isinstance(error, RecursionError):  # jupyter_client's json.loads of one message
                    reason = ("UnreadableOutputError", "this cell sent output nested too deeply for the "
                              "grader to read; it was skipped on re-run")
                else:
                    reason = ("DeadKernelError", "this cell killed the kernel; it was skipped on re-run")
                self.log.warning("%s in cell %d; re-running without it", reason[0], self._index)
                self._skipped[self._index] = reason
                nb.cells = copy.deepcopy(pristine.cells)  # same object: the caller holds it

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        spec = getattr(self.km, "kernel_spec", None)
        if self.installed_packages_first and getattr(spec, "language", "") == "python" and \
                _CWD_LAST not in self.extra_arguments:
            self.extra_arguments = [*self.extra_arguments, _CWD_LAST]
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)  # nbclient binds the sync name statically

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        timeout = super()._get_timeout(cell)
        remaining = self._remaining()
        if remaining is not None:
            timeout = max(1, math.ceil(min(timeout or remaining, remaining)))
        return timeout

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        self._index = index
        self._cell_start, self._cell_cpu = time.monotonic(), self._kernel_cpu_seconds()
        if index in self._skipped:
            cell.outputs = [_error(*self._skipped[index])]
            cell.execution_count = None
            return cell, resources
        remaining = self._remaining()
        if remaining is not None and remaining < 1 and cell.cell_type == "code":  # timeouts are whole seconds
            cell.outputs = [_error("SubmissionTimeout", f"not run: the submission used its whole "
                                   f"{self.submission_timeout} s budget")]
            cell.execution_count = None
            if utils.is_grade(cell):
                _ungraded(self._resources).add(cell.metadata.nbgrader["grade_id"])
            return cell, resources
        return super().preprocess_cell(cell, resources, index)

    def _kernel_cpu_seconds(self) -> float:
        """CPU seconds (user + system) used so far by the kernel's live process tree (bwrap, the
        kernel and whatever it started); 0 when it cannot be read."""
        import psutil

        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        try:
            root = psutil.Process(process.pid)
            tree = [root, *root.children(recursive=True)]
        except (AttributeError, psutil.Error):
            return 0.0
        total = 0.0
        for proc in tree:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    async def _await_starved_cell(self, timeout: int) -> dict | None:
        """The cell's wall-clock timeout is up. If its kernel used less CPU than that, other
        processes (other graders, other jobs) starved it: wait for its reply until it has used
        ``timeout`` CPU seconds, ``starved_factor`` × timeout has passed, or the submission's
        budget is spent. A kernel that used almost no CPU (under ``waiting_share`` of a core) was
        not starved but waiting, and is not waited for. Returns the execute reply, or None (then
        the cell is interrupted)."""
        while True:
            used = self._kernel_cpu_seconds() - self._cell_cpu
            waited = time.monotonic() - self._cell_start
            remaining = self._remaining()
            if used >= timeout or waited >= timeout * self.starved_factor or (remaining is not None and remaining < 1):
                return None
            if used < self.waiting_share * waited:  # sleeping or blocked (or CPU time not readable: 0)
                return None
            try:
                msg = await asyncio.wait_for(self.kc.shell_channel.get_msg(timeout=1), 2)
            except Exception:  # no reply yet
                continue
            if msg.get("msg_type") == "execute_reply":
                self.log.info("cell %d needed %.0f s of wall time for %.1f CPU seconds; not cut", self._index,
                              time.monotonic() - self._cell_start, used)
                return msg

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None):
        if self.count_cpu_time and timeout:
            reply = await self._await_starved_cell(timeout)
            if reply is not None:
                return reply  # nbclient takes it as the cell's reply
        reply = await super()._async_handle_timeout(timeout, cell)  # interrupts the kernel
        try:  # a kernel that obeyed the interrupt answers the pending execute request
            await asyncio.wait_for(self.kc.shell_channel.get_msg(timeout=self.interrupt_grace),
                                   self.interrupt_grace + 1)
        except Exception:
            raise _RunawayCell("the cell did not stop when interrupted") from None
        return reply


class RemoveSpecialFiles(NbGraderPreprocessor):
    """After the kernel is gone, remove every symlink, hard link, fifo, socket and device file it
    left in its folder, before nbgrader writes the graded notebook there, chmods every file and
    (later) copies them into the feedback: each of those follows links. Then, while the folder holds
    more than ``max_folder_mb``, delete the largest file it wrote (never the notebook). What was
    removed is logged and written into the submission's comments (``ScoreAutoGrades``)."""

    max_folder_mb = Integer(200, help="Largest a kernel's folder may stay after the run (MB); 0: no limit.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        folder = resources.get("metadata", {}).get("path") or "."
        removed = remove_special_files(folder)
        if self.max_folder_mb:
            notebook = f"{resources['nbgrader']['notebook']}.ipynb" if "nbgrader" in resources else None
            removed += trim_folder(folder, self.max_folder_mb * 2**20, keep={notebook})
        if removed:
            self.log.warning("removed from %s before writing anything there: %s", folder, "; ".join(removed))
            resources.setdefault(REMOVED, []).extend(removed)
        return nb, resources


_LIVE = ("text/html", "application/javascript", "image/svg+xml", "text/markdown", "text/latex",
         "application/vnd.jupyter.widget-view+json")
_HTML_TAG = re.compile(r"<\s*[A-Za-z!/?]")


class OutputsAsText(NbGraderPreprocessor):
    """What the student's code displayed is shown as text in the formgrader and the feedback, never
    run as HTML or JavaScript: every rich output (HTML, JavaScript, SVG, Markdown, LaTeX, widgets)
    becomes ``text/plain`` holding its source (shown escaped), and a Markdown cell that
    holds an HTML tag is escaped (the shipped problem sets' own Markdown holds none)."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if cell.cell_type == "markdown" and _HTML_TAG.search(cell.source):
            cell.source = html.escape(cell.source, quote=False)
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not isinstance(data, dict):
                continue
            live = {k: data.pop(k) for k in _LIVE if k in data}
            if live:  # what was displayed, as text (rather than "<IPython.core.display.HTML object>")
                data["text/plain"] = "\n".join(v if isinstance(v, str) else json.dumps(v) for v in live.values())
        return cell, resources


class LimitOutputBytes(NbGraderPreprocessor):
    """Cut every text output (a stream, ``text/plain``, a traceback line) to ``max_bytes``, and
    replace a larger rich output (an image, JSON) by a note: nbgrader's ``LimitOutput`` counts
    lines, and one 600 MB line is one line. Runs after ``JudgeAnswers`` (records are judged)."""

    max_bytes = Integer(1_000_000, help="Largest text kept per output (bytes of UTF-8); 0: no limit.").tag(config=True)

    def _cut(self, text: Any) -> Any:
        if not isinstance(text, str) or len(text) <= self.max_bytes // 4:  # 4 bytes per character at most
            return text
        data = text.encode()
        if len(data) <= self.max_bytes:
            return text
        cut = data[:self.max_bytes].decode(errors="ignore")
        return f"{cut}\n… [output cut: {len(data):,} bytes, {self.max_bytes:,} kept]"

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if self.max_bytes:
            for output in cell.get("outputs", []):
                if "text" in output:
                    output["text"] = self._cut(output["text"])
                data = output.get("data")
                if isinstance(data, dict):
                    for key in [k for k in data if k != "text/plain"]:  # images, JSON, records: judged already
                        size = len(data[key]) if isinstance(data[key], str) else len(json.dumps(data[key]))
                        if size > self.max_bytes:
                            del data[key]
                            data["text/plain"] = f"[{key} output removed: {size:,} bytes, more than {self.max_bytes:,}]"
                    if "text/plain" in data:
                        data["text/plain"] = self._cut(data["text/plain"])
                if isinstance(output.get("traceback"), list):
                    output["traceback"] = [self._cut(line) for line in output["traceback"]]
        return cell, resources


class JudgeAnswers(NbGraderPreprocessor):
    """Compare the answers the hidden tests recorded with ``answers/<assignment>/<notebook>.json``.

    Runs in the grader process after execution. A test cell with expected checks gets an error
    output for each check that is missing, recorded more than once, or different; the message
    names the check, never the expected value. Test cells without checks are left as they are.
    """

    answers_directory = Unicode(
        "", help="Folder holding <assignment>/<notebook>.json; default: answers/ in the course root."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        info = resources["nbgrader"]
        if self.answers_directory:
            path = Path(self.answers_directory) / info["assignment"] / f"{info['notebook']}.json"
        else:
            path = answers_path(CourseDirectory(config=self.config).root, info["assignment"], info["notebook"])
        self._path = path
        self._expected = json.loads(path.read_text()) if path.is_file() else {}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if utils.is_grade(cell) and cell.cell_type == "code":
            grade_id = cell.metadata.nbgrader["grade_id"]
            expected = self._expected.get(grade_id)
            if expected:
                for problem in mismatches(expected, records_in(cell.outputs)):
                    cell.outputs.append(_error("HiddenTestFailed", problem))
            elif "record(" in cell.source:  # the source comes from the gradebook, not the student
                self.log.error("%s records answers but %s has none for it: sent to manual grading",
                               grade_id, self._path)
                _ungraded(resources).add(grade_id)
        return cell, resources


class ScoreAutoGrades(SaveAutoGrades):
    """nbgrader's ``SaveAutoGrades`` with one rule for test cells: no error output → full points,
    any error output → 0; ``execute_result``, stdout and stderr earn and cost nothing. Test cells
    the budget left unrun (see ``KernelSafeExecute``) go to manual grading."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        nb, resources = super().preprocess(nb, resources)
        removed = resources.get(REMOVED)
        if removed:  # said where the instructor reads the grade (formgrader, feedback)
            with Gradebook(self.db_url) as gb:
                notebook = gb.find_submission_notebook(self.notebook_id, self.assignment_id, self.student_id)
                comments = sorted(notebook.comments, key=lambda c: c.name)
                if comments:
                    note = "Removed from the graded folder before anything read it: " + "; ".join(removed)
                    comments[0].auto_comment = "\n".join(filter(None, [comments[0].auto_comment, note]))
                    gb.db.commit()
        return nb, resources

    def _add_score(self, cell: NotebookNode, resources: dict) -> None:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        if utils.is_solution(cell) or cell.cell_type != "code":
            return super()._add_score(cell, resources)
        grade = self.gradebook.find_grade(grade_id, self.notebook_id, self.assignment_id, self.student_id)
        if grade_id in resources.get(UNGRADED, ()):
            grade.auto_score = None
        else:
            failed = any(o.output_type == "error" for o in cell.outputs)
            grade.auto_score = 0.0 if failed else float(cell.metadata["nbgrader"]["points"])
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        self.gradebook.db.commit()


class GradesCsvExportPlugin(CsvExportPlugin):
    """nbgrader's CSV export plus a ``needs_manual_grading`` column: ``yes`` when a submission has
    a grade nobody has given (nbgrader failed on it, a cell went unrun, a manual cell), ``no``
    otherwise, empty for a student who submitted nothing. Its score then counts only what was
    graded; do not read it as final."""

    def export(self, gradebook: Gradebook) -> None:
        super().export(gradebook)
        dest = self.to or "grades.csv"
        with open(dest) as f:
            lines = f.read().splitlines()
        header = lines[0].split(",")
        column = {name: i for i, name in enumerate(header)}
        out = [lines[0] + ",needs_manual_grading"]
        for line in lines[1:]:
            fields = line.split(",")
            try:
                submission = gradebook.find_submission(fields[column["assignment"]], fields[column["student_id"]])
            except MissingEntry:
                flag = ""
            else:
                flag = "yes" if submission.needs_manual_grade else "no"
            out.append(f"{line},{flag}")
        with open(dest, "w") as f:
            f.write("\n".join(out) + "\n")


def make_classes() -> dict[str, type]:
    return {cls.__name__: cls for cls in (KernelSafeExecute, NormalizeSubmission, RemoveSpecialFiles, OutputsAsText, LimitOutputBytes, JudgeAnswers,
                                          ScoreAutoGrades, GradesCsvExportPlugin, TolerantNotebookExporter)}
