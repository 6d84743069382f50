"""Grade every submission of an assignment: one instructor command, ``make grade``.

For a course directory laid out as nbgrader expects (``exercises/``: ``source/``,
``submitted/<student>/<assignment>/``, ``gradebook.db``), :func:`grade_class`

1. autogrades the submissions in parallel, as many at a time as there are cores, each in
   a private folder with time and memory limits (:mod:`autograder.runner`);
2. records each result in the gradebook as soon as it arrives: nbgrader's own score
   for every test cell is kept as its automatic score, the check's score (computed
   outside the student's kernel, :mod:`autograder.checks`) becomes the cell's score, and
   the check's message becomes the comment on the student's answer cell;
3. writes nbgrader's HTML feedback (``feedback/``), nbgrader's ``grades.csv`` and a
   ``grading-report.csv`` with every check's score, the status and the reason.

A submission that is not a notebook, raises, runs past its time or memory limit, or
tampers with the grading still gets a grade (the credit it earned) and a reason; the run
goes on. State is kept per student in ``.grading/<assignment>/`` after the gradebook is
updated, so an interrupted run started again skips the students already graded (unless
their submission changed) and grades the rest; a student graded twice is updated in
place, never counted twice.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from . import runner
from .checks import CHECKS, COMMENT_CELL
from .export import MARKER
from .reference import REFERENCE_FILE
from .runner import Limits, Outcome

__all__ = ["COURSE_ID", "grade_class", "record", "student_view", "submissions"]

COURSE_ID = "multilevel-adventures"  # as in exercises/nbgrader_config.py


def _db_url(course: Path) -> str:
    return f"sqlite:///{(course / 'gradebook.db').resolve()}"


def submissions(course: Path, assignment: str) -> dict[str, Path]:
    """student -> folder of their submitted notebooks."""
    root = course / "submitted"
    found = {}
    for folder in sorted(root.glob(f"*/{assignment}")) if root.is_dir() else []:
        if folder.is_dir():
            found[folder.parent.name] = folder
    return found


def _fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(file.relative_to(folder)).encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


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
    if outcome.status != "graded":
        general.append(f"This submission could not be graded in full: {outcome.reason}.")
    if outcome.errors:
        general.append("Errors raised while running your notebooks: " + "; ".join(outcome.errors) + ".")
    if general:
        first = next(iter(dict.fromkeys(COMMENT_CELL.values())))
        texts.setdefault(first, []).insert(0, " ".join(general))
    return {cell: "\n\n".join(lines) for cell, lines in texts.items()}


def _auto_scores(work: Path, assignment: str, student: str) -> dict[tuple[str, str], float]:
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


def record(course: Path, assignment: str, outcome: Outcome) -> float:
    """Write one outcome into the course gradebook and autograded folder; returns the score."""
    student = outcome.student
    work = Path(outcome.work) if outcome.work else None
    auto = _auto_scores(work, assignment, student) if work else {}
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
    source = work / "autograded" / student / assignment if work else None
    if source is not None and source.is_dir() and outcome.status == "graded":
        target.mkdir(parents=True)
        for path in sorted(source.glob("*.ipynb")):
            nbformat.write(student_view(nbformat.read(path, as_version=4)), target / path.name)
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


def _write_state(state: Path, outcome: Outcome, fingerprint: str, score: float) -> None:
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "score": score, "outcome": outcome.as_dict()}, indent=1))
    tmp.replace(state)


def _own_feedback(course: Path, assignment: str, outcome: dict, score: float) -> None:
    """Feedback for a submission nbgrader could not render (nothing was autograded)."""
    folder = course / "feedback" / outcome["student"] / assignment
    folder.mkdir(parents=True, exist_ok=True)
    items = "".join(f"<li>{html.escape(e)}</li>" for e in outcome.get("errors", []))
    (folder / "feedback.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{assignment}: feedback</title></head><body>"
        f"<h1>{html.escape(assignment)}: {score:g} / {sum(CHECKS.values()):g}</h1>"
        f"<p>Your submission could not be graded in full: {html.escape(outcome['reason'])}.</p>"
        f"{'<ul>' + items + '</ul>' if items else ''}</body></html>\n")


def _report(course: Path, assignment: str, states: dict[str, dict]) -> Path:
    path = course / "grading-report.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "score", "max_score", "status", "seconds", "reason", *CHECKS])
        for student, state in sorted(states.items()):
            outcome = state["outcome"]
            scores = {c["check"]: c["score"] for c in outcome["checks"]}
            writer.writerow([student, f"{state['score']:g}", f"{sum(CHECKS.values()):g}", outcome["status"],
                             f"{outcome['seconds']:.0f}", outcome["reason"], *[f"{scores.get(c, 0):g}" for c in CHECKS]])
    return path


def _nbgrader(course: Path, *args: str, log: Path) -> int:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(log, "ab") as out:
        return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=1800).returncode


def grade_class(course: str | os.PathLike, assignment: str, *, workers: int | None = None,
                limits: Limits | None = None, reference: str | os.PathLike = REFERENCE_FILE,
                regrade: bool = False, work_root: str | os.PathLike | None = None, log=None) -> dict[str, dict]:
    """Grade every submission of ``assignment`` in the course directory ``course``.

    Returns student -> {"score", "outcome"} and leaves ``grades.csv``,
    ``grading-report.csv`` and ``feedback/`` in ``course``.
    """
    course = Path(course).resolve()
    log = log or (lambda message: print(message, flush=True))  # progress shows at once, also through a pipe
    limits = limits or Limits()
    workers = workers or os.cpu_count() or 1
    with Gradebook(_db_url(course), course_id=COURSE_ID) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise SystemExit(f"{assignment} is not in {course / 'gradebook.db'}: release it first "
                             f"('make release', i.e. nbgrader generate_assignment {assignment})") from None
    state_dir = course / ".grading" / assignment
    state_dir.mkdir(parents=True, exist_ok=True)
    work_root = Path(work_root) if work_root else state_dir / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    template = state_dir / "gradebook-template.db"
    _snapshot(course, template)

    found = submissions(course, assignment)
    states, todo = {}, {}
    for student, folder in found.items():
        fingerprint = _fingerprint(folder)
        state_file = state_dir / f"{student}.json"
        if state_file.exists() and not regrade:
            state = json.loads(state_file.read_text())
            if state.get("fingerprint") == fingerprint:
                states[student] = state
                continue
        todo[student] = (folder, fingerprint)
    log(f"{assignment}: {len(found)} submissions, {len(states)} already graded, "
        f"grading {len(todo)} with {workers} at a time")

    started = time.monotonic()
    stop = threading.Event()
    runner.STOP = stop
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(runner.grade_submission, course, assignment, student, folder, work_root / student,
                               template, Path(reference), limits): (student, fingerprint)
                   for student, (folder, fingerprint) in todo.items()}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    student, fingerprint = pending.pop(future)
                    outcome = future.result()
                    score = record(course, assignment, outcome)
                    _write_state(state_dir / f"{student}.json", outcome, fingerprint, score)
                    states[student] = {"fingerprint": fingerprint, "score": score, "outcome": outcome.as_dict()}
                    log(f"[{len(states)}/{len(found)}] {student}: {score:g}/{sum(CHECKS.values()):g} "
                        f"({outcome.status}, {outcome.seconds:.0f} s){': ' + outcome.reason if outcome.reason else ''}")
        except BaseException:
            stop.set()  # kill running submissions; what was recorded stays recorded
            for future in pending:
                future.cancel()
            raise

    log_file = state_dir / "nbgrader.log"
    graded = [s for s, st in states.items() if st["outcome"]["status"] == "graded"]
    if graded:
        _nbgrader(course, "generate_feedback", assignment, "--force", log=log_file)
    for student, state in states.items():
        if state["outcome"]["status"] != "graded":
            _own_feedback(course, assignment, state["outcome"], state["score"])
    _nbgrader(course, "export", "--to", str(course / "grades.csv"), log=log_file)
    report = _report(course, assignment, states)
    log(f"graded {len(todo)} in {time.monotonic() - started:.0f} s; grades in {course / 'grades.csv'}, "
        f"details in {report}, feedback in {course / 'feedback'}")
    return states
