"""Dask distributed as the grading engine: one task per submission, on any Dask cluster.

The instructor's process (:func:`autograder.grade.grade_class`) is a Dask client. By
default it starts a :class:`distributed.LocalCluster` sized to the machine (one worker
process per submission graded at once); given an address (``--scheduler
tcp://host:8786`` or the standard ``DASK_SCHEDULER_ADDRESS``) it sends the same tasks to
a cluster that is already running: ``dask scheduler`` and ``dask worker`` started by
hand, dask-jobqueue on Slurm or PBS, dask-kubernetes. Every worker needs this project
installed in the same environment (``make venv``), bubblewrap, and the course data
(``COURSE_DATA_DIR``, or a download); nothing else is shared.

What travels, and what stays:

- A :class:`Bundle`, sent to the cluster once, as a task of its own (Dask computes it
  again if the worker holding it dies): the assignment's source notebooks and nbgrader
  configuration, a snapshot of the gradebook, the reference, the limits the instructor
  set, the name of the run's stop event, and the digest of the grader's code and the
  library versions.
- The preflight, as one task (:func:`preflight_task`): the canary is graded on a worker,
  and what it took there comes back, with that machine's cores and speed, for the time
  limits of the run (:func:`autograder.limits.derive`).
- One task per submission (:func:`grade_task`), carrying the student's submitted
  notebooks as bytes and the run's limits. On its worker it runs
  :func:`autograder.runner.grade_submission` (the sandboxed kernel, the trusted fits,
  the isolated checks) in a folder of that worker's and returns a :class:`Graded`: the
  outcome, the autograded notebooks and nbgrader's automatic scores. The state of record
  (gradebook, ``.grading/``, feedback) is written by the instructor's process alone, and
  only from results that came back.
- Trusted fits (:func:`shared_fit`): each distinct model specification is fitted once
  for the whole cluster, as a Dask task published on the scheduler under the run's
  name and the specification's fingerprint (:func:`autograder.spec.key`), so every
  submission with that specification waits on that one task and reads its draws; the
  run unpublishes them when it ends. Each worker also keeps the fits it used in its own
  trusted cache, so a later class run on the same machines reuses them.
- Every worker checks, before it grades, that its grader code and library versions are
  the instructor's (else the submission is ``retry`` with the reason).

Security: a Dask scheduler runs whatever its clients send, so whoever can reach it can
run code on every worker and publish data under any name, and the workers hold the
solutions and every submission. The local cluster therefore speaks TLS with credentials
made for the run (a client without them is refused); a remote scheduler must be
``tls://`` (the certificates in Dask's configuration) unless the instructor says the
network is private (``--insecure-scheduler``). A worker's own folder (``$AUTOGRADER_WORKER_DIR``, else
``~/.cache/multilevel-adventures/grading``) must be closed to other users.

Failures: a worker that dies mid-run has its tasks rescheduled by Dask; a task that
kills workers repeatedly (Dask's ``KilledWorker``) or fails for any other reason of the
grader's is recorded as ``retry``, never as the student's grade. Ctrl-C sets the run's
stop :class:`distributed.Event`: running submissions kill their processes within
:data:`autograder.runner.STOP_POLL_SECONDS` and nothing more is recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from . import intake
from .limits import Limits
from .runner import Outcome, Setup
from .submitted import MAX_FILE_BYTES

__all__ = [
    "ENV_ADDRESS",
    "Bundle",
    "Graded",
    "InsecureScheduler",
    "Preflight",
    "check_address",
    "forget_run",
    "grade_task",
    "hold",
    "make_bundle",
    "open_client",
    "preflight_task",
    "shared_fit",
    "stop_run",
    "workers_per_host",
]

#: The environment variable Dask itself reads for a scheduler's address.
ENV_ADDRESS = "DASK_SCHEDULER_ADDRESS"


@dataclass(frozen=True)
class Bundle:
    """What every task of one class run needs, sent to the cluster once."""

    assignment: str
    course_files: dict  # relative path -> bytes: nbgrader_config.py and source/<assignment>/...
    gradebook: bytes  # a snapshot of the course's gradebook.db
    reference: bytes
    limits: Limits
    sandboxed: bool
    state_dir: str  # the instructor's .grading/<assignment>, used as is by workers on the same machine
    host: str  # the instructor's machine
    stop_event: str  # the distributed.Event set when the run is interrupted; also names the run
    code_digest: str  # the instructor's grader code (autograder.install.digest)
    versions: dict  # the instructor's library versions (course_utils.cache.library_versions)
    digest: str = ""


@dataclass
class Graded:
    """One submission's result, as it comes back from its worker."""

    outcome: Outcome
    notebooks: dict = field(default_factory=dict)  # autograded notebook name -> JSON text
    auto_scores: dict = field(default_factory=dict)  # (notebook, cell) -> nbgrader's automatic score
    draws: dict = field(default_factory=dict)  # payload file -> SHA-256 (the report's "identical draws")
    worker: str = ""  # the Dask worker's address


