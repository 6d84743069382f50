"""A quick look at a data set, after rethinking's ``precis()``.

One row per column: mean, sd, the 5.5% and 94.5% quantiles (an 89% interval) and a
small histogram drawn with unicode blocks. Columns that are not numbers get empty
cells, as in R.

Example
-------
>>> precis(pd.DataFrame({"x": [1.0, 2.0, 2.0, 3.0]}))   # doctest: +NORMALIZE_WHITESPACE
   mean        sd   5.5%  94.5% histogram
x   2.0  0.816497  1.165  2.835  ▃▁▁▁▇▁▁▁▁▃
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["precis"]

SPARKS = "\u2581\u2582\u2583\u2585\u2587"


def _pretty_breaks(low: float, high: float, n: int = 10) -> np.ndarray:
    """About ``n`` equal bins with round edges covering ``[low, high]`` (R's ``pretty()``)."""
    if high == low:
        return np.array([low - 0.5, high + 0.5])
    cell = (high - low) / n
    base = 10 ** math.floor(math.log10(cell))
    unit = base
    # R's bias towards the larger of neighbouring round units: h = 1.5, h5 = 0.5 + 1.5 h.
    if 2 * base - cell < 1.5 * (cell - unit):
        unit = 2 * base
        if 5 * base - cell < 2.75 * (cell - unit):
            unit = 5 * base
            if 10 * base - cell < 1.5 * (cell - unit):
                unit = 10 * base
    start = math.floor(low / unit + 1e-7)
    stop = math.ceil(high / unit - 1e-7)
    return np.arange(start, stop + 1) * unit


def _histospark(values, width: int = 10) -> str:
    """A histogram as a string of unicode blocks, one per bin (rethinking's ``histospark``)."""
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    x = x[np.isfinite(x)]  # like R's hist(), which ignores NA; infinities have no bin
    if x.size == 0:
        return ""
    edges = _pretty_breaks(x.min(), x.max(), width)
    # R's hist(): right-closed bins, the first one closed on the left too.
    bins = np.clip(np.searchsorted(edges, x, side="left") - 1, 0, len(edges) - 2)
    counts = np.bincount(bins, minlength=len(edges) - 1)
    level = np.ceil(counts * len(SPARKS) / counts.max()).astype(int)
    return "".join(SPARKS[max(lv, 1) - 1] for lv in level)


def precis(data: pd.DataFrame, prob: float = 0.89) -> pd.DataFrame:
    """Mean, sd, central ``prob`` interval and a histogram for each column of ``data``."""
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    lo_name, hi_name = f"{100 * lo:g}%", f"{100 * hi:g}%"
    rows = {}
    for name, column in data.items():
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            x = column.dropna().astype(float)
            rows[name] = [x.mean(), x.std(), x.quantile(lo), x.quantile(hi), _histospark(x)]
        else:
            rows[name] = [np.nan, np.nan, np.nan, np.nan, ""]
    return pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "sd", lo_name, hi_name, "histogram"])
