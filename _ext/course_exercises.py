"""Sphinx extension: the exercises' student notebooks, downloadable from the book.

After an HTML build, the Trolley assignment is released with nbgrader into a temporary
course directory (exactly as ``make release`` does for an instructor: solutions replaced
by stubs, hidden tests and outputs removed, nbgrader's cell metadata kept so that a
submitted copy can be autograded) and its notebooks are copied to
``<html>/exercises/trolley/``, where ``book/exercises.md`` links to them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

ASSIGNMENT = "trolley"


def copy_student_notebooks(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from autograder.release import release_course

    target = Path(app.outdir) / "exercises" / ASSIGNMENT
    with tempfile.TemporaryDirectory() as folder:
        try:
            course = release_course(Path(folder), ASSIGNMENT)
        except Exception as error:  # a failed release fails the build, with nbgrader's reason
            raise ExtensionError(f"could not release the {ASSIGNMENT} exercises with nbgrader: {error}") from error
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(course / "release" / ASSIGNMENT, target)


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", copy_student_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
