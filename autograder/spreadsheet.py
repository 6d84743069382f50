"""Rows that a spreadsheet opens as data, never as formulas.

Student ids and every text derived from a student (the reasons and messages in the
class report) reach CSV files that instructors open in Excel, LibreOffice or an LMS
import. A cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
run as a formula there (CSV injection), so such a cell is written with a leading
apostrophe, which spreadsheets show as text. Numbers (``-0.5``) are left as they are.
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["cell", "neutralise_file", "row"]

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value):
    """``value`` as a spreadsheet shows it as text: formula-like text gets a leading apostrophe."""
    if not isinstance(value, str) or not value.startswith(_FORMULA):
        return value
    try:
        float(value)
        return value  # a number
    except ValueError:
        return "'" + value


def row(values) -> list:
    """Every cell of a CSV row through :func:`cell`."""
    return [cell(v) for v in values]


def neutralise_file(path: Path) -> None:
    """Rewrite a CSV file written by another program (nbgrader's ``grades.csv``) with
    every cell through :func:`cell`."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    neutral = [row(r) for r in rows]
    if neutral != rows:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows(neutral)
        tmp.replace(path)
