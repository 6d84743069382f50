"""End to end: release the Trolley assignment, grade a class of synthetic submissions.

The class: a correct submission written with Bambi's and ArviZ's own calls only
(``Model.fit``, ``az.compare``, ``model.predict``; the canary, the solution notebooks with
the course's ``fit`` and ``epred_draws``, is graded first by the preflight and must earn
full marks too), the most common mistake (no varying intercept; the feedback for the
others is tested on synthetic posteriors in test_autograder.py), three slips and an
endless loop in one submission, a crash, a memory bomb in a child process, a file that
is not a notebook, a submission that tampers with the grading, one
that attacks the grader from inside its kernel (rewriting the grader, the reference, the
gradebook and another student's files, reading the solutions, opening a connection,
planting modules, leaving a process behind), and one that fabricates its posteriors and
predictions from the public reference. The class is graded as ``make grade`` grades it,
on a local Dask cluster of two worker processes. Every grade and the key words of every
feedback message are asserted, and the gradebook exports (nbgrader's, Canvas's,
Moodle's) and the class report; then an interrupted run is restarted, and runs with a
broken set-up are refused before anyone is graded, and a failure of the grader is
retried. About 30 minutes on 2 cores.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

import submissions
from autograder.checks import CHECKS
from autograder.grade import grade_class
from autograder.limits import TIME_MULTIPLE, Limits
from autograder.reference import load_reference

from conftest import machine_seconds, needs_data

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, needs_data]

TOTAL = sum(CHECKS.values())
# The time limits are the grader's own, derived from the canary's times on this machine
# (autograder/limits.py), as `make grade` derives them; the memory limit is lower than its
# default, for the memory hog.
LIMITS = Limits(memory_bytes=4 * 2**30)


def _digests(paths) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def _strays():
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if submissions.HOSTILE_MARK in " ".join(p.info["cmdline"] or []):
                found.append(p.pid)
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = submissions.release_course(tmp_path_factory.mktemp("course"))
    release, source = course / "release" / "trolley", course / "source" / "trolley"

    def target(student):
        return course / "submitted" / student / "trolley"

    submissions.plain(release, source, target("correct_plain"), seed=1)
    for name, (answers, edit) in submissions.VARIANTS.items():
        submissions.write_submission(release, source, target(name), answers=answers, edit=edit)
    answers, edit = submissions.tampering(load_reference())
    submissions.write_submission(release, source, target("tampering"), answers=answers, edit=edit)
    submissions.not_a_notebook(target("not_a_notebook"))
    submissions.write_submission(release, source, target("fabricated"), answers=submissions.fabricated(load_reference()))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    connections = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                connections.append(listener.accept())
            except OSError:
                pass

    threading.Thread(target=listen, daemon=True).start()
    state = course / ".grading" / "trolley"
    targets = {
        "the grader": str(ROOT / "autograder" / "checks.py"),
        "the reference": str(ROOT / "autograder" / "reference" / "trolley.json"),
        "the installed grader": str(state / "grader" / "*" / "autograder" / "checks.py"),
        "the gradebook": str(course / "gradebook.db"),
        "the solutions": str(source / "1-varying-intercepts.ipynb"),
        "the checkout's solutions": str(ROOT / "exercises" / "source" / "trolley" / "2-predictions.ipynb"),
        "another student's notebook": str(target("correct_plain") / "1-varying-intercepts.ipynb"),
        "another student's state": str(state / "correct_plain.json"),
        "another student's payload": str(state / "work" / "correct_plain" / "sandbox" / "payload" / "m_simple.nc"),
        "the feedback": str(course / "feedback" / "correct_plain" / "trolley" / "1-varying-intercepts.html"),
        "the trusted fits": str(Path(os.environ["AUTOGRADER_CACHE"]) / "trusted" / "*.json"),
        "the environment": str(Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
                               / "site-packages" / "hostile.pth"),
    }
    answers, edit = submissions.hostile(targets, listener.getsockname()[1])
    submissions.write_submission(release, source, target("hostile"), answers=answers, edit=edit)
    protected = [ROOT / "autograder" / "checks.py", ROOT / "autograder" / "reference" / "trolley.json",
                 *(ROOT / "exercises" / "source" / "trolley").glob("*.ipynb"), *source.glob("*.ipynb"),
                 *target("correct_plain").glob("*.ipynb")]
    before = _digests(protected)
    started = time.monotonic()
    states = grade_class(course, "trolley", workers=2, limits=LIMITS)
    seconds = time.monotonic() - started
    time.sleep(1)
    stop.set()
    return {"course": course, "states": states, "seconds": seconds, "connections": connections,
            "changed": {p for p, d in _digests(protected).items() if before.get(p) != d}, "strays": _strays(),
            "targets": targets}


def _checks(states, student):
    return {c["check"]: c for c in states[student]["outcome"]["checks"]}


def test_correct_submissions_get_full_marks(graded):
    states = graded["states"]
    for student in ("correct_plain",):
        assert states[student]["outcome"]["status"] == "graded"
        assert states[student]["score"] == TOTAL, _checks(states, student)


def test_time_limits_come_from_the_canary_and_leave_a_correct_submission_room(graded):
    """No fixed seconds: the limits are a stated multiple of the canary's times in this run
    on this machine, and a correct submission, graded beside another, stays well within
    them (a slower or busier machine grades more slowly, not differently)."""
    course, states = graded["course"], graded["states"]
    run = json.loads((course / ".grading" / "trolley" / "run" / "limits.json").read_text())
    limits, canary = run["limits"], run["canary"]
    assert canary is not None and "the canary's times" in run["how"]
    assert run["share"] == 2.0  # two workers on this machine's cores, where the canary ran alone
    assert limits["cell_seconds"] >= TIME_MULTIPLE * run["share"] * canary["slowest_cell"] - 1
    # (and room for a cell stopped at its limit: the endless-loop submission still runs its other cells)
    notebooks = TIME_MULTIPLE * run["share"] * canary["notebooks"]
    assert limits["submission_seconds"] >= notebooks + limits["cell_seconds"] - 1
    outcome = states["correct_plain"]["outcome"]
    assert 0 < outcome["slowest_cell"] <= 0.8 * limits["cell_seconds"], (outcome["slowest_cell"], limits)
    assert outcome["phases"]["notebooks"] <= 0.8 * limits["submission_seconds"], (outcome["phases"], limits)


def test_missing_varying_intercept(graded):
    states = graded["states"]
    checks = _checks(states, "no_varying_intercept")
    assert states["no_varying_intercept"]["score"] == 0  # (its m_simple is left out)
    assert "does it have a varying intercept per participant" in checks["ex1_m_varying_sd"]["message"]
    assert "no sd(id)" in checks["ex1_m_varying_sd"]["message"]


def test_slips_are_named_and_a_stopped_cell_costs_only_its_check(graded):
    states = graded["states"]
    student = "slips_and_endless_loop"
    checks = _checks(states, student)
    assert states[student]["score"] == TOTAL - CHECKS["ex1_loo"] - CHECKS["ex2_participants"] \
        - CHECKS["ex2_average"] - CHECKS["ex2_new"]
    assert "sign of your elpd_diff is flipped" in checks["ex1_loo"]["message"]
    assert "linear predictor on the logit scale" in checks["ex2_participants"]["message"]
    assert "equal the average participant's" in checks["ex2_new"]["message"]
    assert any("ran past the time limit for a cell" in e for e in states[student]["outcome"]["errors"])


def test_crash_is_reported_and_the_rest_runs(graded):
    states = graded["states"]
    outcome = states["crash"]["outcome"]
    assert states["crash"]["score"] == 0 and outcome["status"] == "graded"
    assert any("respnse" in e for e in outcome["errors"]), outcome["errors"]
    assert "m_simple_idata" in _checks(states, "crash")["ex1_m_simple"]["message"]
    assert any(e.startswith("2-predictions") for e in outcome["errors"])  # the second notebook ran too


def test_a_kernel_that_ends_itself_is_graded_as_far_as_it_ran(graded):
    states = graded["states"]
    outcome = states["kernel_exit"]["outcome"]
    checks = _checks(states, "kernel_exit")
    assert outcome["status"] == "graded"
    assert "your kernel stopped in 1-varying-intercepts, cell 6" in outcome["reason"]
    assert checks["ex1_m_simple"]["score"] == checks["ex1_m_simple"]["points"]  # ran before the stop
    assert states["kernel_exit"]["score"] == checks["ex1_m_simple"]["points"]  # nothing after it earned anything
    assert "did not run" in checks["ex1_m_varying_sd"]["message"]
    assert any("cell 6: KernelStopped" in e for e in outcome["errors"]), outcome["errors"]
    assert not any("NotRun" in e for e in outcome["errors"])  # the reason says it once
    assert any(e.startswith("2-predictions") for e in outcome["errors"])  # the second notebook ran in a new kernel


def test_memory_hog_is_stopped_with_a_reason(graded):
    states = graded["states"]
    outcome = states["memory_hog"]["outcome"]
    assert outcome["status"] == "memory"
    assert states["memory_hog"]["score"] == 0
    assert "GB of memory" in outcome["reason"]


def test_not_a_notebook(graded):
    states = graded["states"]
    outcome = states["not_a_notebook"]["outcome"]
    assert outcome["status"] == "not-a-notebook" and states["not_a_notebook"]["score"] == 0
    assert "not a readable Jupyter notebook" in outcome["reason"]


def test_tampering_earns_only_what_it_did(graded):
    states = graded["states"]
    checks = _checks(states, "tampering")
    # Its m_simple is right; its m_varying has no varying intercept; its LOO table is fake.
    assert states["tampering"]["score"] == CHECKS["ex1_m_simple"]
    assert "tampered" not in checks["ex1_m_simple"]["message"]
    assert "printed outside its test cell" in checks["ex1_loo"]["message"] \
        or "changed after its test cell ran" in checks["ex1_loo"]["message"]
    assert "no varying intercept" in checks["ex1_m_varying_coefficients"]["message"] \
        or "changed after its test cell ran" in checks["ex1_m_varying_coefficients"]["message"]


def test_hostile_submission_earns_nothing_and_changes_nothing(graded):
    states, course = graded["states"], graded["course"]
    assert states["hostile"]["score"] == 0 and states["hostile"]["outcome"]["status"] == "graded"
    assert graded["changed"] == set()  # the checkout's grader, reference and solutions; the course's; correct_plain's
    assert graded["connections"] == []  # no connection reached the grader's machine
    assert graded["strays"] == []  # the process it left behind died with its sandbox
    assert states["correct_plain"]["score"] == TOTAL  # graded beside it, its grade did not move
    outputs = " ".join(c.get("text", "") for path in (course / "autograded" / "hostile" / "trolley").glob("*.ipynb")
                       for c in _outputs(path))
    assert submissions.HOSTILE_MARK in outputs  # its attempts ran, and each one failed:
    assert "CONNECTED" not in outputs
    for name, path in graded["targets"].items():
        if not path.startswith(tempfile.gettempdir()):  # the checkout, the environment: read-only or absent
            assert f"could not write {name}" in outputs, name
        # (This test's course lies under /tmp, where the sandbox has a private, empty /tmp: a
        # write there creates a file nobody else sees. The real files are checked above.)
    for name in ("the gradebook", "the solutions", "the checkout's solutions", "another student's notebook",
                 "another student's state", "another student's payload", "the trusted fits", "the grader"):
        assert f"could not read {name}" in outputs, name
    assert not (course / ".grading" / "trolley" / "autograder").exists()  # planted modules stayed in its folder
    feedback = " ".join(p.read_text() for p in (course / "feedback" / "hostile" / "trolley").glob("*.html"))
    assert "BEGIN SOLUTION" not in feedback and '"m_varying", adaptation="low_rank", **SAMPLING)' not in feedback
    # What it planted in its own folder stayed there: the checks ran from the installed copy.
    assert len(states["hostile"]["outcome"]["checks"]) == len(CHECKS)


def test_fabricated_posteriors_and_predictions_earn_nothing(graded):
    states = graded["states"]
    checks = _checks(states, "fabricated")
    assert states["fabricated"]["score"] == 0, checks
    for check in ("ex1_m_simple", "ex1_m_varying_cutpoints", "ex1_m_varying_sd"):
        assert "do not come from the model you wrote" in checks[check]["message"], checks[check]["message"]
    for check in ("ex2_participants", "ex2_average", "ex2_new"):
        assert "cannot be credited" in checks[check]["message"], checks[check]["message"]
    # The models it wrote were the right ones: the grader refitted them and shared the fits.
    fits = {f["item"]: f for f in states["fabricated"]["outcome"]["fits"]}
    assert fits["m_varying"]["key"] == {f["item"]: f for f in states["correct_plain"]["outcome"]["fits"]}["m_varying"]["key"]


def test_trusted_fits_are_shared_and_reported(graded):
    states, course = graded["states"], graded["course"]
    fits = [f for st in states.values() for f in st["outcome"]["fits"]]
    keys = {f["key"] for f in fits}
    assert len(fits) > 2 * len(keys)  # most submissions reuse a fit
    assert all(f["reused"] for f in states["correct_plain"]["outcome"]["fits"])  # the canary fitted the right models
    with open(course / "grading-report.csv") as fh:
        report = {r["student"]: r for r in csv.DictReader(fh)}
    assert report["correct_plain"]["sandbox"] == "yes" and "m_varying reused" in report["correct_plain"]["fits"]


def test_feedback_shows_estimates_beside_the_reference(graded):
    course = graded["course"]
    page = (course / "feedback" / "correct_plain" / "trolley" / "1-varying-intercepts.html").read_text()
    assert page.count("data:image/png;base64,") >= 2  # m_simple and m_varying, as the grader refitted them
    assert "beside the reference" in page


def _outputs(path):
    import nbformat

    for cell in nbformat.read(path, as_version=4).cells:
        yield from cell.get("outputs", [])


def test_gradebook_exports_and_feedback(graded):
    course, states = graded["course"], graded["states"]
    with open(course / "grades.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["student_id"] for r in rows) == sorted(states)
    for row in rows:
        assert float(row["score"]) == pytest.approx(states[row["student_id"]]["score"])
        assert float(row["max_score"]) == TOTAL
    for student in states:
        folder = course / "feedback" / student / "trolley"
        pages = list(folder.glob("*.html"))
        assert pages, student
        text = " ".join(p.read_text() for p in pages)
        assert "export_fit" not in text and "BEGIN HIDDEN TESTS" not in text
        if student not in ("tampering", "hostile"):  # whose own code prints fake lines
            assert "autograder-payload" not in text
    feedback = (course / "feedback" / "slips_and_endless_loop" / "trolley" / "1-varying-intercepts.html").read_text()
    assert "sign of your elpd_diff is flipped" in feedback
    with open(course / "grading-report.csv") as fh:
        report = {r["student"]: r for r in csv.DictReader(fh)}
    assert report["memory_hog"]["status"] == "memory"
    assert "not graded in full (memory)" in report["memory_hog"]["look"]
    assert float(report["correct_plain"]["notebooks_seconds"]) > float(report["correct_plain"]["checks_seconds"]) > 0
    with open(course / "canvas-trolley.csv") as fh:
        canvas = list(csv.DictReader(fh))
    assert canvas[0]["Student"] == "Points Possible" and float(canvas[0]["trolley"]) == TOTAL
    assert {r["SIS Login ID"]: float(r["trolley"]) for r in canvas[1:]} == {s: st["score"] for s, st in states.items()}
    with open(course / "moodle-trolley.csv") as fh:
        moodle = {r["ID number"]: float(r["Assignment: trolley (Real)"]) for r in csv.DictReader(fh)}
    assert moodle == {s: st["score"] for s, st in states.items()}
    page = (course / "class-report.html").read_text()
    # Two students' messages with different numbers, one feedback category:
    assert "<td>2</td><td>ex2_new: # of # probabilities differ from the reference</td>" in page


def test_rerun_skips_graded_and_regrades_changed(graded):
    course, states = graded["course"], graded["states"]
    before = (course / ".grading" / "trolley" / "correct_plain.json").stat().st_mtime
    target = course / "submitted" / "not_a_notebook" / "trolley"
    (target / "1-varying-intercepts.ipynb").write_text("still not a notebook\n")
    again = grade_class(course, "trolley", workers=2, limits=LIMITS)
    assert (course / ".grading" / "trolley" / "correct_plain.json").stat().st_mtime == before
    assert again.keys() == states.keys()
    with open(course / "grades.csv") as fh:
        students = [r["student_id"] for r in csv.DictReader(fh)]
    assert sorted(students) == sorted(states)


def test_interrupted_run_resumes_without_losing_or_duplicating(tmp_path):
    course = submissions.release_course(tmp_path / "course")
    release = course / "release" / "trolley"
    for student in ("ann", "ben", "cat"):  # released notebooks, unanswered: quick to run
        shutil.copytree(release, course / "submitted" / student / "trolley")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "autograder", "grade", "trolley", "--course", str(course), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("[1/3]"):
            proc.send_signal(signal.SIGINT)
            break
    proc.wait(timeout=machine_seconds(120))
    done = sorted(p.stem for p in (course / ".grading" / "trolley").glob("*.json"))
    assert len(done) == 1
    first = (course / ".grading" / "trolley" / f"{done[0]}.json").stat().st_mtime
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    assert "3 submissions, 1 already graded, 0 refused, grading 2 on" in out
    assert (course / ".grading" / "trolley" / f"{done[0]}.json").stat().st_mtime == first
    with open(course / "grades.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["student_id"] for r in rows) == ["ann", "ben", "cat"]
    # The interrupted submission's nbgrader and kernel were killed, not left running.
    leftovers = []
    for p in psutil.process_iter(["cwd"]):
        try:
            if p.info["cwd"] and str(course) in p.info["cwd"]:
                leftovers.append(p.pid)
        except psutil.Error:
            pass
    assert not leftovers


def _one_submission(tmp_path):
    course = submissions.release_course(tmp_path / "course")
    shutil.copytree(course / "release" / "trolley", course / "submitted" / "ann" / "trolley")
    return course


def test_broken_setup_records_no_score(tmp_path, monkeypatch):
    """No data, or a reference that does not match them: the run stops before anyone is graded."""
    from autograder.preflight import PreflightError

    course = _one_submission(tmp_path)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("COURSE_DOWNLOAD_DIR", str(tmp_path / "no-download"))
    with pytest.raises(PreflightError, match="course data could not be loaded"):
        grade_class(course, "trolley", workers=1, limits=LIMITS)
    monkeypatch.undo()
    reference = json.loads((ROOT / "autograder" / "reference" / "trolley.json").read_text())
    reference["provenance"]["data"]["trolley.csv"] = "f" * 64
    (tmp_path / "other.json").write_text(json.dumps(reference))
    with pytest.raises(PreflightError, match="built from other data"):
        grade_class(course, "trolley", workers=1, limits=LIMITS, reference=tmp_path / "other.json")
    assert not list((course / ".grading" / "trolley").glob("*.json"))
    assert not (course / "grades.csv").exists() and not (course / "feedback").exists()


def test_a_failure_of_the_grader_is_retried_not_recorded(tmp_path, monkeypatch):
    """The checks could not run (the grader's fault): no score, no feedback; the next run grades it."""
    from autograder import runner

    course = _one_submission(tmp_path)
    real = runner.run_limited

    def checks_fail(cmd, **kwargs):
        if any("check_submission" in part for part in cmd):
            return "failed", 0.0, 0
        return real(cmd, **kwargs)

    monkeypatch.setattr(runner, "run_limited", checks_fail)
    # Workers as threads of this process, so that they see the patched function.
    states = grade_class(course, "trolley", workers=1, limits=LIMITS, processes=False)
    outcome = states["ann"]["outcome"]
    assert outcome["status"] == "retry" and "not of the submission" in outcome["reason"]
    assert "checks could not run" in outcome["detail"]
    with open(course / "grades.csv") as fh:
        assert [r for r in csv.DictReader(fh) if r["student_id"] == "ann"] == []
    assert not (course / "feedback" / "ann").exists()
    monkeypatch.setattr(runner, "run_limited", real)
    again = grade_class(course, "trolley", workers=1, limits=LIMITS)
    assert again["ann"]["outcome"]["status"] == "graded" and again["ann"]["score"] == 0
    with open(course / "grades.csv") as fh:
        assert [r["student_id"] for r in csv.DictReader(fh)] == ["ann"]
