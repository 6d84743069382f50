"""A bubblewrap sandbox for code the grader does not trust.

Every student notebook's kernel runs inside one (:func:`kernel_spec`), and so does every
trusted refit of a student's model specification (:mod:`autograder.trusted`), because a
model specification is also the student's input. Inside a sandbox a process sees

- read-only: the system's programs and libraries (``/usr``, the ``/bin``-style links, a
  few files of ``/etc``), the Python installation and the virtual environment, the
  grader's installed read-only copy of ``course_utils`` and ``autograder`` (``code``) and
  the folder holding the course data;
- read-write: one folder of its own (``folder``, which is also ``$HOME`` and the working
  directory) and a private ``/tmp`` and ``/dev/shm`` of limited size, whose contents the
  runner counts as the submission's memory;
- nothing else: not the course directory (gradebook, solutions, other submissions,
  feedback, the grader's state), not the project checkout, not ``/root`` or ``/home``;
- no network (its own network namespace has only an unconnected loopback), its own PID
  namespace (when the sandbox's first process ends, the kernel kills every process
  started inside it, so nothing outlives a submission), no capabilities, and no new user
  namespaces.

``bwrap`` comes from Debian's ``bubblewrap`` package; ``make grade`` installs it. It works
as root and, where the kernel allows unprivileged user namespaces, as a normal user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["SandboxUnavailable", "bwrap", "command", "kernel_spec", "probe", "KERNEL_NAME"]

KERNEL_NAME = "course-sandbox"
TMP_BYTES = 1 << 30  # the private /tmp and /dev/shm: 1 GiB of memory each at most
#: The sandbox's memory-backed folders: what is written there holds memory, and the
#: runner counts it in a submission's memory (:func:`autograder.runner.run_limited`).
MEMORY_FOLDERS = ("/tmp", "/dev/shm")
# Files of /etc that programs need (dynamic linker, time zone, certificates, fonts, users).
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "fonts", "ssl", "localtime",
        "passwd", "group", "nsswitch.conf", "hosts", "mime.types", "os-release")
_TOP = ("usr", "bin", "lib", "lib32", "lib64", "libx32", "sbin")
# Variables a sandboxed process inherits (the rest of the grader's environment is not passed).
_KEEP_ENV = ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start on this machine (the message says why and what to do)."""


def bwrap() -> str:
    """The path of ``bwrap``, or :class:`SandboxUnavailable` saying how to install it."""
    found = os.environ.get("AUTOGRADER_BWRAP") or shutil.which("bwrap")
    if not found:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed: 'make grade' installs it as root; otherwise run "
            "'sudo apt-get install bubblewrap' (Debian/Ubuntu), or grade without a sandbox with --no-sandbox "
            "(which the report then states for every student)")
    return found


def _python_roots() -> list[Path]:
    """The Python installation and the virtual environment (resolved, without duplicates)."""
    roots = []
    for prefix in (sys.base_prefix, sys.prefix, sys.exec_prefix, Path(sys.executable).resolve().parent.parent):
        path = Path(prefix).resolve()
        if not any(path == r or path.is_relative_to(r) for r in roots):
            roots = [r for r in roots if not r.is_relative_to(path)] + [path]
    return roots


