"""Fit models with explicit seeds, through the fit cache.

``fit_bambi`` is the one call chapters, exercises and the grader use to fit a Bambi
model: it builds the model, and samples only when no cached fit matches everything that
determines the posterior (see :mod:`course_utils.cache`). ``fit_pymc`` does the same for
a hand-written PyMC model, keyed on the model's log-density graph and every constant in
it (priors' parameters, data, indices).

Example (not run here: it needs a fit)::

    import bambi as bmb
    from course_utils.fitting import fit_bambi
    m2, m2_idata = fit_bambi(
        "m2", "con ~ 1 + (1 | id)", mlm, family="gaussian",
        priors={"Intercept": bmb.Prior("Normal", mu=0, sigma=1.5),
                "1|id": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)),
                "sigma": bmb.Prior("Exponential", lam=1)},
        categorical=["id"], seed=9)
"""

from __future__ import annotations

import hashlib
import json
import inspect
import os
import sys
from collections.abc import Mapping, Sequence

import arviz as az
import bambi as bmb
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import ancestors
import xarray as xr

from .cache import cached_idata, to_jsonable

__all__ = ["data_hash", "fit_bambi", "fit_key", "fit_pymc", "fit_spec", "pymc_model_key", "sampling_code_hash"]

SPEC_ATTR = "course_spec"


