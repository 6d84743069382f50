"""The class's grades in the files Canvas and Moodle import, beside nbgrader's ``grades.csv``.

nbgrader exports every assignment of the gradebook to ``grades.csv``; a learning
management system wants one column per assignment and its own column names. Both files
are written by ``make grade`` into the course folder, for the assignment just graded:

``canvas-<assignment>.csv``
    Canvas's gradebook import format (Grades > Import): the columns ``Student``, ``ID``,
    ``SIS User ID``, ``SIS Login ID`` and ``Section``, then one column for the
    assignment, and a ``Points Possible`` row first, as in a file Canvas exports.
    Canvas matches a row to a student by ``ID`` (Canvas's numeric user id: nbgrader's
    ``lms_user_id`` when that is a number) or by ``SIS Login ID`` (here nbgrader's
    student id). A new column name creates the assignment in Canvas; to fill an
    existing one, rename the column to Canvas's ``Name (id)`` before importing.
``moodle-<assignment>.csv``
    For Moodle's grade import from a CSV file (Grades > Import > CSV file):
    ``Username`` and ``ID number`` (both nbgrader's student id), ``Email address``,
    ``First name``, ``Last name`` and the grade column named as Moodle names a grade
    item in its own export (``Assignment: <name> (Real)``). In Moodle's mapping step,
    map ``Username`` (or ``ID number``, whichever holds your students' ids) to the user
    field of the same name and the grade column to the grade item.

Only students with a grade are written. A student waiting to be graded again
(``retry``) is left out of both files: an empty cell would clear the grade Moodle has
(and a row Moodle cannot match stops its whole import), so nothing is sent until the
grade exists.
"""

from __future__ import annotations

import csv
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from . import spreadsheet
from .checks import CHECKS

__all__ = ["CANVAS_COLUMNS", "MOODLE_COLUMNS", "write_lms_files"]

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["Username", "ID number", "Email address", "First name", "Last name"]


def _people(course: Path, students: list[str]) -> dict[str, dict]:
    from .grade import COURSE_ID, _db_url

    found = {}
    with Gradebook(_db_url(course), course_id=COURSE_ID) as gb:
        for student in students:
            try:
                found[student] = gb.find_student(student).to_dict()
            except MissingEntry:
                found[student] = {"id": student}
    return found


def _graded(states: dict[str, dict]) -> list[tuple[str, dict]]:
    return [(student, state) for student, state in sorted(states.items()) if state["outcome"]["status"] != "retry"]


def write_lms_files(course: Path, assignment: str, states: dict[str, dict]) -> list[Path]:
    """Write the Canvas and Moodle files for ``assignment``; returns their paths."""
    course = Path(course)
    graded = _graded(states)
    people = _people(course, [student for student, _ in graded])
    canvas, moodle = course / f"canvas-{assignment}.csv", course / f"moodle-{assignment}.csv"
    with open(canvas, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*CANVAS_COLUMNS, assignment])
        writer.writerow(["Points Possible", "", "", "", "", f"{sum(CHECKS.values()):g}"])
        for student, state in graded:
            person = people[student]
            name = ", ".join(p for p in (person.get("last_name"), person.get("first_name")) if p) or student
            lms_id = str(person.get("lms_user_id") or "")
            writer.writerow(spreadsheet.row([name, lms_id if lms_id.isdigit() else "", "", student, "",
                                             f"{state['score']:g}"]))
    with open(moodle, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*MOODLE_COLUMNS, f"Assignment: {assignment} (Real)"])
        for student, state in graded:
            person = people[student]
            writer.writerow(spreadsheet.row([student, student, person.get("email") or "",
                                             person.get("first_name") or "", person.get("last_name") or "",
                                             f"{state['score']:g}"]))
    return [canvas, moodle]
