"""What the grader takes from a student's submitted folder, and what it refuses.

``submitted/<student>/<assignment>/`` is the student's: it is read on the instructor's
machine, outside any sandbox, through :mod:`autograder.intake` (no link followed,
regular files only, within limits). This module finds the submissions
(:func:`submissions`: real folders only), fingerprints them (:func:`fingerprint`: a
student is graded again when anything in their folder changes) and reads the files a
grading task carries (:func:`submission_files`: the assignment's notebooks and
``timestamp.txt``). A notebook that still holds nbgrader's solution or hidden-test
markers is a copy of the instructor's source notebook, not a student's work: it is
refused, so pointing a submission at the course's source earns nothing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from . import intake

__all__ = ["MAX_FILE_BYTES", "fingerprint", "notebooks_digest", "refused_fingerprint", "source_markers",
           "submission_files", "submissions"]

#: Submitted files larger than this are not read (a notebook is far smaller).
MAX_FILE_BYTES = 100 * 2**20


def submissions(course: Path, assignment: str) -> tuple[dict[str, Path], dict[str, str]]:
    """(student -> folder of their submitted notebooks, student -> why their submission
    was refused).

    A submission is ``submitted/<student>/<assignment>``, both real folders: a link in
    either place (to another student's folder, or to the course's source) is refused,
    never followed, and so is anything else that is not a folder there."""
    # The instructor's own path is trusted (``submitted`` may be a link to a shared
    # exchange); links are refused only from the students' folders down.
    root = (course / "submitted").resolve()
    found: dict[str, Path] = {}
    refused: dict[str, str] = {}
    if not intake.real_folder(root):
        return found, refused
    for student in sorted(os.listdir(root)):
        home, folder = root / student, root / student / assignment
        if intake.real_folder(home):
            what = intake.kind(folder)
            if what == "folder":
                found[student] = folder
            elif what != "missing":
                refused[student] = (f"your {assignment} folder is a {what}, not a folder of your own, so nothing "
                                    "in it was graded")
        elif intake.kind(home) == "link" and intake.kind(folder) != "missing":
            refused[student] = "your submission folder is a link, not a folder of your own, so nothing in it was graded"
    return found, refused


def fingerprint(folder: Path) -> str:
    """What a submission holds (names, kinds and contents; links not followed): a
    student is graded again when it changes."""
    return intake.fingerprint(folder, file_limit=MAX_FILE_BYTES)


def refused_fingerprint(course: Path, student: str, assignment: str) -> str:
    """The fingerprint of a refused submission: what stands where its folders should be."""
    parts = []
    for path in (course / "submitted" / student, course / "submitted" / student / assignment):
        target = os.readlink(path) if intake.kind(path) == "link" else ""
        parts.append(f"{intake.kind(path)}\0{target}")
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def notebooks_digest(files: dict[str, bytes | str]) -> str:
    """SHA-256 of the submitted notebooks alone (the report's "identical notebooks")."""
    h, read = hashlib.sha256(), False
    for name, data in sorted(files.items()):
        if name.endswith(".ipynb") and isinstance(data, bytes):
            h.update(name.encode() + b"\0" + data)
            read = True
    return h.hexdigest() if read else ""


def source_markers() -> tuple[str, ...]:
    """The lines nbgrader looks for in the instructor's source notebooks (the beginning
    of a solution and of hidden tests): a released notebook has none of them."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    return (ClearSolutions.class_traits()["begin_solution_delimeter"].default_value,
            ClearHiddenTests.class_traits()["begin_test_delimeter"].default_value)


def _source_copy(data: bytes) -> bool:
    """Whether a notebook's bytes hold the course's source markers (in any cell)."""
    import json

    try:
        cells = json.loads(data).get("cells", [])
    except (ValueError, AttributeError, RecursionError):
        return False  # not a notebook: the runner says so
    markers = source_markers()
    for cell in cells if isinstance(cells, list) else []:
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        text = "".join(source) if isinstance(source, list) else str(source)
        if any(marker in text for marker in markers):
            return True
    return False


def submission_files(folder: Path, names: list[str]) -> dict[str, bytes | str]:
    """The files of a submission the grader reads (the assignment's notebooks and
    ``timestamp.txt``) as bytes, read without following a link anywhere below the
    ``submitted`` folder that holds ``folder`` (``submitted/<student>/<assignment>``, as
    :func:`submissions` gives it); a file it refuses (a link, a folder, a pipe, too large, a copy
    of the course's source notebook) is named with a sentence saying why (a str); a
    missing one is left out (nbgrader scores a missing notebook 0)."""
    files: dict[str, bytes | str] = {}
    for name in [*names, "timestamp.txt"]:
        try:
            data = intake.read_bytes(folder / name, MAX_FILE_BYTES, within=folder.parent.parent)
        except FileNotFoundError:
            continue
        except intake.Refused as refused:  # named from the student's own folders down
            files[name] = str(refused).removeprefix(f"{folder.parent.name}/{folder.name}/")
            continue
        if name.endswith(".ipynb") and _source_copy(data):
            files[name] = (f"{name} holds the course's solution or hidden-test markers: it is a copy of the "
                           "instructor's notebook, not your work, so it was not graded")
            continue
        files[name] = data
    return files
