"""The quantities the Trolley exercises are graded on, computed from posterior draws.

The reference and every student are summarised by the same functions, in the grader's
own process: a student's own tables are only compared with these, never trusted.

- :func:`parameter_stats`: mean, sd, their Monte Carlo standard errors (MCSE) and the
  95% interval of the cutpoints, coefficients and sd(id), under brms's names.
- :func:`cumulative_log_lik` and :func:`loo_stats`: the pointwise log-likelihood of a
  cumulative-logit model recomputed from its draws and the data, then PSIS-LOO with an
  MCSE for ``elpd_loo``.
- :func:`category_probabilities`, :func:`prediction_stats`: predicted probabilities of
  the seven ratings, as a mean and MCSE per row and category.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import arviz as az
from arviz_stats.base import array_stats
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit, logsumexp
from scipy.stats import norm

from course_utils.loo import Loo

__all__ = [
    "COEFFICIENTS", "CUTPOINTS", "STORY_COLUMNS", "SD_ID", "INTERCEPTS",
    "parameter_stats", "ess", "mcse_sd", "draws_matrix", "linear_predictor", "category_probabilities",
    "mean_mcse", "cumulative_log_lik", "loo_stats", "prediction_stats", "new_participant_probabilities",
]

COEFFICIENTS = ("action", "intention", "contact")
CUTPOINTS = "threshold"
SD_ID = "1|id_sigma"
INTERCEPTS = "1|id"
STORY_COLUMNS = ["action", "intention", "contact"]
N_CATEGORIES = 7  # the ratings 1 to 7
#: The kinds of story: every combination of action, intention and contact in the data.
N_STORIES = 6


def ess(values: np.ndarray, method: str = "mean") -> np.ndarray:
    """ArviZ's ESS of draws shaped (chain, draw, ...), one value per trailing element."""
    values = np.asarray(values, dtype=float)
    dims = ["chain", "draw", *[f"d{i}" for i in range(values.ndim - 2)]]
    return az.ess(xr.Dataset({"v": (dims, values)}), method=method)["v"].values


def mean_mcse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over draws and its MCSE (sd over the square root of the mean-ESS), for an
    array shaped (chain, draw, ...)."""
    values = np.asarray(values, dtype=float)
    return values.mean(axis=(0, 1)), values.std(axis=(0, 1), ddof=1) / np.sqrt(ess(values))


def mcse_sd(values: np.ndarray) -> float:
    """MCSE of the posterior sd of draws shaped (chain, draw).

    ArviZ's formula (its ``mcse(method="sd")`` fails on NumPy 2 when numba is
    installed): the variance of the squared deviations over their ESS, by the delta method.
    """
    centred2 = (values - values.mean()) ** 2
    evar = centred2.mean()
    varvar = ((centred2**2).mean() - evar**2) / float(ess(centred2))
    return float(np.sqrt(varvar / evar / 4))


def _stats(values: np.ndarray) -> dict[str, float]:
    """Summary of one scalar's draws shaped (chain, draw)."""
    values = np.asarray(values, dtype=float)
    return {
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)),
        "mcse_mean": float(mean_mcse(values)[1]),
        "mcse_sd": mcse_sd(values),
        "q2.5": float(np.quantile(values, 0.025)),
        "q97.5": float(np.quantile(values, 0.975)),
        "ess_bulk": float(ess(values, "bulk")),
    }


def parameter_stats(posterior: xr.Dataset) -> dict[str, dict[str, float]]:
    """Statistics of every graded parameter the posterior has, keyed by brms name.

    ``b_Intercept[1]`` … ``b_Intercept[6]`` are the cutpoints, ``b_action`` etc. the
    coefficients and ``sd_id__Intercept`` the sd of the participant intercepts. A
    parameter the posterior lacks is left out (the checks say what is missing).
    """
    out = {}
    if CUTPOINTS in posterior:
        cut = posterior[CUTPOINTS]
        cut_dim = [d for d in cut.dims if d not in ("chain", "draw")]
        if len(cut_dim) == 1:
            for k in range(cut.sizes[cut_dim[0]]):
                out[f"b_Intercept[{k + 1}]"] = _stats(cut.isel({cut_dim[0]: k}).transpose("chain", "draw").values)
    for term in COEFFICIENTS:
        if term in posterior and posterior[term].ndim == 2:
            out[f"b_{term}"] = _stats(posterior[term].transpose("chain", "draw").values)
    if SD_ID in posterior and posterior[SD_ID].ndim == 2:
        out["sd_id__Intercept"] = _stats(posterior[SD_ID].transpose("chain", "draw").values)
    return out


def draws_matrix(posterior: xr.Dataset, var: str) -> np.ndarray:
    """A variable's draws as (chain, draw, ...) numpy, its non-sample dims last."""
    da = posterior[var]
    return da.transpose("chain", "draw", ...).values.astype(float)


