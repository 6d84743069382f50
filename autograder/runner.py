"""Autograde one submission in a folder of its own, within time and memory limits.

Each submission gets a private copy of the course directory (settings, source and a
snapshot of the gradebook), its notebooks and nothing else (no files a student put
beside them), an empty fit cache and payload folder, and a private copy of PyTensor's
compile cache, so that one submission can neither see nor poison another's. ``nbgrader
autograde`` runs there as a child process group; the whole group is killed when it runs
past the time limit or its memory (summed over the processes, the notebook's kernel
included) passes the memory limit. Then the checks run in a fresh Python process
(:mod:`autograder.check_submission`), so no student code or data ever runs in the
process that collects the grades.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import psutil

__all__ = ["Limits", "Outcome", "grade_submission", "first_errors", "STOP"]

#: Set by the class run when it is interrupted: running submissions are killed.
STOP: threading.Event | None = None


@dataclass
class Limits:
    """Per submission: wall time (s) of the whole run, per cell (s), and memory (bytes)."""

    submission_seconds: float = 1200
    cell_seconds: int = 600
    memory_bytes: int = 6 * 2**30
    check_seconds: float = 600


@dataclass
class Outcome:
    student: str
    status: str  # graded, timeout, memory, not-a-notebook, error
    reason: str = ""
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    checks: list = field(default_factory=list)  # CheckResult dicts
    errors: list = field(default_factory=list)  # first errors raised by the student's cells
    work: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    try:
        for p in [process, *process.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def _kill_group(popen: subprocess.Popen) -> None:
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    popen.wait()


def run_limited(cmd: list[str], *, cwd: Path, env: dict, log: Path, seconds: float, memory: int) -> tuple[str, float, int]:
    """Run ``cmd`` in its own process group; returns (status, seconds, peak bytes).

    status is ``"ok"``, ``"failed"`` (non-zero exit), ``"timeout"`` or ``"memory"``.
    """
    start = time.monotonic()
    peak = 0
    with open(log, "ab") as out:
        popen = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        process = psutil.Process(popen.pid)
        while True:
            try:
                code = popen.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                pass
            peak = max(peak, _tree_rss(process))
            if peak > memory:
                _kill_group(popen)
                return "memory", time.monotonic() - start, peak
            if time.monotonic() - start > seconds:
                _kill_group(popen)
                return "timeout", time.monotonic() - start, peak
            if STOP is not None and STOP.is_set():
                _kill_group(popen)
                return "stopped", time.monotonic() - start, peak
        _kill_group(popen)  # a kernel left behind by a crashed nbgrader
    return ("ok" if code == 0 else "failed"), time.monotonic() - start, peak


def first_errors(notebooks: list[Path], limit: int = 3) -> list[str]:
    """The first errors raised by a student's cells: 'notebook, cell N: Error: message'."""
    found = []
    for path in notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:
            continue
        for number, cell in enumerate(nb.cells, 1):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    name, value = output.get("ename"), str(output.get("evalue", ""))[:200]
                    if name in ("KeyboardInterrupt", "CellTimeoutError"):  # nbgrader stopped it at the time limit
                        found.append(f"{path.stem}, cell {number}: ran past the time limit for a cell and was stopped")
                    else:
                        found.append(f"{path.stem}, cell {number}: {name}: {value}".rstrip(": "))
                    break
            if len(found) >= limit:
                return found
    return found


def _readable(path: Path) -> str:
    """Why a file is not a notebook nbgrader can grade, or ''."""
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as error:
        return f"{path.name} is not a readable Jupyter notebook ({type(error).__name__})"
    return ""


def prepare(course: Path, assignment: str, student: str, submission: Path, work: Path, gradebook: Path) -> list[str]:
    """Build the private course directory; returns problems with the submitted files."""
    if work.exists():
        shutil.rmtree(work)
    (work / "source").mkdir(parents=True)
    shutil.copy2(course / "nbgrader_config.py", work / "nbgrader_config.py")
    shutil.copy2(gradebook, work / "gradebook.db")
    shutil.copytree(course / "source" / assignment, work / "source" / assignment)
    target = work / "submitted" / student / assignment
    target.mkdir(parents=True)
    problems = []
    for source_nb in sorted((course / "source" / assignment).glob("*.ipynb")):
        submitted = submission / source_nb.name
        if not submitted.exists():
            continue  # nbgrader scores a missing notebook 0
        problem = _readable(submitted)
        if problem:
            problems.append(problem)
        else:
            shutil.copyfile(submitted, target / source_nb.name)
    for name in ("timestamp.txt",):
        if (submission / name).exists():
            shutil.copyfile(submission / name, target / name)
    return problems


