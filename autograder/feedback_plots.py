"""A small forest plot of each fitted model in the student's feedback.

Every graded check carries the numbers it compared (``CheckResult.numbers``: one record
per number, with the student's value, the reference value, the difference the rule
allows and whether it passed). :func:`add_feedback_figures` draws the posterior means of
each model (``m_simple``, ``m_varying``) with :func:`forest_png` and puts the picture in a
markdown cell right after the student's answer cell for that model, so that nbgrader's
HTML feedback shows, at a glance, which number is off and by how much.

Parameters live on very different scales (cutpoints from -4 to 2, the coefficients near
-0.7, ``sd(id)`` near 1.9) while the allowed differences are a few hundredths, so each
parameter gets its own row with its own horizontal axis, centred on what matters for that
row: the reference, the band of allowed differences, the reference's 95% interval and the
student's value. The values themselves are also written beside each row.

The PNG is a cell attachment of the markdown cell (``![...](attachment:forest-<model>.png)``),
Jupyter's own way to put an image in markdown: the cell's source stays two short lines,
Jupyter shows the image, and nbconvert's HTML exporter (nbgrader's feedback) renders it as
an ``<img>`` whose ``src`` is a ``data:image/png;base64,`` URL, so the feedback page needs
no other file.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from numbers import Real

import nbformat
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

__all__ = ["ANSWER_CELLS", "add_feedback_figures", "forest_figure", "forest_png"]

#: Model -> the answer cell (``grade_id``) the model's figure follows.
ANSWER_CELLS = {"m_simple": "ex1_m_simple_answer", "m_varying": "ex1_m_varying_answer"}
#: Marks the cells this module adds (in the cell's metadata), so a second call replaces them.
FIGURE_KEY = "autograder_feedback_figure"

OK_COLOUR = "#1a9850"  # green
OFF_COLOUR = "#d73027"  # red
BAND_COLOUR = "#c8c8c8"  # light grey
REFERENCE_COLOUR = "#333333"
NOT_AVAILABLE = "not available"

_WIDTH = 6.0  # inches
_ROW_HEIGHT = 0.5
_TITLE = 0.5  # inches above the legend
_LEGEND_ROW = 0.22
_FOOTER = 0.3  # the last row's tick labels
_DPI = 100


@dataclass(frozen=True)
class _Row:
    label: str
    mine: float
    reference: float
    allowed: float
    ok: bool
    interval: tuple[float, float] | None

    @property
    def available(self) -> bool:
        return math.isfinite(self.mine)


def _number(value: object) -> float | None:
    """``value`` as a float, or None if it is not a real number (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    return float(value)


def _row(record: object) -> _Row | None:
    """The row a record draws, or None if the record is malformed or not a mean."""
    if not isinstance(record, dict) or record.get("what") != "mean":
        return None
    label = record.get("label")
    mine, reference, allowed = (_number(record.get(k)) for k in ("mine", "reference", "allowed"))
    if not isinstance(label, str) or not label or mine is None or reference is None or allowed is None:
        return None
    if not (math.isfinite(reference) and math.isfinite(allowed) and allowed >= 0):
        return None
    interval = None
    raw = record.get("interval")
    if isinstance(raw, (list, tuple)) and len(raw) == 2:
        lo, hi = (_number(v) for v in raw)
        if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi) and lo <= hi:
            interval = (lo, hi)
    ok = record.get("ok")
    if not isinstance(ok, bool):
        ok = math.isfinite(mine) and abs(mine - reference) <= allowed
    return _Row(label, mine, reference, allowed, ok and math.isfinite(mine), interval)


def _rows(numbers: list[dict]) -> list[_Row]:
    """The drawable mean records, in the order given, one per label (the first wins)."""
    rows: dict[str, _Row] = {}
    for record in numbers if isinstance(numbers, (list, tuple)) else []:
        row = _row(record)
        if row is not None and row.label not in rows:
            rows[row.label] = row
    return list(rows.values())


def _limits(row: _Row) -> tuple[float, float]:
    """The row's horizontal range: everything drawn, with a margin."""
    points = [row.reference - row.allowed, row.reference + row.allowed]
    if row.interval:
        points += list(row.interval)
    if row.available:
        points.append(row.mine)
    lo, hi = min(points), max(points)
    span = max(hi - lo, 4 * row.allowed, 0.02 * max(1.0, abs(row.reference)))
    middle = (lo + hi) / 2
    return middle - 0.6 * span, middle + 0.6 * span


def _fmt(x: float) -> str:
    text = f"{x:.3g}" if abs(x) < 1e-2 or abs(x) >= 1e3 else f"{x:.2f}"
    return text.replace("-", "\N{MINUS SIGN}")


