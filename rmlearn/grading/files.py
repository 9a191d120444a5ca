"""What a submission leaves in its folder, checked before nbgrader touches it.

nbgrader follows links: its writer writes the graded notebook through a symlink named like the
notebook, ``set_permissions`` chmods the target of every link, ``generate_feedback`` copies the
target of every file it finds, and copying a fifo or a device blocks or never ends. A kernel may
leave any of these in its own folder (the sandbox lets it write there), and a hand-made submission
folder may hold them too. So:

- :func:`special_files` lists what is not a plain folder or a regular file with a single name:
  symlinks, hard links (a second name for an inode), fifos, sockets and device files;
- :func:`remove_special_files` removes them (never following one) and says what it removed;
- :func:`refuse_special_files` raises :class:`SubmissionFolderError` naming them;
- :func:`trim_folder` deletes the largest files of a folder that is over its size limit.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> os.symlink("/etc/passwd", os.path.join(folder, "notes.html"))
>>> remove_special_files(folder)
['notes.html (a symbolic link to …/passwd)']
>>> os.listdir(folder)
[]
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SubmissionFolderError(ValueError):
    """A submission folder holds links or special files; it is not graded (a person must look)."""


def _kind(path: str, info: os.stat_result) -> str | None:
    """Why ``path`` must not be followed, or None for a plain folder or a regular file."""
    mode = info.st_mode
    if stat.S_ISLNK(mode):  # the target's last part only: the same text wherever the course lives
        return f"a symbolic link to …/{os.path.basename(os.readlink(path).rstrip('/'))}"
    if stat.S_ISDIR(mode):
        return None
    if stat.S_ISREG(mode):
        return f"a hard link ({info.st_nlink} names for one file)" if info.st_nlink > 1 else None
    if stat.S_ISFIFO(mode):
        return "a named pipe (fifo)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"


def special_files(folder: str | Path) -> list[tuple[str, str]]:
    """(path relative to ``folder``, what it is) for every entry that is not a plain folder or a
    regular file with one name. Never follows a link."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            kind = _kind(path, os.lstat(path))
            if kind:
                found.append((os.path.relpath(path, folder), kind))
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return found


def remove_special_files(folder: str | Path) -> list[str]:
    """Remove every entry :func:`special_files` finds (the link itself, never its target).
    Returns ``"<name> (<what it was>)"`` for each."""
    removed = []
    for rel, kind in special_files(folder):
        os.unlink(os.path.join(folder, rel))
        removed.append(f"{rel} ({kind})")
    return removed


def refuse_special_files(folder: str | Path) -> None:
    """Raise :class:`SubmissionFolderError` when ``folder`` holds links or special files."""
    found = special_files(folder)
    if found:
        listed = "; ".join(f"{rel}: {kind}" for rel, kind in found)
        raise SubmissionFolderError(
            f"{folder} holds links or special files, which grading would follow: {listed}. "
            "It is not graded; look at it and remove them (docs/instructor.md, 'What a cheating "
            "student can still do')")


def trim_folder(folder: str | Path, max_bytes: int, keep: set[str | None] = frozenset()) -> list[str]:
    """While the regular files under ``folder`` hold more than ``max_bytes`` together, delete the
    largest (never one named in ``keep``, relative to ``folder``). Returns ``"<name> (<size> bytes:
    the folder was over its limit)"`` for each file deleted."""
    files = []
    for dirpath, _, filenames in os.walk(folder, followlinks=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                files.append((info.st_size, os.path.relpath(path, folder)))
    total, removed = sum(size for size, _ in files), []
    for size, rel in sorted(files, reverse=True):
        if total <= max_bytes:
            break
        if rel in keep:
            continue
        os.unlink(os.path.join(folder, rel))
        total -= size
        removed.append(f"{rel} ({size:,} bytes: the folder was over its {max_bytes:,} byte limit)")
    return removed
