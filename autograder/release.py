"""Release the exercises into a course directory, as ``make release`` does.

nbgrader's ``generate_assignment`` turns the source notebooks (``exercises/source``, with
the solutions) into the student version (``release/``), and records the assignment in
the course's gradebook. The book build uses it to offer the student notebooks for
download, and the tests and benchmarks to grade synthetic classes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["EXERCISES", "release_course"]

EXERCISES = Path(__file__).resolve().parent.parent / "exercises"


def release_course(folder: Path, assignment: str = "trolley") -> Path:
    """A new course directory in ``folder`` with the assignment released (as ``make release``)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(EXERCISES / "nbgrader_config.py", folder)
    shutil.copytree(EXERCISES / "source", folder / "source", dirs_exist_ok=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"],
                          cwd=folder, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return folder
