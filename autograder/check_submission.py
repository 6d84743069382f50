"""Run the checks for one autograded submission, in a process of its own.

``python -m autograder.check_submission WORK ASSIGNMENT STUDENT REFERENCE`` reads the
autograded notebooks and payload in the private course directory ``WORK`` (see
:mod:`autograder.runner`) and writes ``WORK/checks.json``: one record per check with its
points, score and the message the student will read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .checks import ITEMS, grade_items
from .payload import verify
from .reference import load_reference, trolley_data


def main(argv: list[str]) -> int:
    work, assignment, student, reference = Path(argv[0]), argv[1], argv[2], Path(argv[3])
    notebooks = sorted((work / "autograded" / student / assignment).glob("*.ipynb"))
    items = verify(notebooks, work / "payload", ITEMS)
    results = grade_items(items, load_reference(reference), trolley_data())
    tmp = work / "checks.json.tmp"
    tmp.write_text(json.dumps([r.as_dict() for r in results], indent=1))
    tmp.replace(work / "checks.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