def make_bundle(course: Path, assignment: str, gradebook: Path, reference: Path, limits: Limits, sandboxed: bool,
                state_dir: Path) -> Bundle:
    files = {"nbgrader_config.py": (course / "nbgrader_config.py").read_bytes()}
    source = course / "source" / assignment
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        files[str(path.relative_to(course))] = path.read_bytes()
    from course_utils.cache import library_versions

    from . import install

    parts = dict(assignment=assignment, course_files=files, gradebook=gradebook.read_bytes(),
                 reference=Path(reference).read_bytes(), limits=limits, sandboxed=sandboxed,
                 state_dir=str(state_dir), host=socket.gethostname(), stop_event=f"grading-stop-{uuid.uuid4().hex}",
                 code_digest=install.digest(), versions=library_versions())
    h = hashlib.sha256()
    for name, data in sorted(files.items()):
        h.update(name.encode() + b"\0" + data)
    h.update(parts["gradebook"] + parts["reference"] + repr((limits, sandboxed, str(state_dir))).encode()
             + parts["code_digest"].encode())
    return Bundle(**parts, digest=h.hexdigest())


def hold(bundle: Bundle) -> Bundle:
    """The run's bundle, as a Dask task's result (recomputed if the worker holding it dies)."""
    return bundle


class InsecureScheduler(SystemExit):
    """An unencrypted scheduler address, refused (the message says what to do)."""


def check_address(address: str, insecure: bool = False) -> None:
    """Refuse a scheduler address that is not ``tls://`` unless ``insecure`` (the
    instructor says the network to it is private): whoever reaches a Dask scheduler runs
    code on its workers, which hold the solutions and every submission."""
    if not address.startswith("tls://") and not insecure:
        raise InsecureScheduler(
            f"the Dask scheduler at {address} is not reached over TLS: anyone who can reach it can run code on the "
            "grading workers, which hold the solutions and every submission. Start it with TLS (a tls:// address, "
            "with the certificates in Dask's configuration: distributed.comm.tls) or, on a network only you can "
            "reach, pass --insecure-scheduler")


@contextlib.contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None, processes: bool = True,
                log=print, insecure: bool = False) -> Iterator:
    """A Dask client: to ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``) when given, over
    TLS with the credentials in Dask's configuration (a ``tcp://`` address is refused
    unless ``insecure``: :func:`check_address`), else to a new LocalCluster of
    ``workers`` single-threaded workers (default: one per core), worker processes unless
    ``processes=False`` (threads of this process). The LocalCluster speaks TLS with
    credentials made for this run (Dask's ``security=True``): no other process on the
    machine, another user's included, can connect to it."""
    from distributed import Client, LocalCluster

    address = scheduler or os.environ.get(ENV_ADDRESS)
    if address:
        check_address(address, insecure)
        with Client(address, timeout="60s") as client:
            if not client.scheduler_info()["workers"]:
                log(f"waiting for the first worker of the Dask cluster at {address} ...")
                client.wait_for_workers(1)
            log(f"grading on the Dask cluster at {address} ({len(client.scheduler_info()['workers'])} workers now)")
            yield client
        return
    workers = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None,
                      memory_limit=0, security=True) as local, Client(local, security=local.security) as client:
        log(f"grading on a local Dask cluster of {workers} {'worker processes' if processes else 'threads'}")
        yield client


# --- On the workers --------------------------------------------------------------------

_SETUPS: dict[str, tuple[Path, Path, Setup]] = {}
KEEP_RUNS = 4
_SETUP_LOCK = threading.Lock()