def forest_figure(numbers: list[dict], title: str) -> Figure:
    """The forest plot of the posterior means in ``numbers`` (one model's records): one
    row per parameter label, in the order given, each with its own horizontal axis.

    In each row, the reference is a hollow marker on a grey band of the allowed difference
    (reference ± allowed), its 95% interval (when given) a thin line, and the student's
    value a filled marker, green if it passed and red if not; a student value that is not
    a finite number is not drawn and its label says "not available". Records that are not
    means, or malformed, are left out; ``ValueError`` if none is left."""
    rows = _rows(numbers)
    if not rows:
        raise ValueError("no posterior mean to draw")
    handles, labels = _legend(rows)
    legend_columns = 2
    header = _TITLE + _LEGEND_ROW * math.ceil(len(labels) / legend_columns)
    height = header + _ROW_HEIGHT * len(rows) + _FOOTER
    fig = Figure(figsize=(_WIDTH, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    top = 1 - header / height
    bottom = _FOOTER / height
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    fig.subplots_adjust(left=0.33, right=0.70, top=top, bottom=bottom, hspace=0.9)
    for ax, row in zip(axes, rows):
        ax.set_ylim(-1, 1)
        ax.set_xlim(*_limits(row))
        ax.plot([row.reference - row.allowed, row.reference + row.allowed], [0, 0],
                color=BAND_COLOUR, linewidth=9, solid_capstyle="butt", zorder=1)
        if row.interval:
            ax.plot(row.interval, [0, 0], color=REFERENCE_COLOUR, linewidth=1, zorder=2)
        ax.plot([row.reference], [0], marker="o", markersize=9, markerfacecolor="white",
                markeredgecolor=REFERENCE_COLOUR, markeredgewidth=1.5, linestyle="none", zorder=3,
                gid="reference")
        label = row.label
        if row.available:
            ax.plot([row.mine], [0], marker="o" if row.ok else "D", markersize=6.5,
                    color=OK_COLOUR if row.ok else OFF_COLOUR, markeredgecolor="black",
                    markeredgewidth=0.5, linestyle="none", zorder=4, gid="yours")
            mine = _fmt(row.mine)
        else:
            label = f"{row.label} ({NOT_AVAILABLE})"
            mine = NOT_AVAILABLE
        ax.set_yticks([0], [label], fontsize=8.5,
                      color="black" if row.ok else OFF_COLOUR,
                      fontweight="normal" if row.ok else "bold")
        ax.tick_params(axis="y", length=0)
        ax.tick_params(axis="x", labelsize=7, length=2.5, pad=1.5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        if row.available and not row.ok:
            mine += f", off by {_fmt(abs(row.mine - row.reference))}"
        ax.text(1.03, 0.5, f"yours {mine}\nreference {_fmt(row.reference)} ± {_fmt(row.allowed)}",
                transform=ax.transAxes, va="center", ha="left", fontsize=7.5,
                color="black" if row.ok else OFF_COLOUR)
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / height, va="top")
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.3 / height),
               ncol=legend_columns, fontsize=7.5, frameon=False, handlelength=2.6, columnspacing=1.2,
               handler_map={tuple: HandlerTuple(ndivide=None, pad=0)})
    return fig


def _legend(rows: list[_Row]) -> tuple[list, list[str]]:
    band = Line2D([], [], color=BAND_COLOUR, linewidth=9, solid_capstyle="butt")
    reference = Line2D([], [], marker="o", markersize=9, markerfacecolor="white",
                       markeredgecolor=REFERENCE_COLOUR, markeredgewidth=1.5, linestyle="none")
    handles: list = [(band, reference)]
    labels = ["reference ± allowed difference"]
    if any(row.interval for row in rows):
        handles.append(Line2D([], [], color=REFERENCE_COLOUR, linewidth=1))
        labels.append("reference 95% interval")
    handles.append(Line2D([], [], marker="o", markersize=6.5, color=OK_COLOUR, markeredgecolor="black",
                          markeredgewidth=0.5, linestyle="none"))
    labels.append("yours")
    if any(row.available and not row.ok for row in rows):
        handles.append(Line2D([], [], marker="D", markersize=6.5, color=OFF_COLOUR, markeredgecolor="black",
                              markeredgewidth=0.5, linestyle="none"))
        labels.append("yours, outside the allowed difference")
    return handles, labels


def forest_png(numbers: list[dict], title: str) -> bytes:
    """:func:`forest_figure` as PNG bytes."""
    buffer = io.BytesIO()
    forest_figure(numbers, title).savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _answer_index(nb: nbformat.NotebookNode, grade_id: str) -> int | None:
    for index, cell in enumerate(nb.get("cells", [])):
        nbgrader = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and isinstance(nbgrader, dict) and nbgrader.get("grade_id") == grade_id:
            return index
    return None


def _figure_cell(model: str, png: bytes) -> nbformat.NotebookNode:
    name = f"forest-{model}.png"
    cell = nbformat.v4.new_markdown_cell(
        f"Your {model}, as the grader refitted the model you wrote, beside the reference: each row is a "
        f"posterior mean; the grey band is the difference the grader allows.\n\n![{model}: your posterior means and the reference's](attachment:{name})",
        metadata={FIGURE_KEY: model})
    cell.attachments = {name: {"image/png": base64.b64encode(png).decode("ascii")}}
    return cell


def add_feedback_figures(nb: nbformat.NotebookNode, checks: list[dict]) -> nbformat.NotebookNode:
    """Put each model's forest plot (the posterior means in the checks' ``numbers``) in a
    markdown cell right after the model's answer cell (:data:`ANSWER_CELLS`). A cell added
    by an earlier call is replaced (or removed, if the checks now have no mean of that
    model). The new cell has no nbgrader metadata, so nbgrader ignores it. A notebook
    without the answer cell is left as it is; malformed checks and records are skipped.
    Returns ``nb`` (changed in place)."""
    records: dict[str, list[dict]] = {model: [] for model in ANSWER_CELLS}
    for check in checks if isinstance(checks, (list, tuple)) else []:
        numbers = check.get("numbers") if isinstance(check, dict) else None
        for record in numbers if isinstance(numbers, (list, tuple)) else []:
            if isinstance(record, dict) and record.get("model") in records:
                records[record["model"]].append(record)
    for model, grade_id in ANSWER_CELLS.items():
        if _answer_index(nb, grade_id) is None:
            continue
        nb.cells = [cell for cell in nb.cells if cell.get("metadata", {}).get(FIGURE_KEY) != model]
        index = _answer_index(nb, grade_id)
        if index is None or not _rows(records[model]):
            continue
        png = forest_png(records[model], f"{model}: posterior means, yours and the reference's")
        nb.cells.insert(index + 1, _figure_cell(model, png))
    return nb