def data_hash(data: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's content: column names, dtypes and every value, in order.

    For categorical columns the categories and their order count too: they decide the
    reference level and the order of an ordinal outcome.
    """
    digest = hashlib.sha256()
    dtypes = []
    for column, dtype in data.dtypes.items():
        entry = [str(column), str(dtype)]
        if isinstance(dtype, pd.CategoricalDtype):
            entry += [[str(c) for c in dtype.categories], bool(dtype.ordered)]
        dtypes.append(entry)
    digest.update(json.dumps(dtypes).encode())
    digest.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    return digest.hexdigest()


# fit_bambi's model and sampler settings, with their defaults; all of them are in the key.
MODEL_DEFAULTS = {"family": "gaussian", "priors": None, "link": None, "categorical": None, "noncentered": True}
SAMPLER_DEFAULTS = {"draws": 1000, "tune": 1000, "chains": 4, "sampler": "pymc", "log_likelihood": True}


# The functions whose code decides how a model is sampled; their source is part of every
# fit's key, so changing them (say, the cutpoints' starting point) refits.
_SAMPLING_CODE = ("_sample_nutpie", "_run_kwargs", "_ordered_threshold_prior", "_threshold_start",
                  "fit_bambi", "fit_pymc")


def sampling_code_hash() -> str:
    """SHA-256 of the source of the course's sampling functions."""
    module = sys.modules[__name__]
    source = "".join(inspect.getsource(getattr(module, name)) for name in _SAMPLING_CODE)
    return hashlib.sha256(source.encode()).hexdigest()


def fit_key(formula: str, data: pd.DataFrame, *, seed: int, sample_kwargs: Mapping | None = None, **settings) -> dict:
    """Everything that determines a Bambi fit's posterior, as a plain dict.

    ``settings`` are :func:`fit_bambi`'s model and sampler arguments (``family``,
    ``priors``, ``link``, ``categorical``, ``noncentered``, ``draws``, ``tune``,
    ``chains``, ``sampler``, ``log_likelihood``); missing ones take their defaults.
    ``cores`` and ``progressbar`` are not settings: they change how the chains run, not
    the draws (each chain's seed is derived from ``seed``).
    """
    unknown = set(settings) - set(MODEL_DEFAULTS) - set(SAMPLER_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown fit setting(s) {sorted(unknown)}")
    merged = {**MODEL_DEFAULTS, **SAMPLER_DEFAULTS, **settings}
    merged["categorical"] = sorted(merged["categorical"] or [])
    return {
        "interface": "bambi",
        "code": sampling_code_hash(),
        "formula": str(formula),
        "data": data_hash(data),
        "seed": seed,
        **{name: to_jsonable(value) for name, value in merged.items()},
        "sample_kwargs": to_jsonable(sample_kwargs or {}),
    }


def _sample_nutpie(
    model: pm.Model, *, draws: int, tune: int, chains: int, seed: int, cores: int | None,
    progressbar: bool, log_likelihood: bool, initial_points: Mapping | None = None, **nutpie_kwargs,
) -> xr.DataTree:
    """Sample a PyMC model with nutpie (NUTS in Rust, compiled with numba).

    ``initial_points`` are given to the sampler, not to the model: a model with initial
    values of its own cannot have its log-likelihood computed afterwards by PyMC. The
    pointwise log-likelihood is computed once the draws are in. (PyMC's own route to
    nutpie, ``pm.sample(nuts_sampler="nutpie")``, ignores both initial values and
    ``idata_kwargs``, hence this function.)
    """
    import nutpie

    # Keep the parameters and the derived quantities, not Bambi's per-observation ones
    # (for Trolley, 9,930 x 7 probabilities per draw).
    dims = model.named_vars_to_dims
    keep = [rv.name for rv in model.free_RVs] + [
        d.name for d in model.deterministics if "__obs__" not in dims.get(d.name, ())
    ]
    compiled = nutpie.compile_pymc_model(
        model, initial_points=dict(initial_points or {}) or None, var_names=keep,
    )
    idata = nutpie.sample(
        compiled, draws=draws, tune=tune, chains=chains, seed=seed, save_warmup=False,
        cores=cores if cores is not None else min(chains, os.cpu_count() or 1),
        progress_bar=progressbar, **nutpie_kwargs,
    )
    # nutpie also stores the sampler's unconstrained values (sigma_log__, ...): not parameters.
    raw = {model.rvs_to_values[rv].name for rv in model.free_RVs} - {rv.name for rv in model.free_RVs}
    idata["posterior"] = idata.posterior.to_dataset().drop_vars(sorted(raw & set(idata.posterior.data_vars)))
    if log_likelihood:
        with model:
            pm.compute_log_likelihood(idata, extend_inferencedata=True, progressbar=False)
    return idata


def _run_kwargs(chains: int, cores: int | None, progressbar: bool, log_likelihood: bool) -> dict:
    """How the chains run: one process per core by default; not part of the cache key."""
    return {
        "cores": cores if cores is not None else min(chains, os.cpu_count() or 1),
        "progressbar": progressbar,
        "idata_kwargs": {"log_likelihood": log_likelihood},
    }


def _describe(idata: xr.DataTree, description: Mapping, **run) -> None:
    """Store what the summary header prints (refreshed on every call, cached fit or not)."""
    posterior = idata.posterior
    posterior.attrs[SPEC_ATTR] = json.dumps({
        **to_jsonable(dict(description)), **run,
        "chains": posterior.sizes["chain"], "draws": posterior.sizes["draw"],
    })


def _brms_links(model: bmb.Model) -> dict[str, str]:
    """The links brms prints: the mean parameter as ``mu``; a parameter without a linear
    predictor of its own (e.g. a constant ``sigma``) has the identity link."""
    parent = model.family.likelihood.parent
    links = {"mu": model.family.link[parent].name}
    for param in model.family.likelihood.params:
        if param != parent and param in model.family.link and param != "threshold":
            modelled = param in model.distributional_components
            links[param] = model.family.link[param].name if modelled else "identity"
    return links


def _ordered_threshold_prior(family, priors: dict) -> dict:
    """Keep a user's prior on a cumulative model's cutpoints a prior on *ordered* cutpoints.

    In Bambi (0.17 to 0.21.0 at least) a prior given for ``threshold`` replaces Bambi's own,
    ordered transform included, so the cutpoints are no longer kept in order and the model
    fails at its starting point (all cutpoints 0; nutpie: "All initialization points
    failed"). No upstream issue existed when this was checked; the report to file is
    ``upstream/bambi-threshold-prior.md``. The ordered transform is added back here; see
    :func:`_threshold_start` for the starting point. (Bambi's ``sratio`` cutpoints are not
    ordered, and are left alone.)
    """
    name = family if isinstance(family, str) else getattr(family, "name", None)
    prior = priors.get("threshold")
    if name != "cumulative" or prior is None or "transform" in prior.args:
        return priors
    ordered = bmb.Prior(prior.name, **prior.args, transform=pm.distributions.transforms.ordered)
    return {**priors, "threshold": ordered}


def _threshold_start(model: bmb.Model) -> dict:
    """The sampler's starting cutpoints for a cumulative model with ordered cutpoints: the
    logits of the observed cumulative proportions of the response categories.

    Given to the sampler, not set on the model: PyMC cannot compute the log-likelihood of
    a model with initial values of its own.
    """
    prior = model.components["threshold"].prior if "threshold" in model.components else None
    if model.family.name != "cumulative" or prior is None or "transform" not in prior.args:
        return {}
    term = model.response_component.term
    codes = np.asarray(term.data).astype(int)  # 0 .. K-1, in Bambi's order of the levels
    shares = np.cumsum(np.bincount(codes, minlength=len(term.levels)) / len(codes))[:-1]
    shares = np.clip(shares, 1e-3, 1 - 1e-3)  # an unobserved first or last category
    cutpoints = np.log(shares) - np.log1p(-shares)
    # A small step keeps them strictly increasing if a middle category was never observed.
    return {"threshold": cutpoints + np.arange(len(cutpoints)) * 1e-3}


def fit_spec(idata: xr.DataTree) -> dict:
    """The description :func:`fit_bambi` stored with a fit (formula, family, sizes)."""
    return json.loads(idata.posterior.attrs.get(SPEC_ATTR, "{}"))


def fit_bambi(
    name: str,
    formula: str,
    data: pd.DataFrame,
    *,
    family="gaussian",
    priors: Mapping | None = None,
    link=None,
    categorical: Sequence[str] | None = None,
    noncentered: bool = True,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int,
    sampler: str = "pymc",
    log_likelihood: bool = True,
    cores: int | None = None,
    progressbar: bool = False,
    cache: str | os.PathLike | None = None,
    refit: bool = False,
    **sample_kwargs,
) -> tuple[bmb.Model, xr.DataTree]:
    """Build a Bambi model and return it with its posterior, fitted or from the cache.

    Parameters
    ----------
    name : str
        The fit's name in the cache, e.g. ``"m2"``.
    formula, data, family, priors, link, categorical, noncentered
        Passed to :class:`bambi.Model`. For a cumulative family, a prior on
        ``threshold`` is kept ordered (see :func:`_ordered_threshold_prior`).
    draws, tune, chains : int
        Post-warm-up draws and warm-up iterations per chain, and the number of chains
        (brms's ``iter = tune + draws``, ``warmup = tune``).
    seed : int
        Required: the same inputs and seed give the same draws.
    sampler : str
        ``"pymc"`` (PyMC's NUTS), ``"nutpie"`` (nutpie on Bambi's PyMC model; extra
        keyword arguments such as ``adaptation="low_rank"`` go to
        ``nutpie.sample``) or another of Bambi's ``inference_method`` values.
    log_likelihood : bool
        Store the pointwise log-likelihood (needed for LOO).
    cores, progressbar
        How to run the chains; default one process per core, no progress bar.
    cache : path, optional
        The cache folder (default :func:`course_utils.cache.cache_dir`).
    refit : bool
        Sample even when a matching cached fit exists.
    **sample_kwargs
        Passed on to the sampler (e.g. ``target_accept=0.95``); part of the cache key.

    Returns
    -------
    (bambi.Model, xarray.DataTree)
        The built model (for predictions) and its posterior.
    """
    settings = dict(
        family=family, priors=priors, link=link, categorical=categorical, noncentered=noncentered,
        draws=draws, tune=tune, chains=chains, sampler=sampler, log_likelihood=log_likelihood,
    )
    key = fit_key(formula, data, seed=seed, sample_kwargs=sample_kwargs, **settings)
    model = bmb.Model(
        formula, data, family=family, priors=_ordered_threshold_prior(family, dict(priors or {})) or None,
        link=link, categorical=list(categorical) if categorical else None, noncentered=noncentered,
    )
    start = _threshold_start(model)

    def sample() -> xr.DataTree:
        if sampler == "nutpie":
            model.build()
            extra = dict(sample_kwargs)
            extra["initial_points"] = {**start, **extra.get("initial_points", {})}
            idata = _sample_nutpie(
                model.backend.model, draws=draws, tune=tune, chains=chains, seed=seed, cores=cores,
                progressbar=progressbar, log_likelihood=log_likelihood, **extra,
            )
            # Bambi's own post-processing: drop offsets, order dims, undo predictor centring.
            return model.backend._clean_results(idata, omit_offsets=True, include_response_params=False)
        extra = dict(sample_kwargs)
        if start:
            extra["initvals"] = {**start, **extra.get("initvals", {})}
        return model.fit(
            draws=draws, tune=tune, chains=chains, random_seed=seed, inference_method=sampler,
            **_run_kwargs(chains, cores, progressbar, log_likelihood), **extra,
        )

    idata = cached_idata(name, key, sample, folder=cache, refit=refit)
    _describe(idata, {
        "formula": str(formula), "family": model.family.name, "links": _brms_links(model),
        "nobs": int(len(data)), "response": model.response_component.response.name,
    }, name=name, tune=tune, sampler=sampler, seed=seed)
    if not model.built:
        model.build()
    return model, idata


def pymc_model_key(model: pm.Model) -> dict:
    """A PyMC model's identity: its log-density and deterministic graphs, their constants
    and the coordinates.

    Any change of a distribution, a prior's parameter, the data, the indices or a derived
    quantity changes the printed graph or the hash of its constants.
    """
    # What is sampled and what is derived. Deterministics are taken in terms of the value
    # variables: through the random variables they would bring in random generators, whose
    # printed form (a memory address) changes from one process to the next.
    outputs = [model.logp(), *model.replace_rvs_by_values(model.deterministics)]
    graph = pytensor.printing.debugprint(outputs, file="str", print_type=True)
    digest = hashlib.sha256()
    for node in ancestors(outputs):
        if isinstance(node, (Constant, SharedVariable)):
            value = node.data if isinstance(node, Constant) else node.get_value()
            digest.update(str(getattr(value, "dtype", type(value))).encode())
            digest.update(getattr(value, "tobytes", lambda: repr(value).encode())())
    coords = {name: [str(v) for v in values] for name, values in model.coords.items()}
    return {
        "graph": hashlib.sha256(graph.encode()).hexdigest(),
        "constants": digest.hexdigest(),
        "coords": coords,
        "free": [rv.name for rv in model.free_RVs],
        "observed": [rv.name for rv in model.observed_RVs],
        "deterministic": [d.name for d in model.deterministics],
    }


def fit_pymc(
    name: str,
    model: pm.Model,
    *,
    description: Mapping,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int,
    sampler: str = "pymc",
    log_likelihood: bool = True,
    cores: int | None = None,
    progressbar: bool = False,
    cache: str | os.PathLike | None = None,
    refit: bool = False,
    **sample_kwargs,
) -> xr.DataTree:
    """Sample a hand-written PyMC model, or load its cached posterior.

    ``sampler`` is ``"pymc"`` (PyMC's NUTS) or ``"nutpie"``; extra keyword arguments go to
    the sampler (for nutpie e.g. ``adaptation="low_rank"`` or
    ``initial_points={...}``) and are part of the cache key.

    ``description`` is what the brms-style summary prints in its header: ``formula``,
    ``family``, ``links`` (e.g. ``{"mu": "logit"}``) and ``nobs``. Name the model's
    variables the brms way (``b_...``, ``sd_<group>__...``, ``r_<group>...``) so the
    course's summaries, draws and predictions read them. Other arguments as in
    :func:`fit_bambi`.
    """
    key = {
        "interface": "pymc",
        "code": sampling_code_hash(),
        "model": pymc_model_key(model),
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "log_likelihood": log_likelihood,
        "sample_kwargs": to_jsonable(sample_kwargs),
    }

    def sample() -> xr.DataTree:
        if sampler == "nutpie":
            return _sample_nutpie(
                model, draws=draws, tune=tune, chains=chains, seed=seed, cores=cores,
                progressbar=progressbar, log_likelihood=log_likelihood, **sample_kwargs,
            )
        with model:
            # PyMC's own NUTS, named: since PyMC 6, pm.sample picks nutpie by itself when it is
            # installed and no callback is given, so the draws would depend on whether the
            # progress callback is there.
            return pm.sample(
                draws=draws, tune=tune, chains=chains, random_seed=seed, nuts_sampler="pymc",
                **_run_kwargs(chains, cores, progressbar, log_likelihood), **sample_kwargs,
            )

    idata = cached_idata(name, key, sample, folder=cache, refit=refit)
    _describe(idata, description, name=name, tune=tune, sampler=sampler, seed=seed)
    return idata