def _root(bundle: Bundle) -> Path:
    """This worker's folder for the run: one under ``$AUTOGRADER_WORKER_DIR`` if that is
    set, else the instructor's state folder on the instructor's machine, else one under
    ``~/.cache/multilevel-adventures/grading``. The base folder must be this user's and
    closed to others (it holds the solutions, the grader and every submission)."""
    base = os.environ.get("AUTOGRADER_WORKER_DIR")
    if not base and socket.gethostname() == bundle.host:
        return Path(bundle.state_dir)
    folder = Path(base) if base else Path.home() / ".cache" / "multilevel-adventures" / "grading"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RuntimeError(f"the worker's grading folder {folder} must belong to this user and be closed to others "
                           f"(chmod 700 {folder})")
    return folder / bundle.digest[:16]


def _write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write atomically, unless the file already holds exactly ``data``."""
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_bytes(data)
    if mode is not None:
        tmp.chmod(mode)
    os.replace(tmp, path)


def _on_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return socket.gethostname()


def _stop_flag(name: str):
    from distributed import Event

    return Event(name).is_set


def worker_setup(bundle: Bundle) -> tuple[Path, Path, Setup]:
    """(course folder, gradebook snapshot, Setup) on this worker, made once per run and process.

    Raises RuntimeError when this machine cannot grade (no data, no copy of the grader)."""
    from course_utils.cache import library_versions

    from . import install
    from .grade import grader_cache
    from .preflight import PreflightError, check_data

    run = f"{bundle.digest}-{bundle.stop_event}"  # a Setup per run: each has its own stop event
    with _SETUP_LOCK:
        if run in _SETUPS:
            return _SETUPS[run]
        here = install.digest()
        if here != bundle.code_digest:
            raise RuntimeError(f"the Dask worker at {socket.gethostname()} has other grader code than yours "
                               f"({here[:12]} here, {bundle.code_digest[:12]} yours): install the same commit there")
        versions = library_versions()
        if versions != bundle.versions:
            differ = sorted(k for k in {**versions, **bundle.versions} if versions.get(k) != bundle.versions.get(k))
            raise RuntimeError(f"the Dask worker at {socket.gethostname()} has other library versions than yours "
                               f"({', '.join(f'{k} {versions.get(k)} vs {bundle.versions.get(k)}' for k in differ)}):"
                               " install requirements.lock there")
        root = _root(bundle)
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".setup.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # other worker processes on this machine
            course = root / "course"
            for name, data in bundle.course_files.items():
                _write(course / name, data)
            gradebook = root / "gradebook-snapshot" / f"{bundle.digest[:16]}.db"
            _write(gradebook, bundle.gradebook)
            code = install.install(root / "grader")
            reference = root / "reference" / f"{hashlib.sha256(bundle.reference).hexdigest()[:16]}.json"
            _write(reference, bundle.reference, 0o444)
        try:
            data_dir = check_data()
        except PreflightError as error:  # a SystemExit: not to be raised inside a worker
            raise RuntimeError(f"on the Dask worker at {socket.gethostname()}: {error.reason}") from None
        cache = grader_cache()
        on_dask = _on_dask_worker()
        setup = Setup(code=code, reference=reference, data_dir=data_dir, trusted_cache=cache / "trusted",
                      sandboxed=bundle.sandboxed, limits=bundle.limits, compile_cache=cache / "pytensor-warm",
                      stop=_stop_flag(bundle.stop_event) if on_dask else None,
                      fit=_shared_fit_for(bundle) if on_dask else None)
        while len(_SETUPS) >= KEEP_RUNS:  # a long-lived worker forgets older runs
            _SETUPS.pop(next(iter(_SETUPS)))
        _SETUPS[run] = (course, gradebook, setup)
        return _SETUPS[run]


def _draws_digests(payload: Path) -> dict[str, str]:
    """SHA-256 of each model's draws in the payload (the report's "identical draws"). The
    payload is the student's folder: only the expected names, read through
    :mod:`autograder.intake`; what it refuses is left out."""
    from .checks import MODEL_ITEMS

    found = {}
    for item in MODEL_ITEMS:
        path = payload / f"{item}.nc"
        try:
            found[path.name] = intake.sha256(path, MAX_FILE_BYTES, within=payload.parent)
        except (intake.Refused, OSError):
            continue
    return found


def grade_task(bundle: Bundle, student: str, files: dict, limits: Limits) -> Graded:
    """Grade one submission on this worker (a Dask task), within ``limits`` (every time
    limit set); never raises for the student's input."""
    from . import runner
    from .grade import auto_scores

    course, gradebook, setup = worker_setup(bundle)
    setup = replace(setup, limits=limits)
    root = _root(bundle)
    if setup.stop is not None and setup.stop():
        return Graded(runner.Outcome(student, "retry", reason=runner.STOPPED, detail=runner.STOPPED,
                                     sandboxed=bundle.sandboxed))
    submitted = root / "submitted" / student
    if submitted.exists():
        shutil.rmtree(submitted)
    submitted.mkdir(parents=True)
    problems = []
    for name, data in files.items():
        if isinstance(data, str):
            problems.append(data)
        else:
            (submitted / name).write_bytes(data)
    work = root / "work" / student
    outcome = runner.grade_submission(course, bundle.assignment, student, submitted, work, gradebook, setup)
    if problems:
        outcome.reason = "; ".join([*problems, *([outcome.reason] if outcome.reason else [])])
    graded = Graded(outcome, worker=_worker_name())
    if outcome.status == "graded":
        folder = work / "autograded" / student / bundle.assignment
        try:
            graded.notebooks = {p.name: p.read_text() for p in sorted(folder.glob("*.ipynb"))
                                if p.stat().st_size <= MAX_FILE_BYTES}
        except (OSError, UnicodeDecodeError):  # the grade stands; the feedback is nbgrader's or the grader's page
            graded.notebooks = {}
    if outcome.status != "retry":
        graded.auto_scores = auto_scores(work, bundle.assignment, student)
        graded.draws = _draws_digests(work / "sandbox" / "payload")
    return graded


