"""Grade one submission: its notebooks run sandboxed, its models refitted, the checks run.

For each submission the grader makes a private folder (``work``) that no student code
ever sees: a copy of the course settings, the source and a snapshot of the gradebook,
and the submitted notebooks (only the assignment's, only readable ones). ``nbgrader
autograde`` runs there, outside any sandbox (it runs no student code itself), but the
kernel that executes the student's notebooks starts inside a bubblewrap sandbox
(:mod:`autograder.sandbox`) whose only writable folder is ``work/sandbox``: a copy of the
notebooks, the payload the hidden test cells write, the fit cache and a private copy of
PyTensor's compile cache. The kernel talks to nbgrader over Unix sockets in that folder.

Then the model specifications in the payload are refitted by the grader, each in a
sandbox of its own and at most once per class (:mod:`autograder.trusted`), and the checks
run in a fresh, isolated Python process (``python -I``) that imports the grader's
installed read-only copy (:mod:`autograder.install`) and reads only the payload, the
autograded notebooks and the trusted fits.

Limits (:mod:`autograder.limits`, whose time limits are derived from the canary's times
on this machine): the whole run has a wall time and a memory limit, summed over every
process it started (nbgrader, the sandboxed kernel and anything that kernel started,
daemons too: inside the sandbox's PID namespace they stay in the tree), each cell a wall
time, and the sandbox's folder a disk limit. Past a limit the whole tree is killed; and
since the sandbox dies with its parent, and its PID namespace with its first process,
nothing outlives it.

A kernel that stops (the student's code ends it, or it crashes) is graded as far as it
ran, with a reason (:mod:`autograder.executor`); the kernel's next notebook starts afresh.

Outcomes: ``graded``; ``timeout``, ``memory``, ``disk``, ``not-a-notebook`` and
``refused`` (a submission folder that is not a real folder: :mod:`autograder.submitted`)
(the student's; a grade with a reason); and ``retry`` when the grading failed for a reason
that is not the student's (nbgrader or the checks could not run, a trusted fit failed
to start, the run was stopped): no score is recorded and the next run grades it again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import psutil

from . import executor, intake, kernel_client, sandbox, trusted
from .checks import ITEMS, MODEL_ITEMS
from .limits import Limits

__all__ = ["Outcome", "Setup", "grade_submission", "first_errors", "run_limited", "slowest_cell"]

MAX_SPEC_BYTES = 20_000_000
#: Where nbgrader's executor records a kernel that stopped (:mod:`autograder.executor`), in ``work``.
KERNEL_STOPS = "kernel-stops.jsonl"
#: The detail of a ``retry`` because the class run was stopped (Ctrl-C): not counted
#: against the submission's retries (:data:`autograder.grade.MAX_RETRIES`).
STOPPED = "the grading run was stopped"
#: How often a running process asks whether the class run was stopped (seconds): on a
#: Dask cluster the question is a round trip to the scheduler.
STOP_POLL_SECONDS = 2.0


@dataclass
class Setup:
    """What a class run prepares once and every submission uses."""

    code: Path  # the grader's installed read-only copy (autograder.install)
    reference: Path  # the reference posterior inside that copy
    data_dir: Path | None  # the folder holding the course data (read-only in sandboxes)
    trusted_cache: Path  # trusted fits, shared by the class
    sandboxed: bool = True
    #: Every time limit set (:func:`autograder.limits.derive`).
    limits: Limits = field(default_factory=Limits)
    #: The warm PyTensor compile cache each kernel gets a private copy of: the canary's
    #: (made by the solution notebooks, so only the course's own code wrote it), else the user's.
    compile_cache: Path | None = None
    #: Whether the class run was stopped (Ctrl-C): running processes are then killed.
    stop: Callable[[], bool] | None = None
    #: How a trusted fit is obtained: :func:`autograder.trusted.fit` (this machine's cache),
    #: or on a Dask cluster :func:`autograder.cluster.shared_fit` (once for the whole cluster).
    fit: Callable[..., "trusted.TrustedFit"] | None = None


@dataclass
class Outcome:
    student: str
    status: str  # graded, timeout, memory, disk, not-a-notebook, refused, retry
    reason: str = ""  # for the student: sentences, no paths of the grader's machine
    detail: str = ""  # for the instructor (the report): what the grader's logs say
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    #: Seconds by phase: "notebooks" (nbgrader and the sandboxed kernel), "fits" (waiting
    #: for or making the trusted fits), "checks".
    phases: dict = field(default_factory=dict)
    slowest_cell: float = 0.0  # seconds, the longest a cell of its notebooks ran
    checks: list = field(default_factory=list)  # CheckResult dicts
    errors: list = field(default_factory=list)  # first errors raised by the student's cells
    fits: list = field(default_factory=list)  # the trusted fits used: key, seconds, reused
    sandboxed: bool = True
    work: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def _tree_rss(process: psutil.Process) -> int:
    """The memory a process tree holds: its processes' resident memory, plus what its
    sandboxes hold in memory-backed folders (:func:`_sandbox_tmpfs_bytes`)."""
    total, namespaces = 0, {}
    for p in _tree(process):
        try:
            total += p.memory_info().rss
            namespace = os.stat(f"/proc/{p.pid}/ns/mnt").st_ino
        except (psutil.Error, OSError):
            continue
        if namespace != _HOST_MOUNTS and namespace not in namespaces:
            namespaces[namespace] = p.pid
    held: dict[int, int] = {}  # one count per memory-backed file system, however many see it
    for pid in namespaces.values():
        held.update(_sandbox_tmpfs_bytes(pid))
    return total + sum(held.values())


def _mount_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/mnt").st_ino
    except OSError:
        return None


#: This process's mount namespace: a process in another one is inside a sandbox.
_HOST_MOUNTS = _mount_namespace()


def _sandbox_tmpfs_bytes(pid: int) -> dict[int, int]:
    """Bytes written into a sandbox's memory-backed folders (its private ``/tmp`` and
    ``/dev/shm``), seen through ``/proc/<pid>/root`` of a process inside it, by file
    system (device): pages that count as no process's resident memory, but hold the
    machine's memory all the same. A folder that is the grader's own (a process still
    setting up its sandbox sees the machine's ``/tmp``) is not the sandbox's."""
    used = {}
    for folder in sandbox.MEMORY_FOLDERS:
        path = f"/proc/{pid}/root{folder}"
        try:
            device = os.stat(path).st_dev
            if device == os.stat(folder).st_dev:
                continue
            info = os.statvfs(path)
        except OSError:
            continue
        used[device] = (info.f_blocks - info.f_bfree) * info.f_frsize
    return used


def _kill_tree(popen: subprocess.Popen) -> None:
    """Kill the process, every descendant (in any session: kernels start their own) and its group."""
    try:
        for p in reversed(_tree(psutil.Process(popen.pid))):
            try:
                p.kill()
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    popen.wait()


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _find_prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


#: Looked up here, once: after fork, in a threaded worker, loading a library could deadlock.
_PRCTL = _find_prctl()


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the process that started it dies (Linux's
    PR_SET_PDEATHSIG), so a grading worker that is killed leaves no nbgrader or kernel running."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def run_limited(cmd: list[str], *, cwd: Path, env: dict, log: Path, seconds: float, memory: int,
                disk: tuple[Path, int] | None = None,
                stop: Callable[[], bool] | None = None) -> tuple[str, float, int]:
    """Run ``cmd`` with its whole process tree limited; returns (status, seconds, peak bytes).

    status is ``"ok"``, ``"failed"`` (non-zero exit), ``"timeout"``, ``"memory"``,
    ``"disk"`` (the folder ``disk[0]`` grew past ``disk[1]`` bytes) or ``"stopped"``
    (``stop()`` said so; it is asked every :data:`STOP_POLL_SECONDS`).
    """
    start = time.monotonic()
    peak, last_disk, last_stop = 0, start, start
    with open(log, "ab") as out:
        popen = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        process = psutil.Process(popen.pid)
        status = None
        while status is None:
            try:
                code = popen.wait(timeout=0.25)
                status = "ok" if code == 0 else "failed"
                break
            except subprocess.TimeoutExpired:
                pass
            peak = max(peak, _tree_rss(process))
            now = time.monotonic()
            if peak > memory:
                status = "memory"
            elif now - start > seconds:
                status = "timeout"
            elif stop is not None and now - last_stop > STOP_POLL_SECONDS:
                last_stop = now
                if _asked_to_stop(stop):
                    status = "stopped"
            if status is None and disk is not None and now - last_disk > 5:
                last_disk = now
                if _folder_bytes(disk[0]) > disk[1]:
                    status = "disk"
        _kill_tree(popen)  # also a kernel or daemon left behind by a finished run
    return status, time.monotonic() - start, peak


def _asked_to_stop(stop: Callable[[], bool]) -> bool:
    try:
        return bool(stop())
    except Exception:  # the scheduler cannot be reached: the run is over for this worker too
        return True


def first_errors(notebooks: list[Path], limit: int = 3) -> list[str]:
    """The first errors raised by a student's cells, ``limit`` per notebook:
    'notebook, cell N: Error: message'."""
    found = []
    for path in notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:
            continue
        mine = []
        for number, cell in enumerate(nb.cells, 1):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and output.get("ename") != executor.NOT_RUN:
                    name, value = output.get("ename"), str(output.get("evalue", ""))[:200]
                    if name in ("KeyboardInterrupt", "CellTimeoutError"):  # nbgrader stopped it at the time limit
                        mine.append(f"{path.stem}, cell {number}: ran past the time limit for a cell and was stopped")
                    else:
                        mine.append(f"{path.stem}, cell {number}: {name}: {value}".rstrip(": "))
                    break
            if len(mine) >= limit:
                break
        found += mine
    return found


def slowest_cell(notebooks: list[Path]) -> float:
    """The longest any cell of ``notebooks`` ran (seconds), from the timing nbclient
    records in each executed cell's metadata (``execution``); 0 if there is none."""
    from datetime import datetime

    longest = 0.0
    for path in notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:
            continue
        for cell in nb.cells:
            timing = cell.get("metadata", {}).get("execution", {})
            try:
                start = datetime.fromisoformat(timing["iopub.execute_input"])
                end = datetime.fromisoformat(timing["shell.execute_reply"])
            except (KeyError, TypeError, ValueError):
                continue
            longest = max(longest, (end - start).total_seconds())
    return longest


def _readable(path: Path) -> str:
    """Why a file is not a notebook nbgrader can grade, or ''."""
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as error:
        return f"{path.name} is not a readable Jupyter notebook ({type(error).__name__}), so it was not graded"
    return ""


def prepare(course: Path, assignment: str, student: str, submission: Path, work: Path, gradebook: Path) -> tuple[list[str], int]:
    """Build the private course directory; returns (problems with submitted files, notebooks copied)."""
    if work.exists():
        shutil.rmtree(work)
    (work / "source").mkdir(parents=True)
    shutil.copy2(course / "nbgrader_config.py", work / "nbgrader_config.py")
    shutil.copy2(gradebook, work / "gradebook.db")
    shutil.copytree(course / "source" / assignment, work / "source" / assignment)
    target = work / "submitted" / student / assignment
    target.mkdir(parents=True)
    problems, copied = [], 0
    for source_nb in sorted((course / "source" / assignment).glob("*.ipynb")):
        submitted = submission / source_nb.name
        if not submitted.exists() or submitted.is_symlink() or not submitted.is_file():
            continue  # nbgrader scores a missing notebook 0
        problem = _readable(submitted)
        if problem:
            problems.append(problem)  # its sibling is still graded
        else:
            shutil.copyfile(submitted, target / source_nb.name)
            copied += 1
    stamp = submission / "timestamp.txt"
    if stamp.is_file() and not stamp.is_symlink():
        shutil.copyfile(stamp, target / "timestamp.txt")
    return problems, copied


def user_compile_cache() -> Path:
    return Path(os.environ.get("PYTENSOR_COMPILEDIR_BASE", Path.home() / ".pytensor"))


def _sandbox_folder(work: Path, notebooks: Path, compile_cache: Path | None) -> Path:
    """The kernel's folder: the notebooks, an empty payload, fit cache and runtime, and a
    private copy of a warm PyTensor compile cache (fast, and it cannot poison anyone else's)."""
    folder = work / "sandbox"
    (folder / "payload").mkdir(parents=True)
    (folder / "runtime").mkdir()
    shutil.copytree(notebooks, folder / "submission")
    warm = compile_cache if compile_cache is not None and compile_cache.is_dir() else user_compile_cache()
    if warm.is_dir():
        shutil.copytree(warm, folder / ".pytensor", dirs_exist_ok=True, ignore=shutil.ignore_patterns("lock_dir"))
    return folder


def _kernel_environment(folder: Path) -> dict:
    return {"COURSE_FIT_CACHE": str(folder / "fits"), "AUTOGRADER_PAYLOAD_DIR": str(folder / "payload"),
            "PYTENSOR_FLAGS": f"base_compiledir={folder / '.pytensor'}"}


def _nbgrader_environment(work: Path, folder: Path, setup: Setup) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "JPY_", "JUPYTER_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", MPLBACKEND="Agg",
               PYTHONDONTWRITEBYTECODE="1", JUPYTER_RUNTIME_DIR=str(folder / "runtime"))
    if setup.sandboxed:
        env["JUPYTER_PATH"] = str(work / "jupyter")
    else:  # the kernel runs as the grader's user: at least give it the private folders
        flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("base_compiledir")]
        kernel = _kernel_environment(folder)
        kernel["PYTENSOR_FLAGS"] = ",".join([*flags, kernel["PYTENSOR_FLAGS"]])
        env.update(kernel, PYTHONPATH=str(setup.code))
        if setup.data_dir:
            env["COURSE_DATA_DIR"] = str(setup.data_dir)
    return env


