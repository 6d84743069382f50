"""Predictions from varying-intercept models, for clusters in the sample, the average
cluster and new clusters, as tidy draws (tidybayes's ``epred_draws``/``linpred_draws``).

One API serves Bambi fits and hand-written PyMC models. Three cases, as brms names them:

================================  ==========================================================
``clusters=``                     brms
================================  ==========================================================
``"sample"``                      ``re_formula = NULL``: each cluster's own varying effects
``"average"``                     ``re_formula = NA``: varying effects set to zero, i.e. a
                                  cluster exactly at the population mean
``"new"``                         ``allow_new_levels = TRUE``: clusters not in the data get
                                  new effects; clusters in the data keep their own
================================  ==========================================================

How a new cluster's effect is drawn (``new_levels=``), for every posterior draw ``s``:

- ``"gaussian"`` (default; brms ``sample_new_levels = "gaussian"``): a fresh value from
  Normal(0, sd[s]), the model's own population distribution. This is what the lecture
  does by hand for its 100 simulated chimpanzees.
- ``"uncertainty"`` (brms's default ``sample_new_levels = "uncertainty"``): the effect,
  at draw ``s``, of an existing cluster chosen at random, afresh for each draw. Bambi's
  ``sample_new_groups=True`` does the same but borrows one cluster per draw for all new
  levels together, so two new clusters come out identical; here, as in brms, each new
  level borrows independently.

Each new level in ``newdata`` (e.g. ``"New1"``, ``"New2"``) gets its own independent
effect. Drawing new effects needs ``seed``; the same seed gives the same predictions.

Example (not run here: it needs a fit)::

    people = mlm[["id"]].drop_duplicates()
    m2_epred = epred_draws((m2, m2_idata), people)
    mean_qi(m2_epred, ".epred", by=["id"])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from bambi.utils import get_aliased_name

from .names import level_name as _level
from scipy.special import expit
from scipy.stats import norm

__all__ = ["LinearModel", "VaryingIntercept", "epred_draws", "linear_predictor", "linpred_draws",
           "tidy_predictions"]

CLUSTERS = ("sample", "average", "new")
NEW_LEVELS = ("gaussian", "uncertainty")
FAMILIES = ("gaussian", "bernoulli", "cumulative")
# Inverse links: from the linear predictor to the mean (or to a cumulative probability).
INVERSE_LINKS = {
    "identity": lambda eta: eta,
    "logit": expit,
    "probit": norm.cdf,
    "cloglog": lambda eta: -np.expm1(-np.exp(eta)),
}
DEFAULT_LINKS = {"gaussian": "identity", "bernoulli": "logit", "cumulative": "logit"}


@dataclass(frozen=True)
class VaryingIntercept:
    """A varying intercept: its posterior variable (one value per cluster) and its sd's."""

    effects: str
    sd: str


@dataclass
class LinearModel:
    """What predictions need to know about a fitted model.

    Attributes
    ----------
    idata : xarray.DataTree
        The posterior.
    fixed : callable
        ``fixed(posterior, newdata)`` returns the population-level part of the linear
        predictor, an array (chain, draw, row).
    varying : mapping
        Data column naming the cluster -> its :class:`VaryingIntercept`.
    family : str
        ``"gaussian"``, ``"bernoulli"`` or ``"cumulative"`` (then ``thresholds`` names the
        cutpoints, with P(Y <= k) = F(threshold_k - eta), as in Bambi and brms).
    link : str, optional
        ``"identity"``, ``"logit"``, ``"probit"`` or ``"cloglog"``; default the family's
        usual one (identity for gaussian, logit otherwise).
    """

    idata: xr.DataTree
    fixed: Callable[[xr.Dataset, pd.DataFrame], np.ndarray]
    varying: Mapping[str, VaryingIntercept] = field(default_factory=dict)
    family: str = "gaussian"
    thresholds: str | None = None
    link: str | None = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family {self.family!r} is not supported; use one of {FAMILIES}")
        self.link = self.link or DEFAULT_LINKS[self.family]
        if self.link not in INVERSE_LINKS:
            raise NotImplementedError(f"the {self.link} link is not supported; use one of {list(INVERSE_LINKS)}")
        if self.family == "cumulative" and self.thresholds is None:
            raise ValueError("a cumulative model needs the name of its thresholds variable")


