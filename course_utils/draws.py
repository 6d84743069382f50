"""Posterior draws as tidy tables, after brms's ``as_draws_df`` and tidybayes.

- :func:`as_draws_df`: one row per draw, one column per parameter (brms names), plus
  ``.chain``, ``.iteration`` and ``.draw`` (1-based, as in R).
- :func:`spread_draws`: the varying effects long by cluster, from a tidybayes-like spec
  such as ``"r_id[id,term]"``.
- :func:`mean_qi`: mean and quantile interval per group (tidybayes's ``mean_qi``).
- :func:`cluster_means`: each cluster's mean, the grand mean plus its deviation.

Example (not run here: it needs a fit)::

    m2_r = spread_draws(m2_idata, "r_id[id,term]")
    mean_qi(m2_r, "r_id")
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from .names import brms_draws

__all__ = ["DRAW_COLUMNS", "as_draws_df", "cluster_means", "mean_qi", "spread_draws"]

DRAW_COLUMNS = [".chain", ".iteration", ".draw"]
_SPEC = re.compile(r"^\s*(?P<name>[^\[\]\s]+)\s*(?:\[(?P<dims>[^\]]*)\])?\s*$")


def as_draws_df(idata: xr.DataTree) -> pd.DataFrame:
    """All draws wide: one row per draw, one column per scalar parameter (brms names)."""
    columns = brms_draws(idata)
    if not columns:
        raise ValueError("the posterior has no parameters to tabulate")
    n_chain, n_draw = next(iter(columns.values())).shape
    frame = pd.DataFrame({name: values.reshape(-1) for name, values in columns.items()})
    frame[".chain"] = np.repeat(np.arange(1, n_chain + 1), n_draw)
    frame[".iteration"] = np.tile(np.arange(1, n_draw + 1), n_chain)
    frame[".draw"] = np.arange(1, n_chain * n_draw + 1)
    return frame


def _draws(source) -> pd.DataFrame:
    """Wide draws from a posterior, or the table itself if it already is one."""
    return source if isinstance(source, pd.DataFrame) else as_draws_df(source)


def _parse_index(values: pd.Series) -> pd.Series:
    """Index values read back from names: integers when every value is one, written plainly.

    ``"007"`` or ``"1e3"`` stay text, so distinct levels are never merged.
    """
    text = values.astype(str)
    if text.str.fullmatch(r"-?(0|[1-9][0-9]*)").all():
        return text.astype("int64")
    return values


def _spread_one(draws: pd.DataFrame, spec: str) -> tuple[pd.DataFrame, list[str]]:
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f"cannot read the spec {spec!r}; write it like 'r_id[id,term]' or 'b_Intercept'")
    name, dims = match["name"], match["dims"]
    if dims is None:
        if name not in draws.columns:
            raise KeyError(f"no parameter named {name!r}; the draws have {_some(draws)}")
        return draws[[*DRAW_COLUMNS, name]], []
    dim_names = [d.strip() for d in dims.split(",")]
    pattern = re.compile(rf"^{re.escape(name)}\[(.*)\]$")
    matched = {col: pattern.match(col) for col in draws.columns}
    matched = {col: m for col, m in matched.items() if m}
    if not matched:
        raise KeyError(f"no parameter is named {name}[...]; the draws have {_some(draws)}")
    index = pd.DataFrame([m[1].split(",") for m in matched.values()], index=list(matched))
    if index.shape[1] != len(dim_names):
        raise ValueError(
            f"{name} has {index.shape[1]} index(es) (e.g. {next(iter(matched))}), "
            f"but the spec names {len(dim_names)}: {dim_names}"
        )
    index.columns = dim_names
    long = draws[[*DRAW_COLUMNS, *matched]].melt(
        id_vars=DRAW_COLUMNS, var_name="_column", value_name=name
    )
    for dim in dim_names:
        long[dim] = _parse_index(long["_column"].map(index[dim]))
    long = long.drop(columns="_column")
    return long[[*dim_names, name, *DRAW_COLUMNS]], dim_names


def _some(draws: pd.DataFrame, n: int = 6) -> str:
    names = [c for c in draws.columns if c not in DRAW_COLUMNS]
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def spread_draws(source, *specs: str) -> pd.DataFrame:
    """Draws of the named parameters, long by their indices (tidybayes's ``spread_draws``).

    Parameters
    ----------
    source : DataTree or DataFrame
        A posterior, or the output of :func:`as_draws_df`.
    *specs : str
        Parameter names, with index names in brackets for indexed ones:
        ``"r_id[id,term]"`` gives columns ``id``, ``term`` and ``r_id``; ``"b_Intercept"``
        adds that parameter's value to every row of the same draw.

    Returns
    -------
    DataFrame
        Index columns, value columns and ``.chain``, ``.iteration``, ``.draw``; sorted by
        index then draw. ``frame.attrs["groups"]`` lists the index columns.
    """
    if not specs:
        raise ValueError("name at least one parameter, e.g. spread_draws(idata, 'r_id[id,term]')")
    draws = _draws(source)
    result, groups = None, []
    for spec in specs:
        part, dims = _spread_one(draws, spec)
        groups += [d for d in dims if d not in groups]
        result = part if result is None else result.merge(part, on=[*DRAW_COLUMNS, *[d for d in dims if d in result.columns]])
    result = result.sort_values([*groups, ".draw"], kind="stable").reset_index(drop=True)
    value_columns = [c for c in result.columns if c not in groups and c not in DRAW_COLUMNS]
    result = result[[*groups, *value_columns, *DRAW_COLUMNS]]
    result.attrs["groups"] = groups
    return result


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
        Long draws, e.g. from :func:`spread_draws`.
    *columns : str
        The value columns to summarise; default every numeric column that is neither a
        group nor a draw index.
    width : float or sequence of float
        Interval probability mass (tidybayes's ``.width``); several give several rows.
    by : str or sequence of str, optional
        Grouping columns; default ``draws.attrs["groups"]`` (set by :func:`spread_draws`).
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


def cluster_means(source, group: str, term: str = "Intercept") -> pd.DataFrame:
    """Each cluster's own value of ``term``: the population value plus its deviation.

    For ``con ~ 1 + (1 | id)`` this is ``b_Intercept + r_id[id, Intercept]``, each
    person's mean on the outcome scale. Returns long draws with columns ``group``,
    ``term``, ``value`` and the draw indices, ready for :func:`mean_qi`.
    """
    draws = _draws(source)
    fixed = f"b_{term}"
    long = spread_draws(draws, fixed, f"r_{group}[{group},term]")
    long = long[long["term"] == term]
    if long.empty:
        raise KeyError(f"no varying {term!r} per {group} in the draws")
    out = long[[group, "term", *DRAW_COLUMNS]].copy()
    out.insert(2, "value", long[fixed].to_numpy() + long[f"r_{group}"].to_numpy())
    out = out.reset_index(drop=True)
    out.attrs["groups"] = [group, "term"]
    return out
