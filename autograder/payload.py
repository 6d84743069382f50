"""Read a submission's results in the grader's process, accepting only genuine ones.

An item (see :mod:`autograder.export`) counts only when its digest line appears exactly
once in the whole executed notebook, in the output of the test cell that exports it,
and matches the files. Files are read with formats that cannot run code (NetCDF, JSON,
CSV; never pickle).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pandas as pd
import xarray as xr

from .export import MARKER, digest

__all__ = ["Item", "marker_lines", "verify", "read_posterior", "read_table", "read_draws"]

_LINE = re.compile(rf"^{MARKER} (\S+) ([0-9a-f]{{64}})\s*$", re.MULTILINE)


@dataclass
class Item:
    name: str
    status: str  # "ok", "missing", "error" (the student's object was unusable), "tampered"
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
        if digest(folder, item) != mine[0][1]:
            items[item] = Item(item, "tampered", f"the files for {item} were changed after its test cell ran")
            continue
        error = folder / f"{item}.error.json"
        if error.exists():
            items[item] = Item(item, "error", json.loads(error.read_text()).get("error", "unknown error"), folder)
            continue
        meta_file = folder / f"{item}.meta.json"
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        items[item] = Item(item, "ok", "", folder, meta)
    return items


def read_posterior(item: Item) -> xr.Dataset:
    with xr.open_dataset(item.folder / f"{item.name}.nc", engine="h5netcdf") as ds:
        return ds.load()


def read_table(item: Item) -> pd.DataFrame:
    raw = json.loads((item.folder / f"{item.name}.table.json").read_text())
    return pd.DataFrame(raw["columns"], index=raw["index"])


def read_draws(item: Item) -> pd.DataFrame:
    return pd.read_csv(item.folder / f"{item.name}.csv", dtype={"id": str})