def command(argv: Sequence[str], *, folder: Path, code: Path, data: Path | None = None,
            env: Mapping[str, str] | None = None, writable: Sequence[Path] = (),
            links: Mapping[Path, Path] | None = None) -> list[str]:
    """The ``bwrap`` command that runs ``argv`` sandboxed, with ``folder`` as its own
    writable place (see the module docs). ``code`` is put first on ``PYTHONPATH``;
    ``env`` adds variables; ``writable`` adds folders shared by trusted runs only (the
    trusted fits' compile cache), never given to a student's kernel; ``links`` maps
    symbolic links to make inside (under ``/tmp``) to their targets."""
    folder, code = Path(folder).resolve(), Path(code).resolve()
    cmd = [bwrap(), "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--disable-userns",
           "--cap-drop", "ALL", "--clearenv", "--proc", "/proc", "--dev", "/dev",
           "--size", str(TMP_BYTES), "--tmpfs", "/dev/shm", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    for link, target in (links or {}).items():
        cmd += ["--symlink", str(target), str(link)]
    for top in _TOP:
        path = Path("/") / top
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    for name in _ETC:
        path = Path("/etc") / name
        if path.exists():
            cmd += ["--ro-bind", str(path), str(path)]
    for path in [*_python_roots(), code, *([Path(data).resolve()] if data else [])]:
        cmd += ["--ro-bind", str(path), str(path)]
    for path in [*map(Path, writable), folder]:
        cmd += ["--bind", str(Path(path).resolve()), str(Path(path).resolve())]
    cmd += ["--remount-ro", "/", "--chdir", str(folder)]  # the sandbox's own root: read-only too
    variables = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    variables.update(
        HOME=str(folder), TMPDIR="/tmp", USER="student", LOGNAME="student",
        PATH=f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        PYTHONPATH=str(code), PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
        MPLCONFIGDIR=str(folder / ".config" / "matplotlib"),
        **({"COURSE_DATA_DIR": str(Path(data).resolve())} if data else {}),
    )
    variables.update(env or {})
    for key, value in variables.items():
        cmd += ["--setenv", key, str(value)]
    return [*cmd, "--", *argv]


def socket_link(folder: Path) -> Path:
    """A short path under the temporary folder that links to ``folder``: Unix socket paths
    are limited to 107 bytes, and a course directory's can be longer. The link exists on
    the grader's side (made here) and inside the sandbox (``links`` of :func:`command`)."""
    import secrets
    import tempfile

    link = Path(tempfile.gettempdir()) / f"ag-{secrets.token_hex(6)}"
    link.symlink_to(Path(folder).resolve(), target_is_directory=True)
    return link


def kernel_spec(target: Path, *, folder: Path, code: Path, data: Path | None, env: Mapping[str, str],
                link: Path | None = None) -> Path:
    """Write a Jupyter kernelspec named :data:`KERNEL_NAME` into ``target/kernels/`` whose
    kernel (the venv's IPython kernel) starts inside the sandbox. The kernel talks to
    nbgrader over ZeroMQ's ``ipc`` transport (Unix sockets in ``folder``, reached through
    the short ``link``), since the sandbox has no network; interrupts go as messages (a
    signal would reach bwrap)."""
    argv = command([sys.executable, "-P", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   folder=folder, code=code, data=data, env=env,
                   links={link: Path(folder).resolve()} if link else None)
    spec_dir = Path(target) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": argv, "display_name": "Python 3 (sandboxed)", "language": "python",
        "interrupt_mode": "message", "metadata": {"debugger": False},
    }, indent=1))
    return spec_dir


def probe(folder: Path, code: Path, data: Path | None = None, timeout: float = 120) -> str:
    """Start a sandbox and check it holds; returns '' or what is wrong (for the preflight).

    Inside, the course's code must import, the folder must be writable, the code
    read-only, and no network connection may open.
    """
    folder.mkdir(parents=True, exist_ok=True)
    script = (
        "import json, os, socket, sys\n"
        "import course_utils, autograder.export\n"
        "out = {'import': autograder.export.__file__}\n"
        "open('probe.txt', 'w').write('ok')\n"
        "try:\n"
        "    open(os.path.join(os.path.dirname(autograder.export.__file__), 'probe'), 'w')\n"
        "    out['code_writable'] = True\n"
        "except OSError:\n"
        "    out['code_writable'] = False\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    out['network'] = True\n"
        "except OSError:\n"
        "    out['network'] = False\n"
        "print(json.dumps(out))\n"
    )
    try:
        cmd = command([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(code)!r})\n" + script],
                      folder=folder, code=code, data=data)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (SandboxUnavailable, OSError, subprocess.TimeoutExpired) as error:
        return f"the sandbox could not start: {error}"
    if done.returncode != 0:
        return f"the sandbox could not start (bwrap exited {done.returncode}): {done.stderr.strip()[-500:]}"
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"the sandbox's probe printed no result: {done.stdout[-300:]} {done.stderr[-300:]}"
    if not Path(result["import"]).resolve().is_relative_to(Path(code).resolve()):
        return f"inside the sandbox the course's code came from {result['import']}, not from the grader's copy"
    if result["code_writable"] or result["network"]:
        return "the sandbox does not hold: " + ", ".join(k for k in ("code_writable", "network") if result[k])
    if not (folder / "probe.txt").exists():
        return "the sandbox's folder was not writable from inside"
    return ""
