"""Run the checks for one autograded submission, in a process of its own.

``python -I -c "...main(sys.argv[1:])" WORK ASSIGNMENT STUDENT REFERENCE PAYLOAD TRUSTED``
(see :mod:`autograder.runner`) reads the autograded notebooks in the private course
directory ``WORK``, the payload folder ``PAYLOAD`` the student's hidden test cells wrote,
and the trusted fits listed in the JSON file ``TRUSTED``, and writes
``WORK/checks.json``: one record per check with its points, score, the message the
student will read and the numbers it compared.
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
    payload, trusted_file = Path(argv[4]), Path(argv[5])
    notebooks = sorted((work / "autograded" / student / assignment).glob("*.ipynb"))
    items = verify(notebooks, payload, ITEMS)
    trusted = json.loads(trusted_file.read_text())
    results = grade_items(items, load_reference(reference), trolley_data(), trusted)
    tmp = work / "checks.json.tmp"
    tmp.write_text(json.dumps([r.as_dict() for r in results], indent=1))
    tmp.replace(work / "checks.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
