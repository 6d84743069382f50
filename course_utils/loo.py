"""Leave-one-out cross-validation (PSIS-LOO) with brms's tables.

:func:`loo` computes PSIS-LOO for one fit, keeping the pointwise values (expected log
predictive density, effective number of parameters, Pareto k) so that standard errors
of sums and of differences between models are exact. :func:`loo_compare` ranks fits
as ``loo_compare(..., simplify = FALSE)`` prints them in brms; :meth:`Loo.pareto_k_table`
counts the Pareto k diagnostics as the loo package does.

Formulas (loo package; n observations, S draws):

- ``elpd_loo = sum(elpd_i)``, ``se_elpd_loo = sqrt(n * var(elpd_i))``;
- ``p_loo = sum(lpd_i - elpd_i)`` with ``lpd_i = log(mean_s exp(log_lik[s, i]))``,
  and ``se_p_loo = sqrt(n * var(lpd_i - elpd_i))``;
- ``looic = -2 * elpd_loo``, ``se_looic = 2 * se_elpd_loo``;
- ``elpd_diff`` is each model's elpd_loo minus the best's, and
  ``se_diff = sqrt(n * var(elpd_i - elpd_best_i))``.

``var`` divides by n - 1, as R's does. ArviZ 1.x does the same for ``se`` of elpd_loo,
but its ``az.compare`` still divides by n for ``dse``, so ``dse`` is smaller than ``se_diff``
by a factor ``sqrt((n - 1) / n)`` (0.998 for 225 observations). Since ArviZ 1.0,
``az.compare`` gives ``elpd_diff`` brms's sign (negative for the worse model).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
from scipy.special import logsumexp
import xarray as xr

__all__ = ["Loo", "loo", "loo_compare"]

COMPARE_COLUMNS = [
    "elpd_diff", "se_diff", "elpd_loo", "se_elpd_loo", "p_loo", "se_p_loo", "looic", "se_looic",
]


def _pareto_k_threshold(n_draws: int) -> float:
    """The loo package's threshold for a reliable Pareto k: ``min(1 - 1/log10(S), 0.7)``."""
    return min(1 - 1 / math.log10(n_draws), 0.7)


def _se_of_sum(values: np.ndarray) -> float:
    return float(np.sqrt(len(values) * np.var(values, ddof=1)))


@dataclass
class Loo:
    """PSIS-LOO of one fit: ``pointwise`` has ``elpd_loo``, ``p_loo`` and ``pareto_k`` per row."""

    pointwise: pd.DataFrame
    n_draws: int

    @property
    def elpd_loo(self) -> float:
        return float(self.pointwise["elpd_loo"].sum())

    @property
    def se_elpd_loo(self) -> float:
        return _se_of_sum(self.pointwise["elpd_loo"].to_numpy())

    @property
    def p_loo(self) -> float:
        return float(self.pointwise["p_loo"].sum())

    @property
    def se_p_loo(self) -> float:
        return _se_of_sum(self.pointwise["p_loo"].to_numpy())

    @property
    def looic(self) -> float:
        return -2 * self.elpd_loo

    @property
    def se_looic(self) -> float:
        return 2 * self.se_elpd_loo

    def estimates(self) -> pd.DataFrame:
        """The loo package's estimates table: elpd_loo, p_loo and looic with their SEs."""
        return pd.DataFrame(
            {"Estimate": [self.elpd_loo, self.p_loo, self.looic],
             "SE": [self.se_elpd_loo, self.se_p_loo, self.se_looic]},
            index=["elpd_loo", "p_loo", "looic"],
        )

    def pareto_k_table(self) -> pd.DataFrame:
        """Counts and shares of observations by Pareto k: good, bad, very bad."""
        k = self.pointwise["pareto_k"].to_numpy()
        threshold = _pareto_k_threshold(self.n_draws)
        labels = [f"(-Inf, {threshold:.2g}] (good)", f"({threshold:.2g}, 1] (bad)", "(1, Inf) (very bad)"]
        counts = [int((k <= threshold).sum()), int(((k > threshold) & (k <= 1)).sum()), int((k > 1).sum())]
        return pd.DataFrame({"Count": counts, "Pct.": [100 * c / len(k) for c in counts]}, index=labels)

    def bad_observations(self) -> pd.Index:
        """Rows whose Pareto k is above the threshold (their LOO estimate is unreliable)."""
        k = self.pointwise["pareto_k"]
        return k.index[k > _pareto_k_threshold(self.n_draws)]

    def __str__(self) -> str:
        return (
            f"Computed from {self.n_draws} draws and {len(self.pointwise)} observations.\n\n"
            f"{self.estimates().round(1).to_string()}\n\n"
            f"Pareto k diagnostic values:\n{self.pareto_k_table().round(1).to_string()}"
        )


def loo(idata: xr.DataTree, var_name: str | None = None) -> Loo:
    """PSIS-LOO for a fit with a stored log-likelihood (``course_utils.fitting.fit`` stores it).

    ``var_name`` picks the observed variable when the model has several.
    """
    if "log_likelihood" not in idata.children:
        raise ValueError(
            "this fit has no log_likelihood group; refit with log_likelihood=True "
            "(fit's default) to compute LOO"
        )
    names = list(idata.log_likelihood.data_vars)
    if var_name is None:
        if len(names) != 1:
            raise ValueError(f"the fit has several log-likelihoods {names}; pass var_name")
        var_name = names[0]
    with warnings.catch_warnings():
        # High Pareto k is reported by pareto_k_table(), where the reader can act on it.
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        result = az.loo(idata, pointwise=True, var_name=var_name)
    log_lik = idata.log_likelihood[var_name]
    obs_dims = [d for d in log_lik.dims if d not in ("chain", "draw")]
    stacked = log_lik.stack(__sample__=("chain", "draw")).transpose(*obs_dims, "__sample__")
    n_draws = stacked.sizes["__sample__"]
    lpd = logsumexp(stacked.to_numpy(), axis=-1) - math.log(n_draws)
    elpd = np.asarray(result.elpd_i).reshape(-1)
    pointwise = pd.DataFrame({
        "elpd_loo": elpd,
        "p_loo": lpd.reshape(-1) - elpd,
        "pareto_k": np.asarray(result.pareto_k).reshape(-1),
    })
    return Loo(pointwise=pointwise, n_draws=n_draws)


def loo_compare(fits: Mapping[str, "xr.DataTree | Loo"]) -> pd.DataFrame:
    """Rank fits by expected log predictive density, best first, with brms's columns.

    ``fits`` maps a model name to its fit (DataTree) or its :class:`Loo`. All must be fitted
    to the same observations, in the same order.
    """
    if len(fits) < 2:
        raise ValueError("compare at least two fits")
    results = {name: f if isinstance(f, Loo) else loo(f) for name, f in fits.items()}
    sizes = {name: len(r.pointwise) for name, r in results.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the fits have different numbers of observations: {sizes}")
    best = max(results, key=lambda name: results[name].elpd_loo)
    best_i = results[best].pointwise["elpd_loo"].to_numpy()
    rows = {}
    for name, r in results.items():
        diff_i = r.pointwise["elpd_loo"].to_numpy() - best_i
        rows[name] = [
            float(diff_i.sum()), 0.0 if name == best else _se_of_sum(diff_i),
            r.elpd_loo, r.se_elpd_loo, r.p_loo, r.se_p_loo, r.looic, r.se_looic,
        ]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=COMPARE_COLUMNS)
    return table.sort_values("elpd_diff", ascending=False, kind="stable")
