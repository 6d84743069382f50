"""Grading on Dask: a LocalCluster, a worker killed mid-run, a cluster started by hand.

A small class that is quick to grade: two students who answered only m_simple (with
different seeds: the same model, so one trusted fit for both), a released notebook left
blank, and a file that is not a notebook. It is graded on a LocalCluster of two worker
processes with a fresh grader cache (the shared m_simple fit is made once, while both
students wait on it), then again with the workers as threads of this process (the
former thread pool): the grades agree. Then a worker is killed while it grades, and a
separately started ``dask scheduler`` and ``dask worker`` grade by address. The canary
is left out here (the end-to-end test runs it). About 9 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

import submissions
from autograder.checks import CHECKS
from autograder.grade import grade_class
from autograder.limits import REFERENCE, Limits

from conftest import machine_seconds, needs_data

pytestmark = [pytest.mark.slow, needs_data]

# Time limits derived by the grader from this machine's speed (no canary here).
LIMITS = Limits(memory_bytes=4 * 2**30)
ONLY_M_SIMPLE = {k: v for k, v in submissions.NOTHING.items() if k != "ex1_m_simple_answer"}


def _course(folder: Path, *, simple: tuple[str, ...] = (), blank: tuple[str, ...] = ("blank",),
            hostile: bool = False) -> Path:
    course = submissions.release_course(folder)
    release, source = course / "release" / "trolley", course / "source" / "trolley"
    for seed, student in enumerate(simple, 1):
        submissions.write_submission(release, source, course / "submitted" / student / "trolley", seed=seed,
                                 answers=ONLY_M_SIMPLE)
    for student in blank:
        shutil.copytree(release, course / "submitted" / student / "trolley")
    submissions.not_a_notebook(course / "submitted" / "not_a_notebook" / "trolley")
    if hostile:
        submissions.hostile_folders(course)
    return course


def _grades(states: dict) -> dict[str, tuple[float, str]]:
    return {s: (st["score"], st["outcome"]["status"]) for s, st in states.items()}


def _expected(simple=(), blank=("blank",), hostile: bool = False) -> dict[str, tuple[float, str]]:
    # hostile_folders: each gets 0 (nothing of theirs earned a point) and a status
    hostile_ones = {"folder_link": "refused", "student_link": "refused", "pipe_folder": "refused",
                    "copier": "not-a-notebook", "links_inside": "not-a-notebook",
                    submissions.FORMULA_STUDENT: "graded"} if hostile else {}
    return {**{s: (CHECKS["ex1_m_simple"], "graded") for s in simple}, **{s: (0.0, "graded") for s in blank},
            "not_a_notebook": (0.0, "not-a-notebook"), **{s: (0.0, status) for s, status in hostile_ones.items()}}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    course = _course(tmp_path_factory.mktemp("dask-course"), simple=("simple_a", "simple_b"), hostile=True)
    saved = os.environ["AUTOGRADER_CACHE"]
    os.environ["AUTOGRADER_CACHE"] = str(tmp_path_factory.mktemp("fresh-grader-cache"))  # no fit to reuse
    try:
        on_cluster = grade_class(course, "trolley", workers=2, limits=LIMITS, canary=False)
        in_process = grade_class(course, "trolley", workers=2, limits=LIMITS, canary=False, processes=False,
                                 regrade=True)
    finally:
        os.environ["AUTOGRADER_CACHE"] = saved
    return course, on_cluster, in_process


def test_local_cluster_grades_as_the_in_process_run(two_runs):
    course, on_cluster, in_process = two_runs
    expected = _expected(simple=("simple_a", "simple_b"), hostile=True)
    assert _grades(on_cluster) == expected
    assert _grades(in_process) == expected
    # Without a canary, the time limits are the reference machine's, scaled to this one.
    run = json.loads((course / ".grading" / "trolley" / "run" / "limits.json").read_text())
    assert run["canary"] is None and "reference machine" in run["how"]
    assert run["limits"]["cell_seconds"] >= REFERENCE["cell_seconds"]


def test_folders_that_are_not_submissions_get_a_grade_and_a_reason(two_runs):
    """Links, pipes and copies of the source in a class (submissions.hostile_folders): the
    run finishes, each gets 0 and a sentence, nobody else's grade moves (the test above),
    and what a student wrote is shown as text in feedback and spreadsheets."""
    import csv

    course, on_cluster, _ = two_runs
    reasons = {s: st["outcome"]["reason"] for s, st in on_cluster.items()}
    assert "trolley folder is a link" in reasons["folder_link"]
    assert "submission folder is a link" in reasons["student_link"]
    assert "trolley folder is a named pipe" in reasons["pipe_folder"]
    assert "copy of the instructor's notebook" in reasons["copier"]
    assert "is a link" in reasons["links_inside"] and "is a named pipe" in reasons["links_inside"]
    formula = submissions.FORMULA_STUDENT
    assert "ValueError" in " ".join(on_cluster[formula]["outcome"]["errors"])
    assert (course / "submitted" / "folder_link" / "trolley").is_symlink()  # nothing of theirs was changed
    for student in ("folder_link", "copier", formula):
        pages = "".join(p.read_text() for p in (course / "feedback" / student / "trolley").glob("*.html"))
        assert pages and "<script>alert" not in pages and "<img src=x" not in pages, student
    pages = "".join(p.read_text() for p in (course / "feedback" / formula / "trolley").glob("*.html"))
    assert "&lt;script&gt;alert(1)" in pages  # the message is there, as text
    for name in ("grades.csv", "grading-report.csv", "canvas-trolley.csv", "moodle-trolley.csv"):
        with open(course / name, newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        assert f"'{formula}" in cells and formula not in cells, name


def test_a_model_two_students_wrote_is_fitted_once_for_the_cluster(two_runs):
    _, on_cluster, in_process = two_runs
    fits = [f for s in ("simple_a", "simple_b") for f in on_cluster[s]["outcome"]["fits"] if f["item"] == "m_simple"]
    assert len(fits) == 2 and fits[0]["key"] == fits[1]["key"]
    assert sorted(f["reused"] for f in fits) == [False, True]  # one fitted it, the other waited and read it
    again = [f for s in ("simple_a", "simple_b") for f in in_process[s]["outcome"]["fits"] if f["item"] == "m_simple"]
    assert all(f["reused"] for f in again)  # the next run reads the fit the cluster kept


def test_class_report_and_lms_files(two_runs):
    import csv

    course = two_runs[0]
    page = (course / "class-report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4  # scores, pass rates, models, time and memory
    assert "Most frequent mistakes" in page and "ex2_new: pred_new could not be graded" in page
    assert "not graded in full (not-a-notebook)" in page  # worth a look; simple_a and _b differ (their seeds)
    with open(course / "grading-report.csv") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert "identical notebooks" not in rows["simple_a"]["look"]
    assert rows["not_a_notebook"]["look"] == "not graded in full (not-a-notebook)"
    with open(course / "canvas-trolley.csv") as fh:
        canvas = list(csv.reader(fh))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "trolley"]
    assert {r[3]: r[5] for r in canvas[2:]}["simple_a"] == f"{CHECKS['ex1_m_simple']:g}"


def test_the_local_grading_cluster_refuses_a_client_without_the_runs_credentials():
    """The default LocalCluster speaks TLS with credentials made for the run: another
    process on the machine (another user's, on a shared server) cannot connect, by plain
    TCP or by TLS with credentials of its own; the grader's own client can."""
    from autograder.cluster import open_client

    with open_client(workers=1, log=lambda message: None) as client:
        address = client.scheduler.address
        assert address.startswith("tls://") and client.submit(sum, [1, 2]).result() == 3
        # plain TCP; TLS with credentials of its own (a certificate the run's CA did not sign)
        for attempt, security in ((address.replace("tls://", "tcp://"), "None"), (address, "Security.temporary()")):
            code = ("from distributed import Client\nfrom distributed.security import Security\n"
                    f"try:\n    Client({attempt!r}, timeout='10s', security={security}).close()\n"
                    "    print('connected')\n"
                    "except Exception as error:\n    print('refused:', type(error).__name__, error)\n")
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                                  timeout=machine_seconds(120))
            assert done.stdout.startswith("refused:"), (attempt, done.stdout, done.stderr[-500:])