@dataclass
class Preflight:
    """What the preflight task reports: the problem ('' if none), its log lines, what
    the canary took (None without it), and the worker's machine: cores and speed now."""

    problem: str
    lines: list
    canary: dict | None = None  # autograder.limits.CanaryTimes, as a dict
    cores: int = 1
    speed: float = 0.0


def preflight_task(bundle: Bundle, canary: bool) -> Preflight:
    """The preflight's checks that need a worker: its copy of the grader, its sandbox and
    the canary (graded within the limits set, or the reference machine's scaled to this
    one). Returns a :class:`Preflight`."""
    from .grade import grader_cache
    from .limits import derive, speed
    from .preflight import PreflightError, preflight

    lines: list[str] = []
    machine = speed()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        course, gradebook, setup = worker_setup(bundle)
        limits, _ = derive(bundle.limits, None, speed_now=machine, share_now=1.0)
        setup = replace(setup, limits=limits)
        root = _root(bundle)
        times = preflight(course, bundle.assignment, setup, gradebook, root, grader_cache(), canary=canary,
                          log=lines.append)
    except PreflightError as error:
        return Preflight(error.reason, lines, cores=cores, speed=machine)
    except RuntimeError as error:
        return Preflight(str(error), lines, cores=cores, speed=machine)
    return Preflight("", lines, asdict(times) if times is not None else None, cores=cores, speed=machine)


def workers_per_host(client) -> int:
    """The most Dask workers that share one machine (they grade submissions at once)."""
    hosts: dict[str, int] = {}
    for info in client.scheduler_info()["workers"].values():
        host = str(info.get("host", ""))
        hosts[host] = hosts.get(host, 0) + 1
    return max(hosts.values(), default=1)


# --- Trusted fits, once per cluster ------------------------------------------------------

def _shared_fit_for(bundle: Bundle):
    def fit(spec, data, cache, **kwargs):
        return shared_fit(bundle, spec, data, cache, **kwargs)

    return fit


def _fit_task(bundle: Bundle, spec, data, seconds: float) -> tuple[dict, bytes | None]:
    """The trusted fit of one specification, on whichever worker runs it (a Dask task),
    each seed within ``seconds``."""
    from . import trusted

    _, _, setup = worker_setup(bundle)
    fitted = trusted.fit(spec, data, setup.trusted_cache, code=setup.code, sandboxed=setup.sandboxed,
                         memory_bytes=setup.limits.memory_bytes, seconds=seconds, stop=setup.stop)
    blob = Path(fitted.posterior).read_bytes() if fitted.posterior else None
    return fitted.as_dict(), blob