def _environment(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "JPY_"))}
    compiledir = work / "pytensor"
    user_cache = Path(os.environ.get("PYTENSOR_COMPILEDIR_BASE", Path.home() / ".pytensor"))
    if user_cache.is_dir():  # a private copy of a warm cache: fast, and unshared
        shutil.copytree(user_cache, compiledir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("lock_dir"))
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("base_compiledir")]
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        COURSE_FIT_CACHE=str(work / "fits"),
        AUTOGRADER_PAYLOAD_DIR=str(work / "payload"),
        PYTENSOR_FLAGS=",".join([*flags, f"base_compiledir={compiledir}"]),
        MPLBACKEND="Agg",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def grade_submission(course: Path, assignment: str, student: str, submission: Path, work: Path,
                     gradebook: Path, reference: Path, limits: Limits) -> Outcome:
    """Autograde one submission in ``work`` and run the checks; never raises."""
    started = time.monotonic()
    outcome = Outcome(student, "error", work=str(work))
    try:
        problems = prepare(course, assignment, student, submission, work, gradebook)
        if problems:
            outcome.status, outcome.reason = "not-a-notebook", "; ".join(problems)
            return outcome
        env = _environment(work)
        log = work / "autograde.log"
        # -I (isolated): the working folder, where student code can write files, is not on
        # sys.path, so nothing it plants can stand in for a module the grader imports.
        nbgrader = [sys.executable, "-I", "-m", "nbgrader", "autograde", assignment, "--student", student, "--force",
                    f"--Execute.timeout={limits.cell_seconds}"]
        status, _, peak = run_limited(nbgrader, cwd=work, env=env, log=log,
                                      seconds=limits.submission_seconds, memory=limits.memory_bytes)
        outcome.peak_memory_mb = peak / 2**20
        autograded = sorted((work / "autograded" / student / assignment).glob("*.ipynb"))
        outcome.errors = first_errors(autograded)
        if status == "timeout":
            outcome.status = "timeout"
            outcome.reason = f"stopped after {limits.submission_seconds:.0f} s (the time limit for a submission)"
            return outcome
        if status == "memory":
            outcome.status = "memory"
            outcome.reason = (f"stopped when it used more than {limits.memory_bytes / 2**30:.1f} GB of memory "
                              "(the limit for a submission)")
            return outcome
        if status == "failed" or not autograded:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            outcome.reason = "nbgrader could not autograde it: " + " | ".join(tail)
            return outcome
        check_cmd = [sys.executable, "-I", "-m", "autograder.check_submission", str(work), assignment, student,
                     str(reference)]
        env_check = {k: v for k, v in env.items() if k != "AUTOGRADER_PAYLOAD_DIR"}
        status, _, _ = run_limited(check_cmd, cwd=work, env=env_check, log=work / "check.log",
                                   seconds=limits.check_seconds, memory=limits.memory_bytes)
        result_file = work / "checks.json"
        if status != "ok" or not result_file.exists():
            tail = (work / "check.log").read_text(errors="replace").strip().splitlines()[-2:]
            outcome.reason = f"the checks could not run ({status}): " + " | ".join(tail)
            return outcome
        outcome.checks = json.loads(result_file.read_text())
        outcome.status = "graded"
        return outcome
    except Exception as error:  # one bad submission must not stop the class
        outcome.status, outcome.reason = "error", f"grading failed: {type(error).__name__}: {error}"
        return outcome
    finally:
        outcome.seconds = time.monotonic() - started
        for bulky in ("fits", "pytensor"):  # keep the payload and logs, not the fits and compile cache
            shutil.rmtree(work / bulky, ignore_errors=True)