def _grading_workers(client) -> list[int]:
    return list(client.run(os.getpid).values())


def test_a_worker_killed_mid_run_loses_no_grade(tmp_path):
    from distributed import Client, LocalCluster

    course = _course(tmp_path / "course", blank=("blank_1", "blank_2", "blank_3"))
    killed = []

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, memory_limit=0) as cluster, \
            Client(cluster) as client:
        def kill_one_while_grading():
            deadline = time.monotonic() + machine_seconds(300)
            while not killed and time.monotonic() < deadline:
                for pid in _grading_workers(client):
                    children = psutil.Process(pid).children(recursive=True)
                    if any("nbgrader" in " ".join(c.cmdline()) for c in children):
                        time.sleep(5)  # well into the student's notebook
                        os.kill(pid, signal.SIGKILL)
                        killed.append((pid, [c.pid for c in children]))
                        return
                time.sleep(0.5)

        watcher = threading.Thread(target=kill_one_while_grading, daemon=True)
        watcher.start()
        states = grade_class(course, "trolley", limits=LIMITS, canary=False, client=client)
        watcher.join()
    assert killed, "no worker was grading"
    assert _grades(states) == _expected(blank=("blank_1", "blank_2", "blank_3"))
    time.sleep(2)
    assert not [pid for pid in killed[0][1] if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]  # its nbgrader and kernel died with it


def test_grading_on_a_cluster_started_by_hand(tmp_path):
    course = _course(tmp_path / "course")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           # the worker keeps its own copy of everything, as one on another machine would
           "AUTOGRADER_WORKER_DIR": str(tmp_path / "worker"), "AUTOGRADER_CACHE": str(tmp_path / "worker-cache")}
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--scheduler-file", str(scheduler_file),
                                  "--port", "0", "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    worker = None
    try:
        started = time.monotonic() + machine_seconds(60)
        while not (scheduler_file.exists() and scheduler_file.stat().st_size) and time.monotonic() < started:
            time.sleep(0.5)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen([str(bin_dir / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                   "--no-dashboard", "--memory-limit", "0"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, cwd=tmp_path)
        with pytest.raises(SystemExit, match="not reached over TLS"):  # plain TCP: refused unless said
            grade_class(course, "trolley", limits=LIMITS, canary=False, scheduler=address)
        states = grade_class(course, "trolley", limits=LIMITS, canary=False, scheduler=address,
                             insecure_scheduler=True)
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=machine_seconds(60))
    assert _grades(states) == _expected()
    assert list((tmp_path / "worker").glob("*/work/blank"))  # graded there, not in .grading/
    assert not (course / ".grading" / "trolley" / "work").exists()
    assert (course / "autograded" / "blank" / "trolley" / "1-varying-intercepts.ipynb").is_file()
    assert (course / "feedback" / "blank" / "trolley").is_dir()