_SECEDED = threading.local()


def _dataset_prefix(bundle: Bundle) -> str:
    return f"trusted-{bundle.stop_event.removeprefix('grading-stop-')}-"


def stop_run(client, bundle: Bundle) -> None:
    """Set the run's stop event and give running tasks the time to notice it and kill
    their processes (a LocalCluster's workers are closed next; their processes die with them)."""
    from distributed import Event

    from .runner import STOP_POLL_SECONDS

    with contextlib.suppress(Exception):
        Event(bundle.stop_event, client=client).set()
        time.sleep(STOP_POLL_SECONDS + 1)


def forget_run(client, bundle: Bundle) -> None:
    """Unpublish the run's trusted fits from the scheduler (the workers' caches keep them)."""
    with contextlib.suppress(Exception):
        for name in client.list_datasets():
            if str(name).startswith(_dataset_prefix(bundle)):
                with contextlib.suppress(KeyError):
                    client.unpublish_dataset(name)


def shared_fit(bundle: Bundle, spec, data, cache: Path, **kwargs):
    """:attr:`Setup.fit <autograder.runner.Setup.fit>` on a Dask worker: the trusted fit of
    ``spec``, from this worker's cache, else from the cluster: made once per run, by
    whichever worker runs the task, and published on the scheduler under
    ``trusted-<run>-<key>`` until the run ends, so that every request for the same key
    waits on that one task. The task fits within the per-seed limit, whoever asked first:
    the fit is the class's. A submission waits for it at most ``wait`` seconds (what is
    left of its time for refits); past that it gets the budget's problem, and the fit
    goes on for the others (and for this submission's next run, from the cache)."""
    from distributed import Lock, get_client, secede

    from . import trusted
    from .spec import key, validate

    if validate(spec, data):
        return trusted.fit(spec, data, cache, **kwargs)  # the student's problem, said by the usual path
    name = key(spec, data, trusted.settings())
    local = trusted.cached(name, cache)
    if local is not None:
        return local
    dataset = _dataset_prefix(bundle) + name
    client = get_client()
    # Give the worker's slot back while this waits, and do not take one again afterwards
    # (rejoin() could wait for a whole submission on another thread): the checks that
    # follow are a short process beside the worker's next task. Once per task: a
    # submission asks for several fits, and a seceded thread ends with its task.
    if not getattr(_SECEDED, "done", False):
        secede()
        _SECEDED.done = True
    mine = False
    # One lock per fit, held only to look up or publish it: two submissions asking at the
    # same moment would otherwise both submit the fit (and the scheduler would log the
    # second publication's refusal as an error).
    with Lock(dataset):
        try:
            future = client.get_dataset(dataset)
        except KeyError:
            future = client.submit(_fit_task, bundle, spec, data, kwargs["seconds"],
                                   key=f"{dataset}-{uuid.uuid4().hex[:8]}", pure=False, priority=100)
            client.publish_dataset(future, name=dataset)
            mine = True
    wait = kwargs.get("wait")
    try:
        record, blob = future.result(timeout=wait)
    except TimeoutError:  # the submission's time for refits ran out while it waited
        return trusted.TrustedFit(name, problem=trusted.out_of_budget(wait or 0), seconds=wait or 0)
    except Exception as error:  # the fitting worker died repeatedly, or the task failed: the grader's
        record, blob = {"key": name, "grader_error": f"the shared trusted fit failed: {error}"}, None
    if record.get("key") != name and not record.get("grader_error"):
        record, blob = {"key": name, "grader_error": "the worker that made the shared fit computed another key "
                                                     f"({record.get('key')}): its settings differ"}, None
    if record.get("grader_error") and mine:
        with contextlib.suppress(KeyError):
            client.unpublish_dataset(dataset)  # not kept: the next request tries again
    fitted = trusted.TrustedFit(**{**record, "reused": not mine or record.get("reused", False)})
    if blob is not None:
        fitted.posterior = str(trusted.store(cache, record, blob))
    return fitted
