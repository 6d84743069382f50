"""Grade every submission of an assignment: one instructor command, ``make grade``.

For a course directory laid out as nbgrader expects (``exercises/``: ``source/``,
``submitted/<student>/<assignment>/``, ``gradebook.db``), :func:`grade_class`

1. runs the preflight (:mod:`autograder.preflight`: data and reference here; the
   grader's read-only copy, the sandbox and the canary on a worker); if it fails, no
   one is graded;
2. grades the submissions on Dask (:mod:`autograder.cluster`): a LocalCluster with one
   worker per core by default, or any Dask cluster by address. Each submission is a
   task: its notebooks run in a sandbox, its models are refitted by the grader (once
   per distinct model for the whole cluster) and its checks run outside, within time,
   memory and disk limits (:mod:`autograder.runner`);
3. records each result in the gradebook as soon as it comes back: nbgrader's own
   score for every test cell is kept as its automatic score, the check's score becomes
   the cell's score, and the check's message becomes the comment on the student's
   answer cell (with a forest plot of each model beside the reference in the feedback);
4. writes nbgrader's HTML feedback (``feedback/``), nbgrader's ``grades.csv``, the
   Canvas and Moodle import files (:mod:`autograder.lms`) and the class report
   (:mod:`autograder.class_report`: ``class-report.html`` and ``grading-report.csv``).

A submission that is not a notebook, raises, runs past a limit, or tampers with the
grading still gets a grade (the credit it earned) and a reason; the run goes on. So does
a folder that is not a submission (a link, a pipe, a copy of the source notebooks:
``refused``, see :mod:`autograder.submitted`); what a student left is read only through
:mod:`autograder.intake`. A submission whose grading failed for the grader's own reasons
(including a Dask worker that died with it more than Dask retries) is recorded as
``retry`` (no score, no feedback) and graded again by the next run, at most
:data:`MAX_RETRIES` runs in a row: then it is ``ungradable`` (0, with the reason). State is kept per student in
``.grading/<assignment>/``, on the instructor's machine, after the gradebook is updated
from a result that came back, so an interrupted run started again skips the students
already graded (unless their submission changed) and grades the rest; a student graded
twice is updated in place, never counted twice.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from . import intake, spreadsheet
from .checks import CHECKS, COMMENT_CELL
from .class_report import CSV_NAME, write_class_report
from .export import MARKER
from .feedback_plots import add_feedback_figures
from .limits import SUBMISSION_THREADS, CanaryTimes, Limits, derive, share
from .lms import write_lms_files
from .preflight import PreflightError
from .reference import REFERENCE_FILE
from .runner import STOPPED, Outcome
from .submitted import fingerprint as fingerprint_of
from .submitted import (
    notebooks_digest,
    refused_fingerprint,
    submission_files,
    submissions,
)

__all__ = ["COURSE_ID", "MAX_RETRIES", "auto_scores", "feedback_options", "grade_class", "grader_cache", "record",
           "student_view"]

COURSE_ID = "multilevel-adventures"  # as in exercises/nbgrader_config.py
#: Runs in a row that may end in ``retry`` for an unchanged submission: the last is recorded.
MAX_RETRIES = 3


def _db_url(course: Path) -> str:
    return f"sqlite:///{(course / 'gradebook.db').resolve()}"


def _snapshot(course: Path, target: Path) -> None:
    """A consistent copy of the gradebook (SQLite's backup, safe while it is written)."""
    target.unlink(missing_ok=True)
    with sqlite3.connect(course / "gradebook.db") as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _comments(outcome: Outcome) -> dict[str, str]:
    """The text for each answer cell: its checks' messages, and the submission's problem."""
    texts: dict[str, list[str]] = {}
    for check in outcome.checks:
        mark = "✓" if check["score"] == check["points"] else "✗"
        texts.setdefault(COMMENT_CELL[check["check"]], []).append(
            f"{mark} {check['check']} ({check['score']:g}/{check['points']:g}): {check['message']}")
    general = []
    if outcome.reason:
        general.append(f"This submission could not be graded in full: {outcome.reason}.")
    if outcome.errors:
        general.append("Errors raised while running your notebooks: " + "; ".join(outcome.errors) + ".")
    if general:
        first = next(iter(dict.fromkeys(COMMENT_CELL.values())))
        texts.setdefault(first, []).insert(0, " ".join(general))
    # nbgrader renders a comment as Markdown, which passes HTML through: the messages quote
    # the student's own text (exception messages, formulas), so it is shown, never run.
    return {cell: html.escape("\n\n".join(lines), quote=False) for cell, lines in texts.items()}


def auto_scores(work: Path, assignment: str, student: str) -> dict[tuple[str, str], float]:
    """nbgrader's own automatic scores from the private gradebook, by (notebook, cell)."""
    db = work / "gradebook.db"
    if not db.exists():
        return {}
    scores = {}
    with Gradebook(_db_url(work), course_id=COURSE_ID) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return {}
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                scores[(notebook.name, grade.name)] = grade.auto_score
    return scores


def record(course: Path, assignment: str, outcome: Outcome, notebooks: dict[str, str] | None = None,
           auto: dict[tuple[str, str], float] | None = None) -> float:
    """Write one outcome into the course gradebook and autograded folder; returns the score.

    ``notebooks``: the autograded notebooks (name -> JSON text) and ``auto``: nbgrader's
    automatic scores, as they came back from the worker (:class:`autograder.cluster.Graded`)."""
    student = outcome.student
    auto = auto or {}
    checks = {c["check"]: c for c in outcome.checks}
    comments = _comments(outcome)
    total = 0.0
    with Gradebook(_db_url(course), course_id=COURSE_ID) as gb, warnings.catch_warnings():
        # nbgrader's own add_submission trips SQLAlchemy's autoflush warnings; they are harmless.
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(student)
        try:
            gb.find_submission(assignment, student)
        except MissingEntry:
            gb.add_submission(assignment, student)
        for notebook in gb.find_assignment(assignment).notebooks:
            for cell in notebook.grade_cells:
                grade = gb.find_grade(cell.name, notebook.name, assignment, student)
                grade.auto_score = auto.get((notebook.name, cell.name)) or 0.0
                grade.manual_score = float(checks[cell.name]["score"]) if cell.name in checks else 0.0
                grade.needs_manual_grade = False
                total += grade.manual_score
            for cell in notebook.solution_cells:
                comment = gb.find_comment(cell.name, notebook.name, assignment, student)
                comment.manual_comment = comments.get(cell.name, "")
        gb.db.commit()
    target = course / "autograded" / student / assignment
    if target.exists():
        shutil.rmtree(target)
    if notebooks and outcome.status == "graded":
        target.mkdir(parents=True)
        for name, text in sorted(notebooks.items()):
            if Path(name).name != name or not name.endswith(".ipynb"):
                continue  # names come from the worker's folder listing; never a path
            nb = add_feedback_figures(student_view(nbformat.reads(text, as_version=4)), outcome.checks)
            nbformat.write(nb, target / name)
    return total


def student_view(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The autograded notebook as feedback shows it: in test cells, a failure shows its
    message but not the traceback (whose context lines would quote the hidden tests), and
    the lines that hand results to the grader are left out."""
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines = [line for line in output.get("text", "").splitlines(keepends=True)
                         if not line.startswith(MARKER)]
                if not lines:
                    continue
                output["text"] = "".join(lines)
            elif output.get("output_type") == "error":
                output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
            outputs.append(output)
        cell["outputs"] = outputs
    return nb


def _write_state(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(path)


def _own_feedback(course: Path, assignment: str, outcome: dict, score: float) -> None:
    """Feedback for a submission nbgrader could not render (nothing was autograded)."""
    folder = course / "feedback" / outcome["student"] / assignment
    folder.mkdir(parents=True, exist_ok=True)
    items = "".join(f"<li>{html.escape(e)}</li>" for e in outcome.get("errors", []))
    items += "".join(f"<li>{html.escape(c['check'])} ({c['score']:g}/{c['points']:g}): {html.escape(c['message'])}</li>"
                     for c in outcome.get("checks", []))
    (folder / "feedback.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{assignment}: feedback</title></head><body>"
        f"<h1>{html.escape(assignment)}: {score:g} / {sum(CHECKS.values()):g}</h1>"
        + (f"<p>Your submission could not be graded in full: {html.escape(outcome['reason'])}.</p>"
           if outcome.get("reason") else "") +
        f"{'<ul>' + items + '</ul>' if items else ''}</body></html>\n")


def _nbgrader(course: Path, *args: str, log: Path, env: dict[str, str] | None = None) -> int:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           **(env or {})}
    with open(log, "ab") as out:
        try:
            return subprocess.run([sys.executable, "-I", "-m", "nbgrader", *args], cwd=course, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=1800).returncode
        except subprocess.TimeoutExpired:
            return -1


def feedback_options() -> tuple[list[str], dict[str, str]]:
    """nbgrader's options and environment for feedback pages that show what students
    wrote as text, never run it: outputs sanitised by nbconvert
    (``HTMLExporter.sanitize_html``) and Markdown cells cleaned by the course's feedback
    template (``autograder/templates/course_feedback``: nbgrader's own, extended, with
    ``clean_html``; nbgrader's templates are put on ``JUPYTER_PATH`` so it can name them)."""
    import nbgrader

    ours = Path(__file__).resolve().parent / "templates"
    theirs = Path(nbgrader.__file__).resolve().parent / "server_extensions" / "formgrader" / "templates"
    paths = os.pathsep.join(p for p in (str(theirs), os.environ.get("JUPYTER_PATH", "")) if p)
    return (["--HTMLExporter.sanitize_html=True", "--HTMLExporter.template_name=course_feedback",
             f"--HTMLExporter.extra_template_basedirs={ours}", f"--HTMLExporter.extra_template_basedirs={theirs}"],
            {"JUPYTER_PATH": paths})


def _feedback(course: Path, assignment: str, states: dict[str, dict], state_dir: Path, log) -> list[str]:
    """nbgrader's feedback for every graded student; returns the students it failed for.

    All at once first; if that fails, student by student (retried once), so one notebook
    nbgrader cannot render costs only its own feedback, which then gets the grader's own page."""
    log_file = state_dir / "nbgrader.log"
    graded = sorted(s for s, st in states.items() if st["outcome"]["status"] == "graded")
    failed = []
    options, env = feedback_options()
    if graded and _nbgrader(course, "generate_feedback", assignment, "--force", *options, log=log_file,
                            env=env) != 0:
        for student in graded:
            if all(_nbgrader(course, "generate_feedback", assignment, "--force", "--student", student, *options,
                             log=log_file, env=env) != 0 for _ in range(2)):
                failed.append(student)
    for student, state in states.items():
        if state["outcome"]["status"] == "retry":
            continue  # no grade yet: it is graded again on the next run
        if state["outcome"]["status"] != "graded" or student in failed:
            _own_feedback(course, assignment, state["outcome"], state["score"])
    if failed:
        log(f"nbgrader could not write the feedback of {', '.join(failed)} (see {log_file}); they got the grader's "
            "own feedback page, and the next run tries nbgrader's again")
    return failed


def _export(course: Path, state_dir: Path, log) -> None:
    log_file = state_dir / "nbgrader.log"
    for _ in range(2):
        if _nbgrader(course, "export", "--to", str(course / "grades.csv"), log=log_file) == 0:
            spreadsheet.neutralise_file(course / "grades.csv")  # student ids that look like formulas
            return
    raise SystemExit(f"nbgrader could not export the grades to {course / 'grades.csv'} (see {log_file}); the "
                     "grades are recorded in the gradebook: run the grading again to retry the export")


def grader_cache() -> Path:
    """Where trusted fits and canary passes are kept: shared by every class on this machine."""
    return Path(os.environ.get("AUTOGRADER_CACHE") or Path.home() / ".cache" / "multilevel-adventures" / "grader")


def grade_class(course: str | os.PathLike, assignment: str, *, workers: int | None = None,
                limits: Limits | None = None, reference: str | os.PathLike = REFERENCE_FILE,
                regrade: bool = False, log=None, sandboxed: bool = True, canary: bool = True,
                scheduler: str | None = None, processes: bool = True, client=None,
                retry_ungradable: bool = False, insecure_scheduler: bool = False) -> dict[str, dict]:
    """Grade every submission of ``assignment`` in the course directory ``course``.

    The work runs on Dask (:mod:`autograder.cluster`): ``client`` if given, else the
    cluster at ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``; over TLS, or plain TCP if
    ``insecure_scheduler``), else a new LocalCluster (over TLS, with credentials made for the run)
    of ``workers`` workers (default: one per core; threads of this process if
    ``processes=False``). Runs the preflight first (:mod:`autograder.preflight`; it
    raises :class:`~autograder.preflight.PreflightError` and grades no one when the
    grader's own set-up is broken). The time limits of ``limits`` left unset are
    derived from what the canary took (:mod:`autograder.limits`). Returns student ->
    {"score", "outcome"} and leaves ``grades.csv``, the LMS files,
    ``grading-report.csv``, ``class-report.html`` and ``feedback/`` in ``course``.

    A submission that needed a ``retry`` in :data:`MAX_RETRIES` runs in a row, unchanged,
    is recorded the last time as ``ungradable`` (0 and the grader's reason), so no
    submission stays without a grade; ``retry_ungradable`` grades those again.
    """
    from . import cluster
    from .preflight import check_data, check_reference

    course = Path(course).resolve()
    if client is None and (scheduler or os.environ.get(cluster.ENV_ADDRESS)):
        cluster.check_address(scheduler or os.environ[cluster.ENV_ADDRESS], insecure_scheduler)
    log = log or (lambda message: print(message, flush=True))  # progress shows at once, also through a pipe
    limits = limits or Limits()
    with Gradebook(_db_url(course), course_id=COURSE_ID) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise SystemExit(f"{assignment} is not in {course / 'gradebook.db'}: release it first "
                             f"('make release', i.e. nbgrader generate_assignment {assignment})") from None
    state_dir = course / ".grading" / assignment
    state_dir.mkdir(parents=True, exist_ok=True)
    template = state_dir / "gradebook-template.db"
    _snapshot(course, template)
    check_data()  # here first: a missing data folder is the instructor's to fix, before any cluster starts
    check_reference(Path(reference))
    if not sandboxed:
        log("WARNING: grading WITHOUT the sandbox (--no-sandbox): students' code runs as your user and can reach "
            "your files; the report says so on every row")
    bundle = cluster.make_bundle(course, assignment, template, Path(reference), limits, sandboxed, state_dir)

    found, refused = submissions(course, assignment)
    states, todo = {}, {}
    for student in sorted({*found, *refused}):
        try:
            fingerprint = (fingerprint_of(found[student]) if student in found
                           else refused_fingerprint(course, student, assignment))
        except intake.Refused as error:  # too many files or folders to list: the student's
            refused[student] = str(error)
            fingerprint = refused_fingerprint(course, student, assignment)
        state_file = state_dir / f"{student}.json"
        retries = 0
        if state_file.exists() and not regrade:
            state = json.loads(state_file.read_text())
            status = state["outcome"]["status"]
            if state.get("fingerprint") == fingerprint:
                if status == "retry":
                    retries = state.get("retries", 0)
                elif not (status == "ungradable" and retry_ungradable):
                    states[student] = state
                    continue
        todo[student] = (found.get(student), fingerprint, retries)
    already = len(states)
    for student, reason in refused.items():  # graded here, at once: nothing of theirs is run or read
        if student in todo:
            _record_result(course, assignment, student, todo.pop(student)[1:], "",
                           cluster.Graded(Outcome(student, "refused", reason=reason, sandboxed=sandboxed)),
                           states, state_dir, len(found) + len(refused), log)

    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(cluster.open_client(scheduler, workers, processes=processes, log=log,
                                                             insecure=insecure_scheduler))
        # The bundle as a task of its own (not scattered data): a worker that dies with
        # its only copy loses nothing, Dask computes it again.
        shared = client.submit(cluster.hold, bundle, key=f"bundle-{bundle.stop_event}")
        try:
            checked = client.submit(cluster.preflight_task, shared, canary, pure=False).result()
            for line in checked.lines:
                log(line)
            if checked.problem:
                raise PreflightError(checked.problem)
            run_limits = _run_limits(client, limits, checked, state_dir, log)
            log(f"{assignment}: {len(found) + len(refused)} submissions, {already} already graded, "
                f"{len(states) - already} refused, grading {len(todo)} on "
                f"{len(client.scheduler_info()['workers'])} Dask workers")
            names = sorted(p.name for p in (course / "source" / assignment).glob("*.ipynb"))
            _grade_on(client, shared, bundle, run_limits, todo, names, states, len(found) + len(refused), course,
                      assignment, state_dir, log)
        except BaseException:
            # Ctrl-C: running submissions (and a running canary) kill their processes;
            # what was recorded stays recorded and nothing else is.
            cluster.stop_run(client, bundle)
            raise
        finally:
            cluster.forget_run(client, bundle)

    failed = _feedback(course, assignment, states, state_dir, log)
    for student in failed:
        states[student]["feedback_failed"] = True
    _export(course, state_dir, log)
    page = write_class_report(course, assignment, states)
    report = course / CSV_NAME
    lms = write_lms_files(course, assignment, states)
    retry = sorted(s for s, st in states.items() if st["outcome"]["status"] == "retry")
    log(f"graded {len(todo) - len([s for s in retry if s in todo])} in {time.monotonic() - started:.0f} s; grades in "
        f"{course / 'grades.csv'} (and for {', '.join(p.name for p in lms)}), details in {report}, the class report "
        f"in {page}, feedback in {course / 'feedback'}"
        + (f"; NOT graded because of the grader's own failures (run again to retry): {', '.join(retry)}"
           if retry else ""))
    return states


def _run_limits(client, limits: Limits, checked, state_dir: Path, log) -> Limits:
    """The run's limits: those the instructor set, the other time limits derived from
    what the canary took on a worker (:mod:`autograder.limits`); logged, and kept in
    ``run/limits.json`` in the assignment's state folder."""
    from . import cluster

    sharing = share(cluster.workers_per_host(client), checked.cores, SUBMISSION_THREADS)
    canary = CanaryTimes(**checked.canary) if checked.canary else None
    derived, how = derive(limits, canary, speed_now=checked.speed, share_now=sharing)
    log(how)
    (state_dir / "run").mkdir(exist_ok=True)
    _write_state(state_dir / "run" / "limits.json",
                 {"limits": asdict(derived), "how": how, "canary": checked.canary, "speed": checked.speed,
                  "cores": checked.cores, "share": sharing})
    return derived


def _record_result(course: Path, assignment: str, student: str, seen: tuple[str, int], notebooks: str, graded,
                   states: dict, state_dir: Path, total: int, log) -> None:
    """Record one student's result (gradebook, autograded notebooks, state) and log it.

    ``seen``: the submission's fingerprint and how many runs in a row it already needed
    a retry. Whatever goes wrong here is this student's row, never the class's: a
    failure to record is kept as ``retry`` with what failed, and the run goes on."""
    fingerprint, retries = seen
    outcome = graded.outcome
    outcome.work = ""  # a folder on the worker's machine, meaningless here
    if outcome.status == "retry" and outcome.detail != STOPPED:
        retries += 1
        if retries >= MAX_RETRIES:  # the same submission, every time: graded now, with the reason
            outcome.status = "ungradable"
            outcome.reason = (f"the grader could not grade this submission in {retries} runs, so it earned no "
                              "points; your instructor has the grader's reason and can grade it again")
    try:
        # retry: the grader's failure, no score, graded again next run
        score = 0.0 if outcome.status == "retry" else record(course, assignment, outcome, graded.notebooks,
                                                             graded.auto_scores)
    except Exception as error:  # noqa: BLE001 - whatever it is, it is this student's row alone
        outcome.status, score = "retry", 0.0
        outcome.reason = "the grader could not record its grade (a failure of the grader, not of the submission)"
        outcome.detail = f"recording failed: {type(error).__name__}: {error}"
    state = {"fingerprint": fingerprint, "score": score, "outcome": outcome.as_dict(), "notebooks": notebooks,
             "draws": graded.draws, "worker": graded.worker, "retries": retries if outcome.status == "retry" else 0}
    _write_state(state_dir / f"{student}.json", state)
    states[student] = state
    shown = "not graded, will be retried" if outcome.status == "retry" else f"{score:g}/{sum(CHECKS.values()):g}"
    log(f"[{len(states)}/{total}] {student}: {shown} ({outcome.status}, {outcome.seconds:.0f} s)"
        f"{': ' + outcome.reason if outcome.reason else ''}"
        f"{' [' + outcome.detail + ']' if outcome.detail else ''}")


def _grade_on(client, shared, bundle, limits: Limits, todo: dict, names: list[str], states: dict, total: int,
              course: Path, assignment: str, state_dir: Path, log) -> None:
    """Submit one task per submission and record each result as it comes back."""
    from distributed import as_completed

    from . import cluster

    pending = {}
    for student, (folder, *seen) in todo.items():
        try:
            files = submission_files(folder, names)
        except Exception as error:  # noqa: BLE001 - not the student's (intake refuses theirs): this row, retried
            _record_result(course, assignment, student, tuple(seen), "",
                           cluster.Graded(Outcome(student, "retry", sandboxed=bundle.sandboxed,
                                                  reason="the grader could not read the submitted folder (a failure "
                                                         "of the grader, not of the submission)",
                                                  detail=f"reading the submission: {type(error).__name__}: {error}")),
                           states, state_dir, total, log)
            continue
        future = client.submit(cluster.grade_task, shared, student, files, limits, pure=False)
        pending[future] = (student, tuple(seen), notebooks_digest(files))
    try:
        for future in as_completed(list(pending)):
            student, seen, notebooks = pending.pop(future)
            try:
                graded = future.result()
            except Exception as error:  # the grader's or the cluster's failure (e.g. KilledWorker): retried later
                graded = cluster.Graded(Outcome(student, "retry", sandboxed=bundle.sandboxed,
                                                reason="the grader could not finish grading it (a failure of the "
                                                       "grader, not of the submission)",
                                                detail=f"the Dask task failed: {type(error).__name__}: {error}"))
            _record_result(course, assignment, student, seen, notebooks, graded, states, state_dir, total, log)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(pending))  # queued submissions never start
        raise
