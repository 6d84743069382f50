"""The feedback's forest plots: one row per posterior mean, the number that is off drawn in
red, and the picture in a cell after the model's answer cell that nbgrader's HTML
feedback shows as an image."""

from __future__ import annotations

import base64
import copy
import math
import re
import struct
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import pytest
from matplotlib.colors import to_rgba
from nbconvert import HTMLExporter
from nbgrader import utils as nbgrader_utils
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader

from autograder.feedback_plots import (
    FIGURE_KEY,
    NOT_AVAILABLE,
    OFF_COLOUR,
    OK_COLOUR,
    add_feedback_figures,
    forest_figure,
    forest_png,
)

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
SOURCE = EXERCISES / "source" / "trolley"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CUTPOINTS = [-4.1, -3.2, -2.4, -1.2, -0.3, 0.9]


def record(label, mine, reference, allowed=0.05, ok=None, model="m_varying", what="mean", interval="auto"):
    if ok is None:
        ok = math.isfinite(mine) and abs(mine - reference) <= allowed
    if interval == "auto":
        interval = [reference - 0.17, reference + 0.17]
    return {"model": model, "label": label, "what": what, "mine": mine, "reference": reference,
            "allowed": allowed, "ok": ok, "interval": interval}


def varying_records(off: float = 0.2) -> list[dict]:
    """m_varying's ten means, cutpoint 3 off by ``off``, plus sds that are not drawn."""
    rows = [record(f"cutpoint {k}", v + (off if k == 3 else 0.01), v) for k, v in enumerate(CUTPOINTS, 1)]
    rows += [record(f"the coefficient of {c}", v - 0.004, v, allowed=0.03)
             for c, v in [("action", -0.65), ("intention", -0.72), ("contact", -0.95)]]
    rows.append(record("sd(id)", 1.92, 1.91, allowed=0.04))
    rows += [record(f"cutpoint {k}", 0.07, 0.07, allowed=0.01, what="sd") for k in range(1, 7)]
    return rows


def simple_records() -> list[dict]:
    return [record(f"cutpoint {k}", v, v + 0.01, model="m_simple") for k, v in enumerate(CUTPOINTS, 1)]


def png_size(png: bytes) -> tuple[int, int]:
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def student_markers(fig):
    """label -> the student's marker (a Line2D), from each row's axes."""
    found = {}
    for ax in fig.axes:
        mine = [line for line in ax.lines if line.get_gid() == "yours"]
        found[ax.get_yticklabels()[0].get_text()] = mine[0] if mine else None
    return found


# --- the figure ------------------------------------------------------------------------

def test_png_has_the_signature_a_plausible_size_and_grows_with_rows():
    one = forest_png(varying_records()[:1], "m_varying")
    ten = forest_png(varying_records(), "m_varying")
    for png in (one, ten):
        assert png.startswith(PNG_SIGNATURE)
        assert 3_000 < len(png) < 500_000
    (w1, h1), (w10, h10) = png_size(one), png_size(ten)
    assert w1 == w10 == 600  # 6 in at 100 dpi
    # the ten-row legend has one more entry (the red "outside" marker): same two legend rows
    assert h10 - h1 == pytest.approx(9 * 50, abs=2)
    assert 100 < h1 < 250 and h10 < 800


@pytest.mark.parametrize("n", range(1, 11))
def test_one_row_per_mean_label_in_the_order_given(n):
    numbers = [r for r in varying_records() if r["what"] == "mean"][:n]
    fig = forest_figure(numbers, "m_varying")
    assert [ax.get_yticklabels()[0].get_text() for ax in fig.axes] == [r["label"] for r in numbers]
    assert fig.get_suptitle() == "m_varying"
    assert forest_png(numbers, "m_varying").startswith(PNG_SIGNATURE)


