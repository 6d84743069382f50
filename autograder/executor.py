"""The preprocessor nbgrader executes a submission's notebooks with: nbgrader's own
``Execute``, except that a kernel that stops is graded, not a failure of the grader.

A kernel stops when the student's code ends it (``os._exit``, a kernel told to quit) or
when it crashes (a segmentation fault in compiled code, the system killing it). nbclient
then raises ``DeadKernelError`` and nbgrader abandons the notebook: nothing is graded,
and the grader could only try again, forever. Here the cell that was running when the
kernel stopped gets an error output saying so, every later code cell an error output
saying it was not run (so nbgrader scores their test cells 0, and the grader's checks
find no results from them), and nbgrader goes on: the notebook is graded as far as it
ran. The stop is also written, by this process and never by the student's, to the file
named by ``record`` (one JSON line per stop), where the grader reads it to tell the
student (:func:`stops`).

This fills a gap of nbgrader, which offers no setting for it; the grader puts it in place
of ``Execute`` through ``c.Autograde.autograde_preprocessors`` (:func:`config_lines`).
A kernel that cannot start at all is still the grader's failure: that raises as before.
"""

from __future__ import annotations

import json
from pathlib import Path

from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute
from traitlets import Unicode

__all__ = ["NOT_RUN", "STOPPED", "KernelStopGraded", "config_lines", "preprocessors", "stops"]

#: ``ename`` of the error output given to the cell that was running when the kernel stopped.
STOPPED = "KernelStopped"
#: ``ename`` of the error output given to every code cell after it.
NOT_RUN = "NotRun"


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class KernelStopGraded(Execute):
    """nbgrader's ``Execute``; after the kernel stops, the rest of the notebook is marked
    not run instead of the notebook failing."""

    record = Unicode("", help="A file to append one JSON line to for each stop: notebook and cell (1-based)."
                     ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._stopped_in = None
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if self._stopped_in is not None:
            if cell.cell_type == "code":
                cell.outputs = [_error(NOT_RUN, f"not run: the kernel stopped in cell {self._stopped_in}")]
                cell.execution_count = None
            return cell, self.resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stopped_in = index + 1
            cell.outputs.append(_error(STOPPED, "the kernel stopped while this cell ran (it exited or crashed); "
                                                "the cells after it were not run"))
            notebook = ((resources or {}).get("nbgrader") or {}).get("notebook") or "?"
            self.log.warning("The kernel stopped in %s, cell %d: the rest of the notebook is marked not run",
                             notebook, self._stopped_in)
            if self.record:
                with open(self.record, "a") as fh:
                    fh.write(json.dumps({"notebook": notebook, "cell": self._stopped_in}) + "\n")
            return cell, self.resources


def preprocessors() -> list:
    """nbgrader's autograde preprocessors, with :class:`KernelStopGraded` in place of ``Execute``."""
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    if Execute not in default:
        raise RuntimeError("this nbgrader's Autograde has no Execute preprocessor to replace")
    return [KernelStopGraded if p is Execute else p for p in default]


def config_lines(record: Path) -> str:
    """The lines of an nbgrader_config.py that make nbgrader execute with
    :class:`KernelStopGraded`, recording stops in ``record``."""
    return (f"from {__name__} import {KernelStopGraded.__name__}, {preprocessors.__name__}\n"
            f"c.Autograde.autograde_preprocessors = {preprocessors.__name__}()\n"
            f"c.{KernelStopGraded.__name__}.record = {str(record)!r}\n")


def stops(record: Path) -> list[dict]:
    """The stops written to ``record``: ``{"notebook": name, "cell": number}``, in order."""
    try:
        lines = record.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]
