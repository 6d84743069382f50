"""Hand a student's results to the grader: called by the hidden part of each test cell.

This module runs inside the student's kernel, which the student's own code controls, so
it decides nothing. It copies what the exercise asked for (posterior draws with the
model's specification and data, a LOO table, prediction draws from ``model.predict`` or
``epred_draws``) into files in ``$AUTOGRADER_PAYLOAD_DIR`` and prints one line per item,
``autograder-payload <item> <sha256>``, into the test cell's output. The grader, in its
own process, recomputes every graded quantity from those files and accepts an item only
if its digest line appears exactly once, in the output of the test cell that nbgrader
restored from the source notebook, and matches the files. A result file written by any
other cell, or changed after the test cell ran, therefore earns nothing.

Nothing here raises: a missing or malformed result is recorded as an ``.error.json``
file (with the reason the student will read), so the rest of the cell still runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .spec import describe, describe_data

__all__ = ["PAYLOAD_ENV", "MARKER", "export_fit", "export_table", "export_draws", "digest",
           "parameters_only"]

PAYLOAD_ENV = "AUTOGRADER_PAYLOAD_DIR"
MARKER = "autograder-payload"
MAX_BYTES = 200_000_000
MAX_ELEMENTS_PER_DRAW = 5_000
DRAW_COLUMNS = ["id", "action", "intention", "contact", ".row", ".category", ".epred", ".linpred",
                ".prediction", ".chain", ".iteration", ".draw"]


def digest(folder: Path, item: str) -> str:
    """SHA-256 over an item's files (name and bytes, in name order)."""
    h = hashlib.sha256()
    for file in sorted(folder.glob(f"{item}.*")):
        h.update(file.name.encode() + b"\0")
        h.update(file.read_bytes())
    return h.hexdigest()


def _folder() -> Path | None:
    folder = os.environ.get(PAYLOAD_ENV)
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _get(namespace: dict, name: str):
    if name not in namespace:
        raise NameError(f"there is no variable named {name}")
    return namespace[name]


def parameters_only(posterior):
    """The posterior's parameters: variables with at most MAX_ELEMENTS_PER_DRAW values per
    draw (Bambi's per-observation quantities left out)."""
    if hasattr(posterior, "to_dataset") and hasattr(posterior, "children"):  # a DataTree group
        posterior = posterior.to_dataset()
    draws = max(1, posterior.sizes.get("chain", 1) * posterior.sizes.get("draw", 1))
    return posterior[[v for v in posterior.data_vars if posterior[v].size // draws <= MAX_ELEMENTS_PER_DRAW]]


def _export(item: str, write) -> None:
    """Run ``write(folder)`` for ``item`` and print its digest line (or say why not)."""
    folder = _folder()
    if folder is None:
        print(f"(not graded here: {PAYLOAD_ENV} is not set)")
        return
    _finish(folder, item, write)


def _finish(folder: Path, item: str, write) -> None:
    for old in folder.glob(f"{item}.*"):
        old.unlink()
    try:
        write(folder)
    except Exception as error:  # the reason goes to the student's feedback
        for old in folder.glob(f"{item}.*"):
            old.unlink()
        (folder / f"{item}.error.json").write_text(json.dumps({"error": str(error)}))
    print(f"{MARKER} {item} {digest(folder, item)}")


def export_fit(item: str, namespace: dict, idata_name: str, model_name: str | None = None) -> None:
    """Save the posterior draws of ``namespace[idata_name]`` (and the Bambi model's family
    and formula from ``namespace[model_name]``) as payload ``item``."""
    def write(folder: Path) -> None:
        posterior = getattr(_get(namespace, idata_name), "posterior", None)
        if posterior is None or not hasattr(posterior, "to_netcdf"):
            raise TypeError(f"{idata_name} is not a fit (DataTree) with a posterior (got {type(namespace[idata_name]).__name__})")
        subset = parameters_only(posterior)
        if subset.nbytes > MAX_BYTES:
            raise ValueError(f"{idata_name}'s posterior is too large to grade ({subset.nbytes / 1e6:.0f} MB)")
        meta = {"variables": list(subset.data_vars)}
        model = namespace.get(model_name) if model_name else None
        if model is not None:
            family = getattr(getattr(model, "family", None), "name", None)
            meta.update(family=str(family) if family is not None else None,
                        formula=str(getattr(model, "formula", "")))
        (folder / f"{item}.meta.json").write_text(json.dumps(meta))
        subset.to_netcdf(folder / f"{item}.nc", engine="h5netcdf")
        if model is not None:  # what the grader refits (autograder.trusted); its absence is the student's to fix
            try:
                (folder / f"{item}.spec.json").write_text(json.dumps(describe(model, _get(namespace, idata_name))))
                (folder / f"{item}.data.json").write_text(json.dumps(describe_data(model)))
            except Exception as error:
                (folder / f"{item}.spec-error.json").write_text(json.dumps(
                    {"error": f"{model_name} is not a Bambi model the grader can refit ({type(error).__name__}: {error})"}))

    _export(item, write)


def export_table(item: str, namespace: dict, name: str) -> None:
    """Save the table ``namespace[name]`` (a pandas DataFrame, e.g. a LOO comparison)."""
    def write(folder: Path) -> None:
        table = _get(namespace, name)
        if not hasattr(table, "to_dict") or not hasattr(table, "columns"):
            raise TypeError(f"{name} should be a table (DataFrame), not {type(table).__name__}")
        numbers = {str(c): [float(v) if isinstance(v, (int, float)) else None for v in table[c].tolist()]
                   for c in table.columns}
        (folder / f"{item}.table.json").write_text(
            json.dumps({"index": [str(i) for i in table.index], "columns": numbers}))

    _export(item, write)


def export_draws(item: str, namespace: dict, name: str, rows: str | None = None) -> None:
    """Save the predictions ``namespace[name]`` as a tidy draws table (CSV): a table from
    ``epred_draws``, or what ``model.predict(..., inplace=False)`` returned, which is
    turned into one with the rows it was given (``namespace[rows]``)."""
    def write(folder: Path) -> None:
        frame = _get(namespace, name)
        if getattr(frame, "posterior", None) is not None:  # model.predict's result
            if rows is None or rows not in namespace:
                raise NameError(f"{name} is what model.predict returned; the grader also needs the rows you "
                                f"predicted for, as a DataFrame named {rows}")
            from course_utils.predictions import tidy_predictions

            frame = tidy_predictions(frame, namespace[rows])
        if not hasattr(frame, "to_csv") or not hasattr(frame, "columns"):
            raise TypeError(f"{name} should be what model.predict(..., inplace=False) or epred_draws returns, "
                            f"not {type(frame).__name__}")
        columns = [c for c in DRAW_COLUMNS if c in frame.columns]
        if len(frame) * max(1, len(columns)) > 20_000_000:
            raise ValueError(f"{name} is too large to grade ({len(frame)} rows)")
        frame[columns].to_csv(folder / f"{item}.csv", index=False)
        (folder / f"{item}.meta.json").write_text(json.dumps({"columns": [str(c) for c in frame.columns]}))

    _export(item, write)
