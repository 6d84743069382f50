"""The class report and the Canvas/Moodle files, on synthetic grading states."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

from autograder.checks import CHECKS
from autograder.class_report import category, to_look_at, write_class_report
from autograder.lms import write_lms_files

TOTAL = sum(CHECKS.values())


def _state(score_by_check: dict | None = None, *, status="graded", fits=(), notebooks="n", draws=None,
           messages: dict | None = None, seconds=100.0):
    checks = [] if status in ("retry", "not-a-notebook") else [
        {"check": c, "points": p, "score": (score_by_check or {}).get(c, p),
         "message": (messages or {}).get(c, "agrees with the reference")} for c, p in CHECKS.items()]
    return {"score": sum(c["score"] for c in checks), "notebooks": notebooks, "draws": draws or {},
            "worker": "tcp://127.0.0.1:1",
            "outcome": {"student": "", "status": status, "reason": "", "detail": "", "seconds": seconds,
                        "peak_memory_mb": 900.0, "checks": checks, "errors": [], "sandboxed": True,
                        "phases": {"notebooks": seconds * 0.7, "fits": seconds * 0.1, "checks": seconds * 0.2},
                        "fits": [{"item": item, "key": key, "seconds": 60.0, "reused": reused, "problem": "",
                                  "model": model} for item, key, reused, model in fits]}}


RIGHT = ("m_simple", "k1", True, "response ~ action (cumulative)")
FLIP = "The sign of your elpd_diff is flipped: your table says m_simple minus m_varying is 2876.3, but no. More."


@pytest.fixture
def states():
    return {
        "ann": _state(fits=[RIGHT], notebooks="a", draws={"m_simple.nc": "d1"}),
        "ben": _state({"ex1_loo": 0}, fits=[RIGHT], notebooks="b", draws={"m_simple.nc": "d1"},
                      messages={"ex1_loo": FLIP}),
        "cat": _state({"ex1_loo": 0}, fits=[RIGHT, ("m_varying", "k9", False, "response ~ 1 (gaussian)")],
                      notebooks="a", messages={"ex1_loo": FLIP.replace("2876.3", "2801.0")}),
        "dan": _state(status="retry", notebooks="d"),
        "eve": _state(status="not-a-notebook", notebooks="e", seconds=0.0),
    }


def test_category_blanks_numbers_and_keeps_the_first_sentence():
    assert category("ex1_loo", FLIP) == category("ex1_loo", FLIP.replace("2876.3", "-12"))
    assert category("ex1_loo", FLIP).startswith("ex1_loo: The sign of your elpd_diff is flipped")
    assert "More" not in category("ex1_loo", FLIP) and "2876" not in category("ex1_loo", FLIP)


def test_worth_a_look(states):
    look = to_look_at(states)
    assert "identical notebooks to cat" in look["ann"] and "identical notebooks to ann" in look["cat"]
    assert "identical draws (m_simple.nc) to ben" in look["ann"]
    assert look["cat"][-1] == "a model nobody else wrote for m_varying: response ~ 1 (gaussian)"
    assert look["dan"] == ["not graded in full (retry)"] and look["eve"] == ["not graded in full (not-a-notebook)"]
    assert not any("m_simple" in r and "nobody" in r for r in look["ann"])  # three wrote it


def test_class_report_page_and_csv(tmp_path, states):
    page = write_class_report(tmp_path, "trolley", states).read_text()
    assert page.count("data:image/png;base64,") == 4  # scores, pass rates, models, time and memory
    assert "5 submissions: 3 graded, 1 retry, 1 not-a-notebook" in page
    assert "<td>2</td><td>ex1_loo: The sign of your elpd_diff is flipped" in page  # ben and cat, one category
    assert "response ~ 1 (gaussian)" in page
    with open(tmp_path / "grading-report.csv") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert rows["dan"]["score"] == "" and rows["ben"]["score"] == f"{TOTAL - CHECKS['ex1_loo']:g}"
    assert rows["ann"]["notebooks_seconds"] == "70" and rows["ann"]["worker"] == "tcp://127.0.0.1:1"
    assert rows["ben"]["ex1_loo"] == "0" and "identical draws" in rows["ben"]["look"]


def test_an_empty_class_gets_a_page(tmp_path):
    page = write_class_report(tmp_path, "trolley", {}).read_text()
    assert "No submission has been graded yet" in page


def test_no_notebook_read_is_not_identical_to_another(states):
    states["eve"]["notebooks"] = ""
    states["fay"] = {**states["eve"]}
    assert not any("identical notebooks" in r for r in to_look_at(states).get("eve", []))


def test_student_input_is_escaped_in_the_page(tmp_path):
    evil = _state(fits=[("m_simple", "k1", False, "<script>alert(1)</script> (cumulative)")])
    page = write_class_report(tmp_path, "trolley", {"x": evil, "y": _state()}).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_canvas_and_moodle_files(tmp_path, states, monkeypatch):
    from nbgrader.api import Gradebook

    from autograder.grade import COURSE_ID

    # A new gradebook runs nbgrader's database migration (the alembic command, beside this Python).
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        gb.add_student("ann", first_name="Ann", last_name="Lee", email="ann@uni.example", lms_user_id="4711")
        gb.add_student("ben", lms_user_id="lti-3f9a")  # not Canvas's numeric id: left out
    canvas, moodle = write_lms_files(tmp_path, "trolley", states)
    with open(canvas) as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "trolley"]
    assert rows[1] == ["Points Possible", "", "", "", "", f"{TOTAL:g}"]
    by_login = {r[3]: r for r in rows[2:]}
    assert by_login["ann"] == ["Lee, Ann", "4711", "", "ann", "", f"{TOTAL:g}"]
    assert by_login["ben"][:2] == ["ben", ""] and by_login["ben"][5] == f"{TOTAL - CHECKS['ex1_loo']:g}"
    assert "dan" not in by_login and by_login["eve"][5] == "0"  # waiting for a retry: no row, not a 0
    with open(moodle) as fh:
        mrows = {r["ID number"]: r for r in csv.DictReader(fh)}
    assert list(mrows["ann"]) == ["Username", "ID number", "Email address", "First name", "Last name",
                                  "Assignment: trolley (Real)"]
    assert mrows["ann"]["Email address"] == "ann@uni.example" and mrows["ann"]["Assignment: trolley (Real)"] == "20"
    assert mrows["ann"]["Username"] == "ann" and sorted(mrows) == ["ann", "ben", "cat", "eve"]
