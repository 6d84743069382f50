"""``check_my_work()``: the grader's checks, run by a student on their own notebook.

Called at the end of each exercise notebook, it hands the notebook's results to the very
checks the grader runs (:func:`autograder.checks.grade_items`) against the public
reference posterior, and prints what the grader would say, check by check, with the
points. Two differences from the real grading, which it states: the grader refits each
model the student wrote and grades that fit (here the student's own draws stand in for
it), and the grader runs the notebook from top to bottom in a fresh kernel (here the
kernel's current state is checked). While grading, the call does nothing (the grader
runs the checks itself).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import tempfile
from pathlib import Path

from . import checks as C
from .export import PAYLOAD_ENV, export_draws, export_fit, export_table
from .payload import Item

__all__ = ["check_my_work"]

#: Payload item -> (how it is exported, the variable(s) it reads).
_EXPORTS = {
    "m_simple": (export_fit, ("m_simple_idata", "m_simple")),
    "m_varying": (export_fit, ("m_varying_idata", "m_varying")),
    "comparison": (export_table, ("comparison",)),
    "m_varying_2": (export_fit, ("m_varying_idata", "m_varying")),
    # The predictions, and the rows they are for (needed when they come from model.predict).
    "pred_participants": (export_draws, ("pred_participants", "three_people")),
    "pred_average": (export_draws, ("pred_average", "stories")),
    "pred_new": (export_draws, ("pred_new", "two_new")),
}
_SECOND = ("m_varying_2", "pred_participants", "pred_average", "pred_new")


def _items(namespace: dict, folder: Path, notebook: str) -> dict[str, Item]:
    wanted = _SECOND if notebook == "2-predictions" else tuple(i for i in _EXPORTS if i not in _SECOND)
    items = {}
    for item in C.ITEMS:
        export, names = _EXPORTS[item]
        if item not in wanted or names[0] not in namespace:
            items[item] = Item(item, "missing", f"there is no {names[0]} in this notebook yet")
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            export(item, namespace, *names)
        error = folder / f"{item}.error.json"
        if error.exists():
            items[item] = Item(item, "error", json.loads(error.read_text()).get("error", "unknown error"), folder)
            continue
        meta_file = folder / f"{item}.meta.json"
        items[item] = Item(item, "ok", "", folder, json.loads(meta_file.read_text()) if meta_file.exists() else {})
    return items


def check_my_work(namespace: dict | None = None, notebook: str | None = None) -> list:
    """Print what the grader would say about this notebook's answers; returns the results.

    ``namespace`` defaults to the calling notebook's globals; ``notebook`` (the exercise,
    ``"1-varying-intercepts"`` or ``"2-predictions"``) is recognised from the names in it.
    """
    if os.environ.get(PAYLOAD_ENV):
        print("(check_my_work does nothing while grading: the grader runs these checks itself)")
        return []
    from .reference import load_reference, trolley_data

    namespace = namespace if namespace is not None else inspect.currentframe().f_back.f_globals
    if notebook is None:
        notebook = "2-predictions" if any(n in namespace for n in ("pred_participants", "pred_average", "pred_new",
                                                                   "stories")) else "1-varying-intercepts"
    previous = os.environ.get(PAYLOAD_ENV)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ[PAYLOAD_ENV] = tmp
        try:
            items = _items(namespace, folder, notebook)
        finally:
            if previous is None:
                os.environ.pop(PAYLOAD_ENV, None)
            else:
                os.environ[PAYLOAD_ENV] = previous
        # The student's own draws stand in for the grader's refit of their models.
        own = {item: {"posterior": str(folder / f"{item}.nc"), "family": items[item].meta.get("family")}
               for item in C.MODEL_ITEMS if items[item].ok and (folder / f"{item}.nc").exists()}
        results = C.grade_items(items, load_reference(), trolley_data(), own)
    mine = [r for r in results if C.NOTEBOOK_OF[r.check] == notebook]
    total, points = sum(r.score for r in mine), sum(r.points for r in mine)
    print(f"What the grader would say about {notebook} ({total:g} of {points:g} points):\n")
    for r in mine:
        print(f"{'✓' if r.score == r.points else '✗'} {r.check} ({r.score:g}/{r.points:g}): {r.message}\n")
    print("The grader also refits each model you wrote and grades that fit (your own draws must agree with it), "
          "and it runs your notebook from the top in a fresh kernel: restart and run all before you submit.")
    return mine
