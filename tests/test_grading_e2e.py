"""End to end: release the Trolley assignment, grade a class of synthetic submissions.

The class: two correct submissions with different seeds, each common mistake, a crash,
an endless loop, a memory hog, a file that is not a notebook, and a submission that
tampers with the grading. Every grade and the key words of every feedback message are
asserted; then an interrupted run is restarted. About 15 minutes on 2 cores.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from autograder import testing
from autograder.checks import CHECKS
from autograder.grade import grade_class
from autograder.reference import load_reference
from autograder.runner import Limits

from conftest import needs_data

pytestmark = [pytest.mark.slow, needs_data]

TOTAL = sum(CHECKS.values())
LIMITS = Limits(submission_seconds=900, cell_seconds=180, memory_bytes=4 * 2**30)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = testing.release_course(tmp_path_factory.mktemp("course"))
    release, source = course / "release" / "trolley", course / "source" / "trolley"

    def target(student):
        return course / "submitted" / student / "trolley"

    testing.correct(release, source, target("correct_a"), seed=1)
    testing.correct(release, source, target("correct_b"), seed=2)
    for name, (answers, edit) in testing.VARIANTS.items():
        testing.write_submission(release, source, target(name), answers=answers, edit=edit)
    answers, edit = testing.tampering(load_reference())
    testing.write_submission(release, source, target("tampering"), answers=answers, edit=edit)
    testing.not_a_notebook(target("not_a_notebook"))
    started = time.monotonic()
    states = grade_class(course, "trolley", workers=2, limits=LIMITS)
    return course, states, time.monotonic() - started


def _checks(states, student):
    return {c["check"]: c for c in states[student]["outcome"]["checks"]}


def test_correct_submissions_get_full_marks(graded):
    _, states, _ = graded
    for student in ("correct_a", "correct_b"):
        assert states[student]["outcome"]["status"] == "graded"
        assert states[student]["score"] == TOTAL, _checks(states, student)


def test_correct_submission_is_graded_within_budget(graded):
    _, states, _ = graded
    # Two graded at once on two cores: each well under the 5-minute budget.
    assert max(states[s]["outcome"]["seconds"] for s in ("correct_a", "correct_b")) < 300


def test_missing_varying_intercept(graded):
    _, states, _ = graded
    checks = _checks(states, "no_varying_intercept")
    assert states["no_varying_intercept"]["score"] == CHECKS["ex1_m_simple"]
    assert "does it have a varying intercept per participant" in checks["ex1_m_varying_sd"]["message"]
    assert "no sd(id)" in checks["ex1_m_varying_sd"]["message"]


def test_gaussian_family(graded):
    _, states, _ = graded
    checks = _checks(states, "gaussian_family")
    assert states["gaussian_family"]["score"] == CHECKS["ex1_m_simple"]
    assert "gaussian family" in checks["ex1_m_varying_cutpoints"]["message"]
    assert 'family="cumulative"' in checks["ex1_m_varying_cutpoints"]["message"]
    assert "as a gaussian model predicts" in checks["ex2_average"]["message"]


def test_wrong_predictors(graded):
    _, states, _ = graded
    checks = _checks(states, "wrong_predictors")
    assert states["wrong_predictors"]["score"] == CHECKS["ex1_m_simple"]
    assert "has no coefficient for contact" in checks["ex1_m_varying_coefficients"]["message"]


def test_sign_flip_linear_scale_and_new_as_average(graded):
    _, states, _ = graded
    checks = _checks(states, "sign_scale_and_average")
    assert states["sign_scale_and_average"]["score"] == TOTAL - CHECKS["ex1_loo"] - CHECKS["ex2_participants"] \
        - CHECKS["ex2_new"]
    assert "sign of your elpd_diff is flipped" in checks["ex1_loo"]["message"]
    assert "linear predictor on the logit scale" in checks["ex2_participants"]["message"]
    assert "equal the average participant's" in checks["ex2_new"]["message"]


def test_crash_costs_only_what_it_breaks(graded):
    _, states, _ = graded
    outcome = states["crash"]["outcome"]
    assert states["crash"]["score"] == TOTAL - CHECKS["ex1_m_simple"] - CHECKS["ex1_loo"]
    assert any("respnse" in e or "PatsyError" in e or "Error" in e for e in outcome["errors"])
    assert "m_simple_idata" in _checks(states, "crash")["ex1_m_simple"]["message"]


def test_endless_loop_is_stopped_and_the_rest_graded(graded):
    _, states, _ = graded
    outcome = states["endless_loop"]["outcome"]
    assert states["endless_loop"]["score"] == TOTAL - CHECKS["ex2_participants"]
    assert any("ran past the time limit for a cell" in e for e in outcome["errors"]), outcome["errors"]


def test_memory_hog_is_stopped_with_a_reason(graded):
    _, states, _ = graded
    outcome = states["memory_hog"]["outcome"]
    assert outcome["status"] == "memory"
    assert states["memory_hog"]["score"] == 0
    assert "GB of memory" in outcome["reason"]


def test_not_a_notebook(graded):
    _, states, _ = graded
    outcome = states["not_a_notebook"]["outcome"]
    assert outcome["status"] == "not-a-notebook" and states["not_a_notebook"]["score"] == 0
    assert "not a readable Jupyter notebook" in outcome["reason"]


def test_tampering_earns_only_what_it_did(graded):
    _, states, _ = graded
    checks = _checks(states, "tampering")
    # Its m_simple is right; its m_varying has no varying intercept; its LOO table is fake.
    assert states["tampering"]["score"] == CHECKS["ex1_m_simple"]
    assert "tampered" not in checks["ex1_m_simple"]["message"]
    assert "printed outside its test cell" in checks["ex1_loo"]["message"] \
        or "changed after its test cell ran" in checks["ex1_loo"]["message"]
    assert "no varying intercept" in checks["ex1_m_varying_coefficients"]["message"] \
        or "changed after its test cell ran" in checks["ex1_m_varying_coefficients"]["message"]


def test_gradebook_exports_and_feedback(graded):
    course, states, _ = graded
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
        if student != "tampering":  # whose own code prints a fake result line
            assert "autograder-payload" not in text
    feedback = (course / "feedback" / "sign_scale_and_average" / "trolley" / "1-varying-intercepts.html").read_text()
    assert "sign of your elpd_diff is flipped" in feedback
    with open(course / "grading-report.csv") as fh:
        report = {r["student"]: r for r in csv.DictReader(fh)}
    assert report["memory_hog"]["status"] == "memory"


def test_rerun_skips_graded_and_regrades_changed(graded):
    course, states, _ = graded
    before = (course / ".grading" / "trolley" / "correct_a.json").stat().st_mtime
    target = course / "submitted" / "not_a_notebook" / "trolley"
    (target / "1-varying-intercepts.ipynb").write_text("still not a notebook\n")
    again = grade_class(course, "trolley", workers=2, limits=LIMITS)
    assert (course / ".grading" / "trolley" / "correct_a.json").stat().st_mtime == before
    assert again.keys() == states.keys()
    with open(course / "grades.csv") as fh:
        students = [r["student_id"] for r in csv.DictReader(fh)]
    assert sorted(students) == sorted(states)


def test_interrupted_run_resumes_without_losing_or_duplicating(tmp_path):
    course = testing.release_course(tmp_path / "course")
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
    proc.wait(timeout=120)
    done = sorted(p.stem for p in (course / ".grading" / "trolley").glob("*.json"))
    assert len(done) == 1
    first = (course / ".grading" / "trolley" / f"{done[0]}.json").stat().st_mtime
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    assert "1 already graded, grading 2" in out
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