def linear_predictor(posterior: xr.Dataset, rows: pd.DataFrame, intercepts: np.ndarray | None = None) -> np.ndarray:
    """eta = action, intention, contact times their coefficients (+ intercepts), per draw.

    ``intercepts`` is (chain, draw, len(rows)) or None for the average participant.
    Returns (chain, draw, len(rows)).
    """
    first = draws_matrix(posterior, COEFFICIENTS[0])
    eta = np.zeros((*first.shape, len(rows)))
    for term in COEFFICIENTS:
        eta += draws_matrix(posterior, term)[..., None] * rows[term].to_numpy(dtype=float)
    if intercepts is not None:
        eta = eta + intercepts
    return eta


def category_probabilities(cutpoints: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """P(rating = k) for k = 1..K under the cumulative logit model.

    ``cutpoints`` is (chain, draw, K-1) and ``eta`` (chain, draw, n); the result is
    (chain, draw, n, K): ``logistic(tau_k - eta) - logistic(tau_{k-1} - eta)``.
    """
    cdf = expit(cutpoints[:, :, None, :] - eta[..., None])
    ones = np.ones((*cdf.shape[:-1], 1))
    return np.diff(np.concatenate([0 * ones, cdf, ones], axis=-1), axis=-1)


def _intercepts_for(posterior: xr.Dataset, ids: Iterable) -> np.ndarray:
    """Participant intercept draws (chain, draw, n) for the given ids, by level name."""
    da = posterior[INTERCEPTS]
    level_dim = [d for d in da.dims if d not in ("chain", "draw")][0]
    levels = {str(v): i for i, v in enumerate(da[level_dim].values)}
    missing = sorted({str(i) for i in ids} - levels.keys())
    if missing:
        raise KeyError(f"no intercept for participant(s) {missing[:5]}")
    index = [levels[str(i)] for i in ids]
    return da.transpose("chain", "draw", level_dim).values[:, :, index].astype(float)


def cumulative_log_lik(posterior: xr.Dataset, data: pd.DataFrame, chunk: int = 2000) -> np.ndarray:
    """Pointwise log-likelihood (chain, draw, n) of the ratings in ``data``.

    Uses the participant intercepts when the posterior has them. Computed in chunks of
    observations so that 4,000 draws of 9,930 ratings stay within a few hundred MB.
    """
    tau = draws_matrix(posterior, CUTPOINTS)
    n_chain, n_draw, n_cut = tau.shape
    y = data["response"].astype(int).to_numpy()
    if y.min() < 1 or y.max() > n_cut + 1:
        raise ValueError(f"ratings must lie in 1..{n_cut + 1}")
    padded = np.concatenate([np.full((n_chain, n_draw, 1), -np.inf), tau, np.full((n_chain, n_draw, 1), np.inf)], axis=-1)
    out = np.empty((n_chain, n_draw, len(data)))
    has_id = INTERCEPTS in posterior
    for start in range(0, len(data), chunk):
        rows = data.iloc[start:start + chunk]
        alpha = _intercepts_for(posterior, rows["id"]) if has_id else None
        eta = linear_predictor(posterior, rows, alpha)
        k = y[start:start + chunk]
        upper = expit(padded[:, :, k] - eta)
        lower = expit(padded[:, :, k - 1] - eta)
        out[:, :, start:start + chunk] = np.log(np.clip(upper - lower, 1e-300, None))
    return out


def loo_stats(log_lik: np.ndarray, posterior: xr.Dataset) -> tuple[Loo, float]:
    """PSIS-LOO from a (chain, draw, n) log-likelihood, and the MCSE of ``elpd_loo``.

    The relative efficiency is ArviZ's (the posterior's mean ESS over its draws), so
    ``elpd_loo`` equals ``az.loo``'s on the same log-likelihood. The MCSE is the delta-method error of each
    observation's self-normalised importance-sampling estimate, summed over observations:
    ``var(log E_i) ~ sum_s w_s^2 (p_s - E_i)^2 / (r_eff E_i^2)``.
    """
    n_chain, n_draw, n_obs = log_lik.shape
    n_samples = n_chain * n_draw
    if n_chain == 1:
        r_eff = 1.0
    else:
        ess_p = az.ess(posterior, method="mean")
        r_eff = float(np.hstack([ess_p[v].values.ravel() for v in ess_p.data_vars]).mean() / n_samples)
    stacked = log_lik.reshape(n_samples, n_obs).T  # (n, S)
    # ArviZ's PSIS (arviz_stats takes the log-likelihood itself, not its negative), normalised.
    log_w, pareto_k = array_stats.psislw(stacked, r_eff=r_eff)
    log_w = np.asarray(log_w) - logsumexp(log_w, axis=1, keepdims=True)
    elpd_i = logsumexp(log_w + stacked, axis=1)
    lpd_i = logsumexp(stacked, axis=1) - math.log(n_samples)
    var_log = np.empty(n_obs)
    for start in range(0, n_obs, 1000):  # in chunks: three (n, S) temporaries otherwise
        part = slice(start, start + 1000)
        e = np.exp(elpd_i[part])
        w2 = np.exp(2 * log_w[part])
        var_log[part] = (w2 * (np.exp(stacked[part]) - e[:, None]) ** 2).sum(axis=1) / (r_eff * e**2)
    pointwise = pd.DataFrame({"elpd_loo": elpd_i, "p_loo": lpd_i - elpd_i, "pareto_k": np.asarray(pareto_k)})
    return Loo(pointwise=pointwise, n_draws=n_samples), float(np.sqrt(var_log.sum()))


def prediction_stats(frame: pd.DataFrame, keys: list[str], value: str = ".epred") -> pd.DataFrame:
    """Mean and MCSE of ``value`` per combination of ``keys`` in a tidy draws frame.

    ``frame`` has ``.chain`` and ``.iteration`` (or ``.draw``) columns, one row per draw,
    as :func:`course_utils.predictions.epred_draws` returns; the draws are put in order
    within each chain for the MCSE. Returns one row per
    combination of ``keys`` with ``mean``, ``mcse`` and ``n_draws``.
    """
    order = ".iteration" if ".iteration" in frame else ".draw"
    rows = []
    for group, part in frame.sort_values([".chain", order]).groupby(keys, sort=True, observed=True):
        chains = part.groupby(".chain", sort=True)[value].apply(lambda v: v.to_numpy(dtype=float))
        length = min(len(v) for v in chains)
        values = np.stack([v[:length] for v in chains])  # (chain, draw); equal lengths in any real fit
        group = group if isinstance(group, tuple) else (group,)
        mcse = float(mean_mcse(values)[1]) if length >= 4 else math.inf
        rows.append({**dict(zip(keys, group)), "mean": float(values.mean()), "mcse": mcse, "n_draws": values.size})
    return pd.DataFrame(rows)


def new_participant_probabilities(posterior: xr.Dataset, rows: pd.DataFrame, nodes: int = 64) -> dict[str, np.ndarray]:
    """Expected category probabilities (chain, draw, n, K) for a participant not in the data.

    ``"gaussian"``: the intercept integrated over Normal(0, sd(id)) at ``nodes`` equally
    spaced quantiles in every draw (brms ``sample_new_levels = "gaussian"``).
    ``"uncertainty"``: averaged over the 331 participants' own intercepts in every draw
    (brms's default, ``"uncertainty"``). Either is the expectation that a new
    participant's draws estimate.
    """
    tau = draws_matrix(posterior, CUTPOINTS)
    eta = linear_predictor(posterior, rows)
    sd = draws_matrix(posterior, SD_ID)
    z = norm.ppf((np.arange(nodes) + 0.5) / nodes)
    gaussian = np.mean([category_probabilities(tau, eta + (sd * q)[..., None]) for q in z], axis=0)
    alpha = draws_matrix(posterior, INTERCEPTS)
    uncertainty = np.zeros_like(gaussian)
    for j in range(alpha.shape[-1]):
        uncertainty += category_probabilities(tau, eta + alpha[:, :, j, None])
    return {"gaussian": gaussian, "uncertainty": uncertainty / alpha.shape[-1]}


def probability_table(rows: pd.DataFrame, probs: np.ndarray, key_columns: list[str]) -> pd.DataFrame:
    """Mean and MCSE of (chain, draw, n, K) probabilities as a long table by row and category."""
    mean, mcse = mean_mcse(probs)
    n, k = mean.shape
    table = rows[key_columns].loc[rows.index.repeat(k)].reset_index(drop=True)
    table[".category"] = np.tile(np.arange(1, k + 1), n)
    table["mean"] = mean.reshape(-1)
    table["mcse"] = mcse.reshape(-1)
    return table


def stories(data: pd.DataFrame) -> pd.DataFrame:
    """The six combinations of action, intention and contact in the data, in a fixed order."""
    return data[STORY_COLUMNS].drop_duplicates().sort_values(STORY_COLUMNS).reset_index(drop=True).astype(int)


def as_records(table: pd.DataFrame) -> list[dict]:
    """A table as JSON-ready records (ids as text, numbers as floats)."""
    out = []
    for record in table.to_dict(orient="records"):
        out.append({k: (str(v) if k == "id" else (int(v) if k in (*STORY_COLUMNS, ".category") else float(v)))
                    for k, v in record.items()})
    return out


def from_records(records: Iterable[Mapping]) -> pd.DataFrame:
    return pd.DataFrame(list(records))