def _sandbox_config(work: Path, folder: Path, setup: Setup) -> Path:
    """Point nbgrader's executor at the sandboxed kernel (Unix sockets in the kernel's
    folder, through a short link); returns the link, for removal."""
    link = sandbox.socket_link(folder)
    sandbox.kernel_spec(work / "jupyter", folder=folder, code=setup.code, data=setup.data_dir,
                        env=_kernel_environment(folder), link=link)
    with open(work / "nbgrader_config.py", "a") as fh:
        fh.write("\n# Added by the grader for this submission: the kernel runs sandboxed.\n"
                 f"c.Execute.kernel_name = {sandbox.KERNEL_NAME!r}\n"
                 "c.KernelManager.transport = 'ipc'\n"
                 f"c.KernelManager.ip = {str(link / 'kernel')!r}\n"
                 f"c.KernelManager.connection_file = {str(folder / 'runtime' / 'kernel.json')!r}\n")
    return link


def _read_json(path: Path):
    """A JSON file the kernel wrote into its payload, or None: read through
    :mod:`autograder.intake` (no link followed from the sandbox's folder down)."""
    try:
        return intake.read_json(path, MAX_SPEC_BYTES, within=path.parent.parent)
    except (intake.Refused, OSError):
        return None


def refit_budget(limits: Limits) -> float:
    """A submission's time for the trusted fits it asks for, in all (seconds): one fit's
    limit (:attr:`Limits.fit_seconds`, per seed) for each graded model it can ask for."""
    return len(MODEL_ITEMS) * limits.fit_seconds