def _from_bambi(model, idata: xr.DataTree) -> LinearModel:
    """Describe a fitted Bambi model with varying intercepts as a :class:`LinearModel`.

    The population-level part is Bambi's own: its design matrix for the new data times
    the intercept and common-term coefficients, in the order Bambi stacks them.
    """
    family = model.family.name
    if family not in FAMILIES:
        raise NotImplementedError(f"predictions for the {family} family are not implemented")
    parent = model.family.likelihood.parent
    component = model.parameters[parent]
    if component.offset_terms or component.hsgp_terms:
        raise NotImplementedError("predictions for models with offset or HSGP terms are not implemented")
    varying = {}
    for name, term in component.group_specific_terms.items():
        expr, factor = name.split("|")
        if expr != "1":
            raise NotImplementedError(f"{name}: only varying intercepts (1|group) are supported")
        alias = get_aliased_name(term)
        varying[factor] = VaryingIntercept(effects=alias, sd=f"{alias}_sigma")
    terms = [get_aliased_name(term) for term in component.common_terms.values()]
    if component.intercept_term is not None:
        terms.insert(0, get_aliased_name(component.intercept_term))

    def fixed(posterior: xr.Dataset, newdata: pd.DataFrame) -> np.ndarray:
        shape = (posterior.sizes["chain"], posterior.sizes["draw"], len(newdata))
        if not terms:
            return np.zeros(shape)
        X = np.asarray(component.design.common.evaluate_new_data(newdata).design_matrix, dtype=float)
        beta = np.concatenate(
            [posterior[term].to_numpy().reshape(shape[0], shape[1], -1) for term in terms], axis=-1
        )
        if beta.shape[-1] != X.shape[1]:
            raise ValueError(f"{beta.shape[-1]} coefficients for {X.shape[1]} design columns")
        return np.einsum("nk,cdk->cdn", X, beta)

    thresholds = "threshold" if family == "cumulative" else None  # Bambi's name for the cutpoints
    if thresholds and thresholds not in idata.posterior:
        raise KeyError("the posterior has no 'threshold' variable (an alias is not supported)")
    return LinearModel(idata=idata, fixed=fixed, varying=varying, family=family, thresholds=thresholds,
                       link=model.family.link[parent].name)


def _as_linear_model(fit) -> LinearModel:
    if isinstance(fit, LinearModel):
        return fit
    if isinstance(fit, tuple) and len(fit) == 2:
        return _from_bambi(*fit)
    raise TypeError("pass a LinearModel or the (model, idata) pair of a Bambi fit")


def _cluster_effects(
    effects: xr.DataArray, sd: xr.DataArray, levels: pd.Series, clusters: str, new_levels: str,
    rng: np.random.Generator | None, column: str,
) -> np.ndarray:
    """One group's varying intercepts for each row of new data, (chain, draw, row)."""
    dim = next(d for d in effects.dims if d not in ("chain", "draw"))
    values = effects.transpose("chain", "draw", dim).to_numpy()
    if levels.isna().any():
        raise ValueError(f"newdata's {column!r} has missing values; name every cluster")
    # 1, 1.0, np.int64(1) and "1" are the same cluster.
    known = {_level(level): i for i, level in enumerate(effects[dim].to_numpy())}
    levels = levels.map(_level)
    wanted = pd.unique(levels)
    unknown = [level for level in wanted if level not in known]
    if unknown and clusters == "sample":
        raise KeyError(
            f"{column} level(s) {unknown[:5]} are not in the data the model was fitted to; "
            "predict them with clusters='new'"
        )
    columns = {level: values[:, :, known[level]] for level in wanted if level in known}
    n_chain, n_draw, n_known = values.shape
    for level in unknown:
        if new_levels == "gaussian":
            columns[level] = rng.normal(size=(n_chain, n_draw)) * sd.transpose("chain", "draw").to_numpy()
        else:
            pick = rng.integers(n_known, size=(n_chain, n_draw))
            columns[level] = np.take_along_axis(values, pick[..., None], axis=2)[..., 0]
    return np.stack([columns[level] for level in levels], axis=-1)


