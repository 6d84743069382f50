"""Read a submission's results in the grader's process, accepting only genuine ones.

An item (see :mod:`autograder.export`) counts only when its digest line appears exactly
once in the whole executed notebook, in the output of the test cell that exports it,
and matches the files. Files are read with formats that cannot run code (NetCDF, JSON,
CSV; never pickle), through :mod:`autograder.intake` (no link followed, regular files
only, within :data:`~autograder.export.MAX_BYTES`); a posterior's declared variables and
sizes are checked before any draw is loaded (a small file can declare gigabytes). What
is refused makes its item ``refused``, with the reason the student reads.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pandas as pd
import xarray as xr

from . import intake
from .export import MARKER, MAX_BYTES, MAX_ELEMENTS_PER_DRAW

__all__ = ["Item", "files_digest", "marker_lines", "read_draws", "read_posterior", "read_table", "verify"]

_LINE = re.compile(rf"^{MARKER} (\S+) ([0-9a-f]{{64}})\s*$", re.MULTILINE)


@dataclass
class Item:
    name: str
    status: str  # "ok", "missing", "error" (the student's object was unusable), "tampered", "refused"
    reason: str = ""
    folder: Path | None = None
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def marker_lines(notebook: nbformat.NotebookNode) -> list[tuple[str | None, str, str]]:
    """Every digest line in a notebook's outputs: (grade_id of its cell or None, item, sha)."""
    found = []
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            if output.get("output_type") != "stream":
                data = output.get("data", {})
                text = data.get("text/plain", "") if isinstance(data, dict) else ""
            if isinstance(text, list):
                text = "".join(text)
            for match in _LINE.finditer(str(text)):
                found.append((grade_id, match.group(1), match.group(2)))
    return found


def files_digest(folder: Path, item: str) -> str:
    """:func:`autograder.export.digest` as the grader computes it: the same SHA-256 over
    the item's files, each read through :mod:`autograder.intake` from the sandbox's
    folder down (raises :class:`~autograder.intake.Refused`)."""
    if not intake.real_folder(folder):
        raise intake.Refused(f"the results folder is a {intake.kind(folder)}, not a folder, so the grader did not "
                             "read it")
    h = hashlib.sha256()
    for name in sorted(n for n in os.listdir(folder) if n.startswith(f"{item}.")):
        h.update(name.encode("utf-8", "surrogateescape") + b"\0")
        for chunk in intake.chunks(folder / name, MAX_BYTES, within=folder.parent):
            h.update(chunk)
    return h.hexdigest()


def _json(folder: Path, name: str):
    return intake.read_json(folder / name, MAX_BYTES, within=folder.parent)


def verify(notebooks: list[Path], folder: Path, expected: dict[str, str]) -> dict[str, Item]:
    """Check each expected item (item -> grade_id of the cell that exports it)."""
    lines = []
    for path in notebooks:
        try:
            lines += marker_lines(nbformat.read(path, as_version=4))
        except Exception:  # an unreadable notebook has no genuine results
            continue
    items = {}
    for item, cell in expected.items():
        mine = [(g, sha) for g, name, sha in lines if name == item]
        if not mine:
            items[item] = Item(item, "missing", "its test cell did not run to the export (see the errors above it)")
            continue
        if len(mine) > 1 or mine[0][0] != cell:
            items[item] = Item(item, "tampered", f"the grader's result line for {item} was printed outside its test "
                                                 f"cell ({cell}) or more than once")
            continue
        try:
            if files_digest(folder, item) != mine[0][1]:
                items[item] = Item(item, "tampered", f"the files for {item} were changed after its test cell ran")
                continue
            if intake.kind(folder / f"{item}.error.json") != "missing":
                error = _json(folder, f"{item}.error.json")
                reason = error.get("error") if isinstance(error, dict) else None
                items[item] = Item(item, "error", str(reason or "unknown error"), folder)
                continue
            meta = _json(folder, f"{item}.meta.json") if intake.kind(folder / f"{item}.meta.json") != "missing" else {}
        except intake.Refused as refused:
            items[item] = Item(item, "refused", str(refused))
            continue
        items[item] = Item(item, "ok", "", folder, meta if isinstance(meta, dict) else {})
    return items


def read_posterior(item: Item) -> xr.Dataset:
    """The item's posterior draws: its variables and sizes checked as declared, then loaded."""
    data = intake.read_bytes(item.folder / f"{item.name}.nc", MAX_BYTES, within=item.folder.parent)
    with xr.open_dataset(io.BytesIO(data), engine="h5netcdf") as ds:
        problem = _declared_problem(ds)
        if problem:
            raise intake.Refused(f"{item.name}.nc {problem}, so the grader did not load it")
        return ds.load()


def _declared_problem(ds: xr.Dataset) -> str:
    """Why a posterior, as its file declares it (nothing loaded yet), is not one to load."""
    for name, variable in ds.variables.items():
        if name in ds.coords and variable.ndim <= 1:
            if variable.size > 10 * MAX_ELEMENTS_PER_DRAW * 1000:
                return f"declares a coordinate {name} of {variable.size:,} values"
            continue
        if ds[name].dims[:2] != ("chain", "draw"):
            return f"declares a variable {name} whose dimensions are not (chain, draw, ...) but {ds[name].dims}"
        draws = max(1, variable.shape[0] * variable.shape[1])
        if variable.size // draws > MAX_ELEMENTS_PER_DRAW:
            return f"declares {variable.size // draws:,} values per draw for {name}"
    declared = sum(v.size * v.dtype.itemsize for v in ds.variables.values())
    if declared > MAX_BYTES:
        return f"declares {declared / 1e6:,.0f} MB of draws (at most {MAX_BYTES / 1e6:,.0f} MB are graded)"
    return ""


def read_table(item: Item) -> pd.DataFrame:
    raw = _json(item.folder, f"{item.name}.table.json")
    return pd.DataFrame(raw["columns"], index=raw["index"])


def read_draws(item: Item) -> pd.DataFrame:
    data = intake.read_bytes(item.folder / f"{item.name}.csv", MAX_BYTES, within=item.folder.parent)
    return pd.read_csv(io.BytesIO(data), dtype={"id": str})
