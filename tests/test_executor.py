"""A kernel that stops is graded as far as it ran (autograder/executor.py): the cell that
was running says so, every later code cell is marked not run (nbgrader scores its test
cells 0), the stop is recorded for the grader, and nbgrader goes on."""

from __future__ import annotations

import logging

import nbformat
import pytest
from conftest import machine_seconds
from nbgrader.preprocessors import Execute
from nbgrader.utils import determine_grade
from traitlets.config.loader import PyFileConfigLoader

from autograder import executor

ENDINGS = {
    "exits": "import os\nos._exit(3)",  # the student's code ends the kernel
    "crashes": "import ctypes\nctypes.string_at(0)",  # compiled code reads address 0: a segmentation fault
}


def _test_cell(source: str, grade_id: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 2,
                                 "grade_id": grade_id, "schema_version": 3}
    return cell


def _notebook(ending: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1\nprint('before')"),
        _test_cell("assert x == 1", "test_before"),
        nbformat.v4.new_code_cell(ending),
        nbformat.v4.new_markdown_cell("Some text."),
        nbformat.v4.new_code_cell("print('after')"),
        _test_cell("assert True", "test_after"),
    ])


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_kernel_that_stops_leaves_the_rest_not_run_and_scored_0(tmp_path, ending):
    record = tmp_path / "stops.jsonl"
    run = executor.KernelStopGraded(timeout=round(machine_seconds(120)), record=str(record))
    nb, _ = run.preprocess(_notebook(ENDINGS[ending]), {"metadata": {"path": str(tmp_path)},
                                                          "nbgrader": {"notebook": "1-varying-intercepts"}})
    before, test_before, stopped, text, after, test_after = nb.cells
    assert before.outputs[0]["text"] == "before\n"
    assert not any(o["output_type"] == "error" for o in test_before.outputs)
    assert [o["ename"] for o in stopped.outputs if o["output_type"] == "error"] == [executor.STOPPED]
    assert "outputs" not in text
    for cell in (after, test_after):
        assert [(o["ename"], o["evalue"]) for o in cell.outputs] == [(executor.NOT_RUN,
                                                                     "not run: the kernel stopped in cell 3")]
        assert cell.execution_count is None
    log = logging.getLogger("test")
    assert determine_grade(test_before, log) == (2, 2)  # what ran before the stop keeps its points
    assert determine_grade(test_after, log) == (0, 2)
    assert executor.stops(record) == [{"notebook": "1-varying-intercepts", "cell": 3}]


def test_a_kernel_that_keeps_running_is_executed_as_nbgrader_does(tmp_path):
    record = tmp_path / "stops.jsonl"
    run = executor.KernelStopGraded(timeout=round(machine_seconds(120)), record=str(record))
    nb, _ = run.preprocess(_notebook("y = 2"), {"metadata": {"path": str(tmp_path)}})
    assert nb.cells[-2].outputs[0]["text"] == "after\n"
    assert not record.exists() and executor.stops(record) == []


def test_config_lines_put_it_in_place_of_nbgraders_execute(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n" + executor.config_lines(tmp_path / "stops.jsonl"))
    c = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()  # as nbgrader loads it
    chosen = c.Autograde.autograde_preprocessors
    assert executor.KernelStopGraded in chosen and Execute not in chosen
    assert chosen.index(executor.KernelStopGraded) == 0  # it runs where Execute ran: first
    assert len(chosen) == len(executor.preprocessors())
    assert c.KernelStopGraded.record == str(tmp_path / "stops.jsonl")
    assert issubclass(executor.KernelStopGraded, Execute)  # so --Execute.timeout and the rest apply to it


def test_the_student_reads_where_the_kernel_stopped_once(tmp_path):
    """The errors the student reads name the cell where the kernel stopped, not every cell
    after it (the reason says that once)."""
    from autograder.runner import first_errors

    nb = _notebook("pass")
    def error(ename, evalue):
        return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])

    nb.cells[2].outputs = [error(executor.STOPPED, "the kernel stopped while this cell ran")]
    for cell in (nb.cells[4], nb.cells[5]):
        cell.outputs = [error(executor.NOT_RUN, "not run: the kernel stopped in cell 3")]
    path = tmp_path / "1-varying-intercepts.ipynb"
    nbformat.write(nb, path)
    assert first_errors([path]) == [
        "1-varying-intercepts, cell 3: KernelStopped: the kernel stopped while this cell ran"]
