"""Posterior mean and quantile interval of tidy draws (tidybayes's ``mean_qi``).

The course's prediction helpers (:mod:`course_utils.predictions`) return draws as long
tables, one row per draw, with the draw indices :data:`DRAW_COLUMNS` (1-based, as in R);
:func:`mean_qi` summarises them per group. For a posterior held as xarray, ArviZ does the
same with ``az.summary(..., kind="stats", ci_prob=0.95)``.

Example (not run here: it needs a fit)::

    mean_qi(epred_draws((m2, m2_idata), people), ".epred", by=["id"])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["DRAW_COLUMNS", "mean_qi"]

DRAW_COLUMNS = [".chain", ".iteration", ".draw"]


def mean_qi(
    draws: pd.DataFrame,
    *columns: str,
    width: float | Sequence[float] = 0.95,
    by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Posterior mean and equal-tailed (quantile) interval, per group.

    Parameters
    ----------
    draws : DataFrame
        Long draws, one row per draw (and group), e.g. from
        :func:`course_utils.predictions.epred_draws`.
    *columns : str
        The value columns to summarise; default every numeric column that is neither a
        group nor a draw index.
    width : float or sequence of float
        Interval probability mass (tidybayes's ``.width``); several give several rows.
    by : str or sequence of str, optional
        Grouping columns; default ``draws.attrs["groups"]``.
        Missing values in a grouping column form a group of their own.

    Returns
    -------
    DataFrame
        Group columns; per value column its mean and ``.lower``/``.upper`` (named
        ``<col>.lower``/``<col>.upper`` when there are several); ``.width``, ``.point``
        (``"mean"``) and ``.interval`` (``"qi"``).
    """
    if isinstance(by, str):
        by = [by]
    groups = list(by if by is not None else draws.attrs.get("groups", []))
    missing = [c for c in [*groups, *columns] if c not in draws.columns]
    if missing:
        raise KeyError(f"no column(s) {missing} in the draws; they have {list(draws.columns)}")
    values = list(columns) or [
        c for c in draws.columns
        if c not in groups and c not in DRAW_COLUMNS and pd.api.types.is_numeric_dtype(draws[c])
    ]
    widths = [width] if np.isscalar(width) else list(width)
    frame = draws if groups else draws.assign(_all=0)
    grouped = frame.groupby(groups or ["_all"], sort=False, dropna=False)[values]
    mean = grouped.mean()
    rows = []
    for w in widths:
        if not 0 < w < 1:
            raise ValueError(f"an interval width must be between 0 and 1, not {w}")
        lower, upper = grouped.quantile((1 - w) / 2), grouped.quantile((1 + w) / 2)
        table = pd.DataFrame(index=mean.index)
        for col in values:
            prefix = col if len(values) > 1 else ""
            table[col] = mean[col]
            table[f"{prefix}.lower"] = lower[col]
            table[f"{prefix}.upper"] = upper[col]
        table[".width"] = w
        table[".point"] = "mean"
        table[".interval"] = "qi"
        rows.append(table.reset_index())
    out = pd.concat(rows, ignore_index=True)
    return out if groups else out.drop(columns="_all")