def _trusted_fits(payload: Path, setup: Setup, outcome: Outcome, notebooks: list[Path]) -> tuple[dict, str]:
    """Refit (or reuse) each model specification in the payload; returns the records the
    checks read and the grader's own error, if any.

    Verify, then fit: only a model whose test cell recorded it, with files unchanged
    since (:func:`autograder.payload.verify`), is refitted; a specification written by
    any other cell, or after its test cell ran, costs the grader nothing. So a submission
    asks for at most one fit per graded model, and those fits share its time for refits
    (:func:`refit_budget`): each is made or waited for within what is left of it, and a
    model asked for after it is spent is not refitted (the student's, with the reason)."""
    from .payload import verify

    genuine = verify(notebooks, payload, {item: ITEMS[item] for item in MODEL_ITEMS})
    records = {}
    budget, started = refit_budget(setup.limits), time.monotonic()
    for item in MODEL_ITEMS:
        if not genuine[item].ok:
            records[item] = {"posterior": None, "problem": genuine[item].reason}
            continue
        spec, data = _read_json(payload / f"{item}.spec.json"), _read_json(payload / f"{item}.data.json")
        if spec is None:
            error = _read_json(payload / f"{item}.spec-error.json") or {}
            records[item] = {"posterior": None, "problem": error.get("error") or
                             "no model specification was recorded with it: fit it with fit_bambi, fit or Model.fit "
                             "and keep the names the exercise gives"}
            continue
        left = budget - (time.monotonic() - started)
        if left <= 0:
            records[item] = {"posterior": None, "problem": f"it was not refitted: refitting this submission's other "
                             f"models took all of its time for refits ({budget:.0f} s)"}
            continue
        fitted = (setup.fit or trusted.fit)(spec, data, setup.trusted_cache, code=setup.code,
                                            sandboxed=setup.sandboxed, memory_bytes=setup.limits.memory_bytes,
                                            seconds=setup.limits.fit_seconds, stop=setup.stop, wait=left)
        if fitted.grader_error:
            return records, f"the trusted fit of {item} failed: {fitted.grader_error}"
        described = spec if isinstance(spec, dict) else {}
        converged = fitted.diagnostics[-1] if fitted.diagnostics else {}
        outcome.fits.append({"item": item, "key": fitted.key, "seconds": round(fitted.seconds, 1),
                             "reused": fitted.reused, "problem": fitted.problem, "attempts": len(fitted.diagnostics),
                             "max_rhat": converged.get("max_rhat"), "min_ess": converged.get("min_ess"),
                             "model": f"{str(described.get('formula'))[:200]} ({str(described.get('family'))[:40]})"})
        records[item] = {"posterior": fitted.posterior, "problem": fitted.problem,
                         "family": spec.get("family") if isinstance(spec, dict) else None}
    return records, ""


