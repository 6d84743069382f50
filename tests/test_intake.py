"""What a student left is read without trusting it (autograder/intake.py,
autograder/submitted.py, the payload's reads, spreadsheet cells, feedback comments).

Every kind of thing a folder can hold, in every place the grader reads: links (to
another file, to a device, to the course's solutions, to another student), folders,
named pipes, sockets and oversized files, in place of the student's folder, the
assignment folder, a notebook, a result file or a folder on the way to it. Each read
ends at once, never follows a link, never returns bytes from outside the student's
folder and says what it refused. A property test builds random trees of all of them.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder import intake, spreadsheet
from autograder.export import MARKER, MAX_BYTES, digest
from autograder.grade import _comments
from autograder.payload import files_digest, read_posterior, verify
from autograder.runner import Outcome
from autograder.submitted import fingerprint, submission_files, submissions

NAMES = ["1-varying-intercepts.ipynb", "2-predictions.ipynb"]
SECRET = b"THE INSTRUCTOR'S SOLUTION"


def _ends(fn, *args, seconds=20, **kwargs):
    """``fn(*args, **kwargs)`` in a thread that must end within ``seconds`` (a read that
    blocks on a named pipe would hang the test otherwise); returns its result or raises
    what it raised."""
    out = {}

    def run():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            out["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} blocked"
    if "error" in out:
        raise out["error"]
    return out["value"]


def _notebook(text="print(1)") -> bytes:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text)])
    return nbformat.writes(nb).encode()


def _socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    return server


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "outside" / "solution.ipynb"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


# --- intake ------------------------------------------------------------------------------

def test_a_regular_file_is_read_and_everything_else_is_refused_by_name(tmp_path, secret):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "ok.txt").write_bytes(b"fine")
    (folder / "link").symlink_to(secret)
    (folder / "zero").symlink_to("/dev/zero")
    (folder / "loop").symlink_to(folder / "loop")
    (folder / "dir").mkdir()
    os.mkfifo(folder / "pipe")
    server = _socket(folder / "sock")
    (folder / "big").write_bytes(b"x" * 2000)
    try:
        assert intake.read_bytes(folder / "ok.txt", 100) == b"fine"
        refused = {}
        for name, what in [("link", "a link"), ("zero", "a link"), ("loop", "a link"), ("dir", "a folder"),
                           ("pipe", "a named pipe"), ("sock", "a socket"), ("big", "larger than 1,000 bytes")]:
            with pytest.raises(intake.Refused) as error:
                _ends(intake.read_bytes, folder / name, 1000)
            refused[name] = str(error.value)
            assert name in refused[name] and what in refused[name], refused[name]
        with pytest.raises(FileNotFoundError):
            intake.read_bytes(folder / "missing", 100)
        with pytest.raises(intake.Refused, match="not valid JSON"):
            intake.read_json(folder / "ok.txt", 100)
    finally:
        server.close()


def test_a_link_on_the_way_to_a_file_is_refused(tmp_path, secret):
    """``within``: no component below it is followed, not only the last one."""
    root = tmp_path / "sandbox"
    root.mkdir()
    (root / "payload").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(intake.Refused, match="payload is a link"):
        intake.read_bytes(root / "payload" / "solution.ipynb", 1000, within=root)
    assert intake.read_bytes(secret, 1000) == SECRET  # without the link, the file itself reads


def test_entries_list_without_following_links_and_within_bounds(tmp_path, secret):
    folder = tmp_path / "student"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "a" / "b" / "f.txt").write_text("x")
    (folder / "up").symlink_to(tmp_path, target_is_directory=True)  # a link to a folder holding itself
    found = {e.path: (e.kind, e.target) for e in intake.entries(folder)}
    assert found == {"a": ("folder", ""), "a/b": ("folder", ""), "a/b/f.txt": ("file", ""),
                     "up": ("link", str(tmp_path))}
    with pytest.raises(intake.Refused, match="more than 2 files"):
        intake.entries(folder, max_entries=2)
    with pytest.raises(intake.Refused, match="a link"):
        intake.entries(folder / "up")


def test_fingerprint_changes_with_anything_and_reads_nothing_outside(tmp_path, secret):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "nb.ipynb").write_bytes(b"one")
    first = fingerprint(folder)
    (folder / "link").symlink_to(secret)
    second = fingerprint(folder)
    secret.write_bytes(b"changed")  # what a link points at is not the student's: not read
    assert fingerprint(folder) == second != first
    os.mkfifo(folder / "pipe")
    assert _ends(fingerprint, folder) != second


# --- submissions -------------------------------------------------------------------------

def _course(tmp_path: Path, secret: Path) -> Path:
    course = tmp_path / "course"
    root = course / "submitted"
    for student in ("honest", "with_extras"):
        (root / student / "trolley").mkdir(parents=True)
        for name in NAMES:
            (root / student / "trolley" / name).write_bytes(_notebook(student))
    extras = root / "with_extras" / "trolley"
    (extras / "data.csv").symlink_to("/dev/zero")
    os.mkfifo(extras / "fifo")
    (extras / "folder").mkdir()
    (root / "folder_link" / "trolley").parent.mkdir(parents=True)
    (root / "folder_link" / "trolley").symlink_to(root / "honest" / "trolley", target_is_directory=True)
    (root / "student_link").symlink_to(root / "honest", target_is_directory=True)
    (root / "pipe_student").mkdir()
    os.mkfifo(root / "pipe_student" / "trolley")
    (root / "links_inside" / "trolley").mkdir(parents=True)
    (root / "links_inside" / "trolley" / NAMES[0]).symlink_to(secret)
    os.mkfifo(root / "links_inside" / "trolley" / NAMES[1])
    (root / "links_inside" / "trolley" / "timestamp.txt").symlink_to("/dev/zero")
    (root / "copier" / "trolley").mkdir(parents=True)
    (root / "copier" / "trolley" / NAMES[0]).write_bytes(_notebook("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    (root / "copier" / "trolley" / NAMES[1]).write_bytes(_notebook("### BEGIN HIDDEN TESTS\nassert x\n"))
    (root / "no_assignment").mkdir()
    return course


def test_only_real_folders_are_submissions_and_links_are_refused_with_a_reason(tmp_path, secret):
    course = _course(tmp_path, secret)
    found, refused = _ends(submissions, course, "trolley")
    # The instructor's own submitted folder may be a link (to a shared exchange): it is followed.
    (tmp_path / "elsewhere").mkdir()
    (course / "submitted").rename(tmp_path / "elsewhere" / "submitted")
    (course / "submitted").symlink_to(tmp_path / "elsewhere" / "submitted", target_is_directory=True)
    assert _ends(submissions, course, "trolley") == ({s: (tmp_path / "elsewhere" / "submitted" / s / "trolley")
                                                      for s in found}, refused)
    found = _ends(submissions, course, "trolley")[0]
    assert submission_files(found["honest"], NAMES)[NAMES[0]] == (found["honest"] / NAMES[0]).read_bytes()
    assert set(found) == {"honest", "with_extras", "links_inside", "copier"}
    assert set(refused) == {"folder_link", "student_link", "pipe_student"}
    assert "trolley folder is a link" in refused["folder_link"]
    assert "submission folder is a link" in refused["student_link"]
    assert "trolley folder is a named pipe" in refused["pipe_student"]


def test_submission_files_refuse_links_pipes_and_copies_of_the_source(tmp_path, secret):
    course = _course(tmp_path, secret)
    found, _ = submissions(course, "trolley")
    files = {s: _ends(submission_files, found[s], NAMES) for s in found}
    for student in ("honest", "with_extras"):  # with_extras: its link, pipe and folder are never read
        assert files[student] == {name: (found[student] / name).read_bytes() for name in NAMES}
    inside = files["links_inside"]
    assert "is a link" in inside[NAMES[0]] and "is a named pipe" in inside[NAMES[1]]
    assert "is a link" in inside["timestamp.txt"]
    assert all("copy of the instructor's notebook" in files["copier"][name] for name in NAMES)
    assert not any(SECRET in data for f in files.values() for data in f.values() if isinstance(data, bytes))


# --- a property: any tree -----------------------------------------------------------------

_KINDS = st.sampled_from(["file", "big", "dir", "fifo", "link_secret", "link_zero", "link_dir", "link_loop",
                          "link_student", "socket", "unreadable"])
_NAME = st.sampled_from([*NAMES, "timestamp.txt", "data.csv", "sub"])


def _folders_on_the_way(top: Path, folder: Path) -> bool:
    """Make the folders from ``top`` down to ``folder`` where nothing stands yet; whether
    it is a real folder now."""
    path = top
    for part in folder.relative_to(top).parts:
        path = path / part
        if intake.kind(path) == "missing":
            path.mkdir()
        if not intake.real_folder(path):
            return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.lists(st.tuples(st.sampled_from(["", "sub/", "sub/deeper/"]), _NAME, _KINDS), max_size=10),
       top=st.sampled_from(["dir", "dir", "dir", "link_student", "fifo", "link_dir"]))
def test_any_tree_in_a_submission_is_read_safely(tmp_path_factory, tree, top):
    base = tmp_path_factory.mktemp("tree")
    secret = base / "secret.txt"
    secret.write_bytes(SECRET)
    course = base / "course"
    other = course / "submitted" / "other" / "trolley"
    other.mkdir(parents=True)
    (other / NAMES[0]).write_bytes(_notebook("other"))
    folder = course / "submitted" / "student" / "trolley"
    folder.parent.mkdir(parents=True)
    sockets = []
    make = {"dir": lambda p: p.mkdir(), "fifo": os.mkfifo,
            "link_student": lambda p: p.symlink_to(other, target_is_directory=True),
            "link_dir": lambda p: p.symlink_to(secret.parent, target_is_directory=True)}
    make[top](folder)
    if top == "dir":
        for where, name, kind in tree:
            path = folder / where / name
            if not _folders_on_the_way(folder, path.parent) or intake.kind(path) != "missing":
                continue  # something else already stands there
            if kind == "file":
                path.write_bytes(_notebook(name))
            elif kind == "big":
                with open(path, "wb") as fh:
                    fh.truncate(200 * 2**20)  # sparse: larger than any submitted file is read
            elif kind == "dir":
                path.mkdir()
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "socket":
                if len(str(path)) < 100:
                    sockets.append(_socket(path))
            elif kind == "unreadable":
                path.write_bytes(b"x")
                path.chmod(0)
            else:
                target = {"link_secret": secret, "link_zero": Path("/dev/zero"), "link_dir": base,
                          "link_loop": path, "link_student": other / NAMES[0]}[kind]
                path.symlink_to(target)
    try:
        found, refused = _ends(submissions, course, "trolley")
        assert "other" in found and "other" not in refused
        if top != "dir":
            assert "student" in refused and "student" not in found
            return
        assert "student" in found
        _ends(fingerprint, found["student"])
        files = _ends(submission_files, found["student"], NAMES)
        for name, data in files.items():
            path = folder / name
            if isinstance(data, bytes):  # read: a regular file of the student's own
                assert intake.kind(path) == "file" and data == path.read_bytes() and SECRET not in data
            else:  # refused: said in a sentence naming the file
                assert name in data and intake.kind(path) != "missing"
        assert set(files) <= {*NAMES, "timestamp.txt"}
    finally:
        for server in sockets:
            server.close()


# --- the payload --------------------------------------------------------------------------

def _payload(tmp_path: Path) -> Path:
    payload = tmp_path / "sandbox" / "payload"
    payload.mkdir(parents=True)
    return payload


def _marker_notebook(tmp_path: Path, lines: dict[str, str]) -> Path:
    cells = []
    for cell_id, text in lines.items():
        cell = nbformat.v4.new_code_cell("")
        cell.metadata["nbgrader"] = {"grade_id": cell_id, "grade": True}
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        cells.append(cell)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.mark.parametrize("kind", ["fifo", "dir", "link_secret", "link_zero", "payload_link"])
def test_a_result_file_that_is_not_a_file_is_refused_not_waited_on(tmp_path, secret, kind):
    payload = _payload(tmp_path)
    (payload / "comparison.table.json").write_text(json.dumps({"columns": {}, "index": []}))
    (payload / "comparison.meta.json").write_text("{}")
    line = f"{MARKER} comparison {digest(payload, 'comparison')}\n"
    notebook = _marker_notebook(tmp_path, {"cell": line})
    assert verify([notebook], payload, {"comparison": "cell"})["comparison"].ok
    meta = payload / "comparison.meta.json"
    meta.unlink()
    if kind == "fifo":
        os.mkfifo(meta)
    elif kind == "dir":
        meta.mkdir()
    elif kind == "link_secret":
        meta.symlink_to(secret)
    elif kind == "link_zero":
        meta.symlink_to("/dev/zero")
    else:  # the whole folder replaced by a link to the instructor's files
        os.rename(payload, tmp_path / "moved")
        payload.symlink_to(secret.parent, target_is_directory=True)
    item = _ends(verify, [notebook], payload, {"comparison": "cell"})["comparison"]
    assert item.status == "refused" and "is a" in item.reason and "the grader did not read it" in item.reason, item


def test_the_grader_computes_the_students_digest_the_same_way(tmp_path):
    payload = _payload(tmp_path)
    for name, data in [("m_simple.nc", b"\x89HDF"), ("m_simple.spec.json", b"{}"), ("m_simple_x.nc", b"other"),
                       ("m_simple.meta.json", b"[1]")]:
        (payload / name).write_bytes(data)
    assert files_digest(payload, "m_simple") == digest(payload, "m_simple")


def test_a_posterior_that_declares_gigabytes_is_refused_before_it_is_loaded(tmp_path):
    payload = _payload(tmp_path)
    from autograder.payload import Item

    small = xr.Dataset({"b": (("chain", "draw", "b_dim"), np.zeros((2, 10, 3)))})
    small.to_netcdf(payload / "ok.nc", engine="h5netcdf")
    assert read_posterior(Item("ok", "ok", folder=payload))["b"].shape == (2, 10, 3)
    # 4 x 100,000 x 5,000 float64 declared (16 GB), chunked and compressed: almost nothing on disk.
    import h5netcdf

    with h5netcdf.File(payload / "bomb.nc", "w") as f:
        f.dimensions = {"chain": 4, "draw": 100_000, "b_dim": 5_000}
        f.create_variable("b", ("chain", "draw", "b_dim"), float, chunks=(1, 1000, 5000), compression="gzip")
    assert (payload / "bomb.nc").stat().st_size < 100_000
    with pytest.raises(intake.Refused, match="MB of draws"):
        _ends(read_posterior, Item("bomb", "ok", folder=payload))
    with h5netcdf.File(payload / "flat.nc", "w") as f:
        f.dimensions = {"x": 10}
        f.create_variable("b", ("x",), float)
    with pytest.raises(intake.Refused, match="not \\(chain, draw"):
        read_posterior(Item("flat", "ok", folder=payload))
    assert MAX_BYTES < 16e9


# --- student text is data -----------------------------------------------------------------

@pytest.mark.parametrize("value, shown", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"), ("-0.5", "-0.5"), ("alice", "alice"), (3.5, 3.5), ("", ""),
])
def test_spreadsheet_cells_never_start_a_formula(value, shown):
    assert spreadsheet.cell(value) == shown


def test_a_csv_file_is_neutralised_in_place(tmp_path):
    path = tmp_path / "grades.csv"
    path.write_text("student_id,score\n=cmd|' /C calc'!A0,1.0\nbob,-0.0\n")
    spreadsheet.neutralise_file(path)
    assert path.read_text().splitlines() == ["student_id,score", "'=cmd|' /C calc'!A0,1.0", "bob,-0.0"]


def test_feedback_comments_show_a_students_html_as_text():
    outcome = Outcome("s", "graded", errors=["1-varying-intercepts, cell 3: ValueError: <script>alert(1)</script>"],
                      checks=[{"check": "ex1_m_simple", "score": 0, "points": 4,
                               "message": "your formula <img src=x onerror=alert(1)> has no id"}])
    text = "".join(_comments(outcome).values())
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;img src=x onerror=alert(1)&gt;" in text
