"""Time limits derived from the machine: from the canary's times, the cores shared and the
machine's speed now; never fixed seconds (autograder/limits.py)."""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from autograder.limits import (
    FLOORS,
    IOPUB_SHARE,
    REFERENCE,
    REFERENCE_SPEED,
    SUBMISSION_THREADS,
    TIME_MULTIPLE,
    CanaryTimes,
    Limits,
    derive,
    share,
    speed,
)
from autograder.runner import slowest_cell

CANARY = CanaryTimes(notebooks=200.0, slowest_cell=110.0, checks=20.0, fit=180.0, speed=0.1)


def test_limits_are_a_stated_multiple_of_the_canarys_times():
    limits, how = derive(Limits(), CANARY, speed_now=0.1, share_now=2.0)
    factor = TIME_MULTIPLE * 2.0
    assert limits.cell_seconds == round(factor * 110) and limits.fit_seconds == round(factor * 180)
    # The notebooks' own time, and room for one cell stopped at its limit.
    assert limits.submission_seconds == round(factor * 200) + limits.cell_seconds
    assert limits.check_seconds == max(FLOORS["check_seconds"], round(factor * 20))
    assert "slowest cell 110 s" in how and f"{TIME_MULTIPLE:g} x 2" in how


def test_a_remembered_canary_on_a_busier_machine_gives_longer_limits_never_shorter():
    remembered = replace(CANARY, reused=True)
    quiet, _ = derive(Limits(), remembered, speed_now=0.1, share_now=1.0)
    busy, _ = derive(Limits(), remembered, speed_now=0.25, share_now=1.0)
    calmer, _ = derive(Limits(), remembered, speed_now=0.05, share_now=1.0)
    assert busy.cell_seconds == pytest.approx(2.5 * quiet.cell_seconds, abs=1)
    assert calmer == quiet
    # A canary graded in this run measured the machine as it is now: its times stand.
    assert derive(Limits(), CANARY, speed_now=0.25, share_now=1.0)[0] == quiet


def test_nbclients_wait_for_a_cells_last_outputs_is_a_share_of_the_cell_limit():
    assert Limits(cell_seconds=400).iopub_seconds == IOPUB_SHARE * 400
    assert Limits(cell_seconds=60).iopub_seconds == FLOORS["iopub_seconds"] > 4  # nbclient's own: 4 s


def test_what_the_instructor_sets_is_kept_and_the_rest_derived():
    limits, _ = derive(Limits(cell_seconds=42, memory_bytes=2**30), CANARY, speed_now=0.1, share_now=1.0)
    assert limits.cell_seconds == 42 and limits.memory_bytes == 2**30
    assert limits.submission_seconds == round(TIME_MULTIPLE * 200) + 42
    given = Limits(submission_seconds=1, cell_seconds=2, fit_seconds=3, check_seconds=4)
    assert derive(given, CANARY, speed_now=9.0, share_now=9.0) == (given, "time limits as given")


def test_without_a_canary_the_reference_machines_limits_scale_with_this_machine():
    same, how = derive(Limits(), None, speed_now=REFERENCE_SPEED, share_now=2.0)
    assert {name: getattr(same, name) for name in REFERENCE} == {
        **REFERENCE, "submission_seconds": REFERENCE["submission_seconds"] + REFERENCE["cell_seconds"]}
    assert "reference machine" in how
    slower, _ = derive(Limits(), None, speed_now=3 * REFERENCE_SPEED, share_now=2.0)
    assert slower.cell_seconds == pytest.approx(3 * REFERENCE["cell_seconds"])
    crowded, _ = derive(Limits(), None, speed_now=REFERENCE_SPEED, share_now=4.0)
    one_stopped_cell = REFERENCE["submission_seconds"] + REFERENCE["cell_seconds"]
    assert crowded.submission_seconds == pytest.approx(2 * one_stopped_cell)


def test_floors_hold_for_a_very_fast_canary():
    limits, _ = derive(Limits(), CanaryTimes(1.0, 0.5, 0.1, 0.2, 0.1), speed_now=0.1, share_now=1.0)
    assert {name: getattr(limits, name) for name in FLOORS} == {
        **FLOORS, "submission_seconds": FLOORS["submission_seconds"] + FLOORS["cell_seconds"]}


@pytest.mark.parametrize("workers, cores, expected", [(1, 2, 1.0), (2, 2, 2.0), (16, 16, 2.0), (8, 16, 1.0),
                                                      (4, 1, 4.0)])
def test_share_counts_the_cores_a_submission_would_have_alone(workers, cores, expected):
    assert share(workers, cores, chains=2) == expected


def _spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_speed_measures_a_busy_machine_as_slower():
    quiet = speed()
    hogs = [multiprocessing.Process(target=_spin, args=(30,)) for _ in range(2 * (os.cpu_count() or 1))]
    for hog in hogs:
        hog.start()
    try:
        time.sleep(0.5)
        busy = speed()
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()
    assert quiet > 0 and busy > 1.2 * quiet


def test_slowest_cell_reads_nbclients_timing(tmp_path):
    nb = nbformat.v4.new_notebook()
    timed = [("2026-12-07T10:00:00.000Z", "2026-12-07T10:00:03.500Z"),
             ("2026-12-07T10:00:04.000Z", "2026-12-07T10:01:44.250Z")]
    for start, end in timed:
        cell = nbformat.v4.new_code_cell("pass")
        cell.metadata["execution"] = {"iopub.execute_input": start, "shell.execute_reply": end}
        nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_code_cell("never ran"))
    nbformat.write(nb, tmp_path / "a.ipynb")
    (tmp_path / "b.ipynb").write_text("not a notebook")
    assert slowest_cell([tmp_path / "a.ipynb", tmp_path / "b.ipynb"]) == pytest.approx(100.25)
    assert slowest_cell([tmp_path / "b.ipynb"]) == 0.0


def test_a_submission_runs_as_many_chains_as_the_exercises_ask_for():
    """The share counts SUBMISSION_THREADS per submission: the chains of the notebooks' SAMPLING."""
    source = Path(__file__).resolve().parents[1] / "exercises" / "source" / "trolley"
    for path in sorted(source.glob("*.ipynb")):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if "SAMPLING = dict(" in c.source]
        assert [int(m) for c in cells for m in re.findall(r"SAMPLING = dict\(chains=(\d+)", c)] == \
            [SUBMISSION_THREADS], path.name