def test_a_failing_row_is_red_and_a_passing_row_green():
    fig = forest_figure(varying_records(off=0.2), "m_varying")
    markers = student_markers(fig)
    assert len(fig.axes) == 10  # the sds are left out
    failing, passing = markers["cutpoint 3"], markers["cutpoint 2"]
    assert to_rgba(failing.get_markerfacecolor()) == to_rgba(OFF_COLOUR)
    assert to_rgba(passing.get_markerfacecolor()) == to_rgba(OK_COLOUR)
    assert failing.get_marker() != passing.get_marker()  # not by colour alone
    assert failing.get_xdata()[0] == pytest.approx(-2.4 + 0.2)
    assert all(to_rgba(m.get_markerfacecolor()) == to_rgba(OK_COLOUR)
               for label, m in markers.items() if label != "cutpoint 3")
    # the failing row's label is red, and its axis reaches the student's value
    ax = fig.axes[2]
    assert to_rgba(ax.get_yticklabels()[0].get_color()) == to_rgba(OFF_COLOUR)
    lo, hi = ax.get_xlim()
    assert lo < -2.4 - 0.17 and hi > -2.2
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["yours \N{MINUS SIGN}2.20, off by 0.20\nreference \N{MINUS SIGN}2.40 ± 0.05"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["reference ± allowed difference", "reference 95% interval", "yours",
                      "yours, outside the allowed difference"]


def test_reference_band_and_interval_are_drawn_where_they_belong():
    fig = forest_figure([record("sd(id)", 1.95, 1.91, allowed=0.04, interval=[1.75, 2.08])], "t")
    (ax,) = fig.axes
    band, interval, reference, mine = ax.lines
    assert list(band.get_xdata()) == pytest.approx([1.87, 1.95])
    assert band.get_linewidth() > interval.get_linewidth()
    assert list(interval.get_xdata()) == pytest.approx([1.75, 2.08])
    assert reference.get_gid() == "reference" and reference.get_markerfacecolor() == "white"
    assert reference.get_xdata()[0] == pytest.approx(1.91)
    assert mine.get_gid() == "yours" and mine.get_xdata()[0] == pytest.approx(1.95)


def test_legend_without_intervals_or_failures_is_short():
    fig = forest_figure([record("sd(id)", 1.9, 1.91, interval=None)], "t")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["reference ± allowed difference", "yours"]
    assert len(fig.axes[0].lines) == 3  # band, reference, yours: no interval


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_missing_student_value_is_not_drawn_and_says_so(value):
    numbers = [record("cutpoint 1", value, -4.1, ok=False), record("cutpoint 2", -3.2, -3.2)]
    fig = forest_figure(numbers, "t")
    markers = student_markers(fig)
    assert list(markers) == [f"cutpoint 1 ({NOT_AVAILABLE})", "cutpoint 2"]
    assert markers[f"cutpoint 1 ({NOT_AVAILABLE})"] is None
    assert markers["cutpoint 2"] is not None
    assert all(math.isfinite(x) for x in fig.axes[0].get_xlim())
    assert fig.axes[0].texts[0].get_text().startswith(f"yours {NOT_AVAILABLE}\n")
    assert forest_png(numbers, "t").startswith(PNG_SIGNATURE)


def test_malformed_and_non_mean_records_are_skipped():
    good = record("cutpoint 1", -4.1, -4.1)
    numbers = [
        None, "cutpoint 1", {}, record("sd", 0.1, 0.1, what="sd"),
        {**good, "label": None}, {**good, "mine": "x"}, {**good, "mine": None}, {**good, "reference": float("nan")},
        {**good, "allowed": -1.0}, {**good, "allowed": True}, {**good, "label": "x", "interval": ["a", 1]},
        good, {**good, "mine": 99.0},  # a second row for the same label: the first wins
    ]
    fig = forest_figure(numbers, "t")
    assert [ax.get_yticklabels()[0].get_text() for ax in fig.axes] == ["x", "cutpoint 1"]
    assert student_markers(fig)["cutpoint 1"].get_xdata()[0] == pytest.approx(-4.1)
    assert len(fig.axes[0].lines) == 3  # the unusable interval is left out
    with pytest.raises(ValueError):
        forest_figure([record("sd", 0.1, 0.1, what="sd"), None], "t")


def test_ok_missing_is_worked_out_from_the_allowed_difference():
    numbers = [{**record("a", 1.0, 1.04), "ok": None}, {**record("b", 1.0, 1.06), "ok": None}]
    markers = student_markers(forest_figure(numbers, "t"))
    assert to_rgba(markers["a"].get_markerfacecolor()) == to_rgba(OK_COLOUR)
    assert to_rgba(markers["b"].get_markerfacecolor()) == to_rgba(OFF_COLOUR)


def test_drawing_leaves_matplotlib_state_alone():
    params = copy.deepcopy(dict(matplotlib.rcParams))
    figures = plt.get_fignums()
    forest_png(varying_records(), "t")
    assert plt.get_fignums() == figures
    assert dict(matplotlib.rcParams) == params


# --- the feedback cells ----------------------------------------------------------------

def checks_with(numbers_by_check: dict[str, list[dict]]) -> list[dict]:
    return [{"check": name, "points": 2, "score": 0.0, "message": "...", "numbers": numbers}
            for name, numbers in numbers_by_check.items()]


def grading_checks(off: float = 0.2) -> list[dict]:
    varying = varying_records(off)
    return checks_with({
        "ex1_m_simple": simple_records(),
        "ex1_m_varying_cutpoints": [r for r in varying if r["label"].startswith("cutpoint")],
        "ex1_m_varying_coefficients": [r for r in varying if r["label"].startswith("the coefficient")],
        "ex1_m_varying_sd": [r for r in varying if r["label"] == "sd(id)"],
    }) + [{"check": "ex1_loo", "points": 2, "score": 2.0, "message": "older result, no numbers"}]


def notebook(name: str = "1-varying-intercepts") -> nbformat.NotebookNode:
    return nbformat.read(SOURCE / f"{name}.ipynb", as_version=4)


def grade_ids(nb) -> list[str | None]:
    return [cell.metadata.get("nbgrader", {}).get("grade_id") or cell.metadata.get(FIGURE_KEY) for cell in nb.cells]


def attached_png(cell) -> bytes:
    (name,) = cell.attachments
    assert f"](attachment:{name})" in cell.source
    return base64.b64decode(cell.attachments[name]["image/png"])


def test_one_cell_after_each_answer_cell():
    nb = notebook()
    before = grade_ids(nb)
    add_feedback_figures(nb, grading_checks())
    after = grade_ids(nb)
    assert len(after) == len(before) + 2
    expected = list(before)
    for answer, model in [("ex1_m_simple_answer", "m_simple"), ("ex1_m_varying_answer", "m_varying")]:
        expected.insert(expected.index(answer) + 1, model)
    assert after == expected
    nbformat.validate(nb)
    for model in ("m_simple", "m_varying"):
        (cell,) = [c for c in nb.cells if c.metadata.get(FIGURE_KEY) == model]
        assert cell.cell_type == "markdown" and "nbgrader" not in cell.metadata
        assert cell.source.startswith(f"Your {model}, as the grader refitted the model you wrote, beside the reference")
        assert list(cell.attachments) == [f"forest-{model}.png"]
        png = attached_png(cell)
        assert png.startswith(PNG_SIGNATURE)
        drawn = simple_records() if model == "m_simple" else varying_records()
        assert png_size(png) == png_size(forest_png(drawn, "t"))  # 6 and 10 rows


def test_a_second_call_replaces_the_cells():
    nb = add_feedback_figures(notebook(), grading_checks(off=0.2))
    first = {c.metadata[FIGURE_KEY]: attached_png(c) for c in nb.cells if FIGURE_KEY in c.metadata}
    ids = grade_ids(nb)
    add_feedback_figures(nb, grading_checks(off=0.5))
    assert grade_ids(nb) == ids
    second = {c.metadata[FIGURE_KEY]: attached_png(c) for c in nb.cells if FIGURE_KEY in c.metadata}
    assert second["m_varying"] != first["m_varying"]  # redrawn from the new numbers
    # checks without m_simple's means take its old figure away
    add_feedback_figures(nb, checks_with({"ex1_m_varying_sd": [record("sd(id)", 1.9, 1.91)]}))
    assert [c.metadata[FIGURE_KEY] for c in nb.cells if FIGURE_KEY in c.metadata] == ["m_varying"]
    assert len(grade_ids(nb)) == len(ids) - 1


def test_a_model_with_only_sds_gets_no_figure():
    sds = [r for r in varying_records() if r["what"] == "sd"]
    nb = add_feedback_figures(notebook(), checks_with({"ex1_m_varying_cutpoints": sds}))
    assert grade_ids(nb) == grade_ids(notebook())


def test_the_second_notebook_is_unchanged():
    nb = notebook("2-predictions")
    original = nbformat.writes(nb)
    assert nbformat.writes(add_feedback_figures(nb, grading_checks())) == original


@pytest.mark.parametrize("checks", [
    [],
    [None, "x", {"check": "ex1_m_simple"}, {"numbers": None}, {"numbers": "abc"}, {"numbers": {"model": "m_simple"}}],
    [{"numbers": [None, 3, {"model": "m_simple"}, {"model": "m_other", "what": "mean"},
                  {**record("cutpoint 1", 1.0, 1.0, model="m_simple"), "reference": "1.0"}]}],
    None,
])
def test_malformed_checks_never_raise_and_add_nothing(checks):
    nb = notebook()
    original = nbformat.writes(nb)
    assert nbformat.writes(add_feedback_figures(nb, checks)) == original


def feedback_exporter(tmp_path) -> HTMLExporter:
    """nbconvert's HTMLExporter set up as `nbgrader generate_feedback` sets it up, with the
    course's nbgrader_config.py."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(EXERCISES)).load_config()
    converter = GenerateFeedback(coursedir=CourseDirectory(root=str(tmp_path)), config=config)
    exporter = HTMLExporter(parent=converter, config=converter.config)
    assert exporter.template_name == "feedback"
    return exporter


def with_grades(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What nbgrader's GetGrades adds from the gradebook (which it reads only for cells
    with nbgrader metadata): scores on graded and task cells, comments on answer cells."""
    for cell in nb.cells:
        if nbgrader_utils.is_solution(cell) or nbgrader_utils.is_task(cell):
            cell.metadata.nbgrader["comment"] = "A comment."
        if nbgrader_utils.is_grade(cell) or nbgrader_utils.is_task(cell):
            cell.metadata.nbgrader["score"] = 0.0
            cell.metadata.nbgrader["points"] = cell.metadata.nbgrader.get("points", 0)
    return nb


def test_the_html_feedback_shows_the_figure_as_an_image(tmp_path):
    nb = add_feedback_figures(notebook(), grading_checks())
    path = tmp_path / "1-varying-intercepts.ipynb"
    nbformat.write(nb, path)  # as grade.py writes it, and nbgrader reads it back
    resources = {"nbgrader": {"notebook": "1-varying-intercepts", "score": 3.0, "max_score": 10.0,
                              "late_penalty": 0.0}}
    html, _ = feedback_exporter(tmp_path).from_notebook_node(
        with_grades(nbformat.read(path, as_version=4)), resources=resources)
    for model in ("m_simple", "m_varying"):
        (cell,) = [c for c in nb.cells if c.metadata.get(FIGURE_KEY) == model]
        data = cell.attachments[f"forest-{model}.png"]["image/png"]
        assert data.startswith(base64.b64encode(PNG_SIGNATURE).decode()[:10])
        images = re.findall(r'<img\b[^>]*\bsrc="data:image/png;base64,' + re.escape(data[:400]), html)
        assert len(images) == 1, model
        assert f"Your {model}, as the grader refitted the model you wrote, beside the reference" in html
    assert "attachment:forest-" not in html
