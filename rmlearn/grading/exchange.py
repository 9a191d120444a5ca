"""``nbgrader collect`` that takes only what each student really submitted.

nbgrader's exchange is a shared folder: every student can write into ``<exchange>/<course>/inbound/``.
Stock ``collect`` copies, for each student id found in a folder name
``<student>+<assignment>+<timestamp>+<random>``, the newest such folder into
``submitted/<student>/<assignment>/``, following symlinks inside it, and only warns when the folder
belongs to another user. :class:`SafeExchangeCollect` (the course's ``nbgrader_config.py`` sets
``c.ExchangeFactory.collect`` to it) skips, with an error that names it and why:

- a student id that is not a plain name (``..``, ``/``, spaces: it becomes a path);
- a folder that is a link, or holds a link, a hard link, a fifo or a device file
  (``files.special_files``): copying would follow it;
- a folder whose owner is another local user than the student id, when the student id is a local
  user (a hub with one user per student): it is someone else's forgery. When student ids are not
  local users (every container runs as ``jovyan``), ownership cannot be checked: use one user per
  student or ngshare (docs/instructor.md, "JupyterHub").

The newest folder that passes is collected; a student whose every folder fails is not collected.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect, groupby
from nbgrader.utils import check_mode

from .files import special_files

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")


def refusal(path: str, student_id: str) -> str | None:
    """Why the inbound folder ``path`` claimed by ``student_id`` must not be collected (None: fine)."""
    import pwd

    if not STUDENT_ID.fullmatch(student_id) or student_id in (".", ".."):
        return f"the student id {student_id!r} is not a plain name"
    if os.path.islink(path) or not os.path.isdir(path):
        return "it is a link or not a folder"
    found = special_files(path)
    if found:
        return "it holds " + "; ".join(f"{rel}: {kind}" for rel, kind in found)
    try:
        expected = pwd.getpwnam(student_id).pw_uid
    except KeyError:  # student ids are not local users: ownership cannot be checked
        return None
    owner = os.lstat(path).st_uid
    if owner != expected:
        try:
            name = pwd.getpwuid(owner).pw_name
        except KeyError:
            name = f"uid {owner}"
        return f"it belongs to {name}, not to {student_id}"
    return None


class SafeExchangeCollect(ExchangeCollect):
    """nbgrader's collect, skipping inbound folders that :func:`refusal` rejects."""

    def init_src(self) -> None:
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        if not check_mode(self.inbound_path, read=True, execute=True):
            self.fail(f"You don't have read permissions for the directory: {self.inbound_path}")
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                self.duedate = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        student_id = self.coursedir.student_id or "*"
        pattern = os.path.join(self.inbound_path, f"{student_id}+{self.coursedir.assignment_id}+*")
        records = []
        for path in sorted(glob.glob(pattern)):
            try:
                record = self._path_to_record(path)
            except Exception as error:  # a name nbgrader cannot read (no timestamp): skip it, not the run
                self.log.error("not collected: %s: %s", path, error)
                continue
            why = refusal(path, record["username"])
            if why:
                self.log.error("not collected: %s: %s", path, why)
            else:
                records.append(record)
        self.src_records = [self._choose(group) for group in groupby(records, lambda r: r["username"]).values()]

    def _choose(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The newest record, or with ``before_duedate`` the newest before the due date (as nbgrader)."""
        records = self._sort_by_timestamp(records)
        if self.duedate is not None and self.before_duedate:
            before = [r for r in records if r["timestamp"] <= self.duedate]
            return before[0] if before else records[0]
        return records[0]