def linear_predictor(
    fit, newdata: pd.DataFrame, *, clusters: str = "sample", groups: Sequence[str] | None = None,
    new_levels: str = "gaussian", seed=None,
) -> np.ndarray:
    """The linear predictor for each row of ``newdata``, an array (chain, draw, row).

    ``groups`` picks which varying intercepts to include (brms ``re_formula``): default
    all of them; ``clusters="average"`` includes none. See the module docs for the rest.
    """
    fit = _as_linear_model(fit)
    if clusters not in CLUSTERS:
        raise ValueError(f"clusters must be one of {CLUSTERS}, not {clusters!r}")
    if new_levels not in NEW_LEVELS:
        raise ValueError(f"new_levels must be one of {NEW_LEVELS}, not {new_levels!r}")
    posterior = fit.idata.posterior.to_dataset()
    newdata = newdata.reset_index(drop=True)
    eta = fit.fixed(posterior, newdata)
    if clusters == "average":
        return eta
    groups = list(fit.varying) if groups is None else list(groups)
    for column in groups:
        if column not in fit.varying:
            raise KeyError(f"the model has no varying intercept per {column!r}; it has {list(fit.varying)}")
        if column not in newdata.columns:
            raise KeyError(
                f"newdata has no column {column!r}; add it, or leave that group out with "
                f"groups={[g for g in groups if g != column]}"
            )
    rng = None
    if clusters == "new":
        if seed is None:
            raise ValueError("new clusters are drawn at random: pass seed=<int> so the predictions can be reproduced")
        rng = np.random.default_rng(seed)
    for column in groups:
        term = fit.varying[column]
        eta = eta + _cluster_effects(
            posterior[term.effects], posterior[term.sd], newdata[column], clusters, new_levels, rng, column,
        )
    return eta


def _response(fit: LinearModel, eta: np.ndarray) -> np.ndarray:
    """Expected outcome: the mean, the probability, or one probability per category (last axis)."""
    inverse = INVERSE_LINKS[fit.link]
    if fit.family != "cumulative":
        return inverse(eta)
    tau = fit.idata.posterior[fit.thresholds].transpose("chain", "draw", ...).to_numpy()
    below = inverse(tau[:, :, None, :] - eta[..., None])  # P(Y <= k), k = 1 .. K-1
    shape = below.shape[:-1] + (1,)
    cumulative = np.concatenate([np.zeros(shape), below, np.ones(shape)], axis=-1)
    return np.diff(cumulative, axis=-1)


def _long(newdata: pd.DataFrame, values: np.ndarray, column: str) -> pd.DataFrame:
    """Draws (chain, draw, row[, category]) as a long table joined to ``newdata``."""
    newdata = newdata.reset_index(drop=True)
    n_chain, n_draw, n_row = values.shape[:3]
    n_cat = values.shape[3] if values.ndim == 4 else 1
    per_row = n_chain * n_draw * n_cat
    order = values.transpose(2, 3, 0, 1) if values.ndim == 4 else values.transpose(2, 0, 1)
    frame = newdata.loc[np.repeat(np.arange(n_row), per_row)].reset_index(drop=True)
    frame[".row"] = np.repeat(np.arange(n_row), per_row)
    groups = [*newdata.columns, ".row"]
    if values.ndim == 4:
        frame[".category"] = np.tile(np.repeat(np.arange(1, n_cat + 1), n_chain * n_draw), n_row)
        groups.append(".category")
    frame[column] = order.reshape(-1)
    frame[".chain"] = np.tile(np.repeat(np.arange(1, n_chain + 1), n_draw), n_row * n_cat)
    frame[".iteration"] = np.tile(np.arange(1, n_draw + 1), n_chain * n_row * n_cat)
    frame[".draw"] = np.tile(np.arange(1, n_chain * n_draw + 1), n_row * n_cat)
    frame.attrs["groups"] = groups
    return frame