def _retry(outcome: Outcome, detail: str) -> Outcome:
    outcome.status = "retry"
    outcome.reason = "the grader could not finish grading it (a failure of the grader, not of the submission)"
    outcome.detail = detail
    return outcome


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def grade_submission(course: Path, assignment: str, student: str, submission: Path, work: Path,
                     gradebook: Path, setup: Setup, keep_compile_cache: Path | None = None) -> Outcome:
    """Autograde one submission in ``work``, refit its models and run the checks; never raises.

    ``keep_compile_cache``: where to keep the kernel's compile cache after a successful
    run (the canary's only: what the course's own solution compiled)."""
    started = time.monotonic()
    limits = setup.limits
    outcome = Outcome(student, "retry", work=str(work), sandboxed=setup.sandboxed)
    link = None
    try:
        problems, copied = prepare(course, assignment, student, submission, work, gradebook)
        if problems:
            outcome.reason = "; ".join(problems)
        if not copied:
            outcome.status = "not-a-notebook"
            outcome.reason = outcome.reason or "no notebook of the assignment was submitted"
            return outcome
        folder = _sandbox_folder(work, work / "submitted" / student / assignment, setup.compile_cache)
        if setup.sandboxed:
            link = _sandbox_config(work, folder, setup)
        env = _nbgrader_environment(work, folder, setup)
        with open(work / "nbgrader_config.py", "a") as fh:
            fh.write("\n# Added by the grader: no output of the kernel's is dropped (autograder/kernel_client.py).\n"
                     + kernel_client.config_lines()
                     + "# Added by the grader: a kernel that stops is graded (autograder/executor.py).\n"
                     + executor.config_lines(work / KERNEL_STOPS))
        log = work / "autograde.log"
        # nbclient waits a fixed 4 s (iopub_timeout) for a cell's last outputs after its
        # reply, and nbgrader makes missing them fail the whole notebook: on a busy machine a
        # correct submission was then never graded. That wait is a limit like the others.
        # nbgrader runs from the grader's installed copy, which holds the kernel client.
        nbgrader = [sys.executable, "-I", "-c",
                    f"import sys; sys.path.insert(0, {str(setup.code)!r}); "
                    "from nbgrader.apps.nbgraderapp import main; main()",
                    "autograde", assignment, "--student", student, "--force",
                    f"--Execute.timeout={round(limits.cell_seconds)}",
                    f"--Execute.iopub_timeout={round(limits.iopub_seconds)}"]
        status, outcome.phases["notebooks"], peak = run_limited(
            nbgrader, cwd=work, env=env, log=log, seconds=limits.submission_seconds, memory=limits.memory_bytes,
            disk=(folder, limits.disk_bytes), stop=setup.stop)
        outcome.peak_memory_mb = peak / 2**20
        autograded = sorted((work / "autograded" / student / assignment).glob("*.ipynb"))
        outcome.errors = first_errors(autograded)
        outcome.slowest_cell = slowest_cell(autograded)
        limit_reasons = {
            "timeout": f"stopped after {limits.submission_seconds:.0f} s (the time limit for a submission)",
            "memory": (f"stopped when it used more than {limits.memory_bytes / 2**30:.1f} GB of memory "
                       "(the limit for a submission)"),
            "disk": f"stopped when its files grew past {limits.disk_bytes / 2**30:.1f} GB (the limit for a submission)",
        }
        if status in limit_reasons:
            outcome.status, outcome.reason = status, limit_reasons[status]
            return outcome
        if status == "stopped":
            return _retry(outcome, STOPPED)
        if status == "failed" or not autograded:
            return _retry(outcome, f"nbgrader autograde failed ({status}): {_log_tail(log)}")
        stopped = "; ".join(f"your kernel stopped in {Path(s['notebook']).stem}, cell {s['cell']} (it exited or "
                            "crashed), so the cells after it were not run and score 0"
                            for s in executor.stops(work / KERNEL_STOPS))
        if stopped:
            outcome.reason = "; ".join(r for r in (outcome.reason, stopped) if r)
        fitting = time.monotonic()
        records, error = _trusted_fits(folder / "payload", setup, outcome, autograded)
        outcome.phases["fits"] = time.monotonic() - fitting
        if error:
            return _retry(outcome, error)
        (work / "trusted.json").write_text(json.dumps(records))
        check_cmd = [sys.executable, "-I", "-c",
                     f"import sys; sys.path.insert(0, {str(setup.code)!r}); "
                     "from autograder.check_submission import main; sys.exit(main(sys.argv[1:]))",
                     str(work), assignment, student, str(setup.reference), str(folder / "payload"),
                     str(work / "trusted.json")]
        env_check = {"PATH": env["PATH"], "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
                     **({"COURSE_DATA_DIR": str(setup.data_dir)} if setup.data_dir else {}),
                     **{k: os.environ[k] for k in ("HOME", "LANG", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                   "COURSE_DOWNLOAD_DIR") if k in os.environ}}
        status, outcome.phases["checks"], _ = run_limited(check_cmd, cwd=work, env=env_check,
                                                          log=work / "check.log", seconds=limits.check_seconds,
                                                          memory=limits.memory_bytes, stop=setup.stop)
        result_file = work / "checks.json"
        if status != "ok" or not result_file.exists():
            return _retry(outcome, f"the checks could not run ({status}): {_log_tail(work / 'check.log')}")
        outcome.checks = json.loads(result_file.read_text())
        outcome.status = "graded"
        if keep_compile_cache is not None and (folder / ".pytensor").is_dir():
            shutil.rmtree(keep_compile_cache, ignore_errors=True)
            shutil.copytree(folder / ".pytensor", keep_compile_cache, ignore=shutil.ignore_patterns("lock_dir"))
        return outcome
    except Exception as error:  # one failure of the grader must not stop the class
        return _retry(outcome, f"grading failed: {type(error).__name__}: {error}")
    finally:
        if link is not None:
            link.unlink(missing_ok=True)
        outcome.seconds = time.monotonic() - started
        for bulky in ("sandbox/fits", "sandbox/.pytensor", "sandbox/.cache", "source"):
            shutil.rmtree(work / bulky, ignore_errors=True)