def epred_draws(
    fit, newdata: pd.DataFrame, *, clusters: str = "sample", groups: Sequence[str] | None = None,
    new_levels: str = "gaussian", seed: int | None = None,
) -> pd.DataFrame:
    """Draws of the expected outcome for each row of ``newdata``, long (tidybayes's ``epred_draws``).

    Parameters
    ----------
    fit : LinearModel or (bambi.Model, DataTree)
        A fitted model; a ``(bambi.Model, idata)`` pair, e.g. ``fit_bambi``'s return value.
    newdata : DataFrame
        Predictor values, and cluster columns unless ``clusters="average"``.
    clusters, groups, new_levels, seed
        Which varying effects to use and how to draw new clusters' (module docs).

    Returns
    -------
    DataFrame
        ``newdata``'s columns, ``.row`` (position in ``newdata``), for a cumulative model
        ``.category`` (1 to K), then ``.epred`` (the mean, probability or category
        probability) and ``.chain``, ``.iteration``, ``.draw``.
    """
    model = _as_linear_model(fit)
    eta = linear_predictor(model, newdata, clusters=clusters, groups=groups, new_levels=new_levels, seed=seed)
    return _long(newdata, _response(model, eta), ".epred")


def linpred_draws(
    fit, newdata: pd.DataFrame, *, clusters: str = "sample", groups: Sequence[str] | None = None,
    new_levels: str = "gaussian", seed: int | None = None,
) -> pd.DataFrame:
    """Like :func:`epred_draws`, on the linear-predictor scale (column ``.linpred``)."""
    eta = linear_predictor(fit, newdata, clusters=clusters, groups=groups, new_levels=new_levels, seed=seed)
    return _long(newdata, eta, ".linpred")


def tidy_predictions(predicted, newdata: pd.DataFrame) -> pd.DataFrame:
    """``model.predict``'s probabilities as a long table in :func:`epred_draws`'s layout.

    The gap it fills: Bambi's ``model.predict(idata, data=newdata, kind="response_params",
    inplace=False)`` returns the draws as an xarray array (``posterior["p"]`` for a
    cumulative model, ``posterior["mu"]`` otherwise) indexed by the rows of ``newdata``
    (``__obs__``) without ``newdata``'s own columns, which seaborn's figures and the
    grader need beside each probability.

    Parameters
    ----------
    predicted : xarray.DataTree or DataFrame
        What ``model.predict(..., kind="response_params", inplace=False)`` returned. A
        DataFrame (e.g. from :func:`epred_draws`) is returned as it is.
    newdata : DataFrame
        The data given to ``model.predict``, one row per ``__obs__``.

    Returns
    -------
    DataFrame
        ``newdata``'s columns, ``.row``, ``.category`` (1 to K, for a cumulative model),
        ``.epred`` and ``.chain``, ``.iteration``, ``.draw`` (counted from 1).
    """
    if isinstance(predicted, pd.DataFrame):
        return predicted
    posterior = getattr(predicted, "posterior", None)
    if posterior is None:
        raise TypeError(f"expected what model.predict(..., inplace=False) returns, not {type(predicted).__name__}")
    name = next((v for v in ("p", "mu") if v in posterior), None)
    if name is None:
        raise ValueError("the predictions hold no probabilities or means (posterior['p'] or ['mu']): "
                         "use model.predict(..., kind=\"response_params\", inplace=False)")
    values = posterior[name]
    obs = next((d for d in values.dims if d.startswith("__obs__")), None)
    if obs is None or values.sizes[obs] != len(newdata):
        raise ValueError(f"the predictions are for {values.sizes.get(obs, 0)} rows but newdata has {len(newdata)}: "
                         "pass model.predict the same rows (data=newdata)")
    rest = [d for d in values.dims if d not in ("chain", "draw", obs)]
    return _long(newdata, values.transpose("chain", "draw", obs, *rest).to_numpy(), ".epred")
