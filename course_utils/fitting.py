"""Fit models with explicit seeds, through the fit cache.

A chapter builds its model with Bambi, in view, and fits it with :func:`fit`, which takes
:meth:`bambi.Model.fit`'s own keyword arguments and adds only what Bambi lacks:

- a fit cache in the spirit of brms's ``file=`` argument (:mod:`course_utils.cache`),
  keyed on the model's PyMC graph, the sampler settings, the seed and the library
  versions, so a book build samples each model once;
- for a cumulative model with a prior on its cutpoints, the ordered transform Bambi drops
  (see :func:`_keep_cutpoints_ordered`) and a starting point the sampler can use;
- for ``inference_method="nutpie"``, the starting point and the pointwise
  log-likelihood, which ``pm.sample(nuts_sampler="nutpie")`` (Bambi's route) ignores.

Replacing ``fit(model, "m2", random_seed=9, ...)`` by ``model.fit(random_seed=9, ...)``
gives the same draws with PyMC's sampler (``tests/test_fitting.py`` checks it), without
the cache; with ``inference_method="nutpie"`` the same posterior up to Monte Carlo error.
The exception is the gap this module fills: a cumulative model with a prior of one's own
on its cutpoints, which ``model.fit`` cannot start.
:func:`fit_pymc` does the same for a hand-written PyMC model. :func:`fit_bambi` builds
the Bambi model from its arguments first (the grader rebuilds students' models that way).

Example (not run here: it needs a fit)::

    import bambi as bmb
    from course_utils.fitting import fit
    m2 = bmb.Model(
        "con ~ 1 + (1 | id)", mlm, categorical=["id"],
        priors={"Intercept": bmb.Prior("Normal", mu=0, sigma=1.5),
                "1|id": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)),
                "sigma": bmb.Prior("Exponential", lam=1)})
    m2_idata = fit(m2, "m2", draws=1000, tune=1000, chains=4, random_seed=9)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence

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
from .progress import hooks

__all__ = ["SAMPLING_VERSION", "data_hash", "fit", "fit_bambi", "fit_pymc", "fit_spec", "pymc_model_key"]

SPEC_ATTR = "course_spec"

#: The version of how this module samples, part of every fit's key. Bump it by hand when a
#: change here changes the draws a fit gives (a starting point, a transform, what is
#: stored); edits that change no draw (a docstring, a rename) leave cached fits valid.
SAMPLING_VERSION = 2


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


def _fit_key(model: bmb.Model, *, random_seed: int, draws: int, tune: int, chains: int, inference_method: str,
             log_likelihood: bool, kwargs: Mapping) -> dict:
    """Everything that determines a built Bambi model's posterior, as a plain dict.

    The model enters as its PyMC graph (:func:`pymc_model_key`): the formula, family,
    link, priors (Bambi's automatic ones as the numbers it chose), parameterisation and
    data all change that graph or its constants. The columns the formula names enter
    too (:func:`data_hash`): Bambi centres predictors in the graph and un-centres the
    intercept with their means afterwards. ``cores`` and ``progressbar`` are not
    in it: they change how the chains run, not the draws (each chain's seed is derived
    from ``random_seed``).
    """
    formula = str(model.formula)
    columns = sorted(c for c in model.data.columns if re.search(rf"(?<![\w.]){re.escape(str(c))}(?![\w.])", formula))
    return {
        "interface": "bambi",
        "version": SAMPLING_VERSION,
        "model": pymc_model_key(model.backend.model),
        # The graph holds centred predictors; Bambi un-centres the intercept afterwards with
        # the predictors' means, which are not in it: the data the formula uses are.
        "data": data_hash(model.data[columns]),
        "center_predictors": bool(getattr(model, "center_predictors", True)),
        "random_seed": random_seed, "draws": draws, "tune": tune, "chains": chains,
        "inference_method": inference_method, "log_likelihood": log_likelihood,
        # A callable (a progress callback) changes no draw, and has no stable text.
        "kwargs": to_jsonable({k: v for k, v in kwargs.items() if not callable(v)}),
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
        progress_bar=progressbar, **_with_progress("nutpie", nutpie_kwargs, chains=chains, tune=tune, draws=draws),
    )
    # nutpie also stores the sampler's unconstrained values (sigma_log__, ...): not parameters.
    raw = {model.rvs_to_values[rv].name for rv in model.free_RVs} - {rv.name for rv in model.free_RVs}
    idata["posterior"] = idata.posterior.to_dataset().drop_vars(sorted(raw & set(idata.posterior.data_vars)))
    if log_likelihood:
        with model:
            pm.compute_log_likelihood(idata, extend_inferencedata=True, progressbar=False)
    return idata


def _with_progress(sampler: str, kwargs: Mapping, **sizes) -> dict:
    """``kwargs`` with the progress hooks of the fit being reported (:func:`hooks`) added;
    a callback of the caller's own is called too."""
    merged = dict(kwargs)
    for name, hook in hooks(sampler, **sizes).items():
        own = merged.get(name)
        merged[name] = hook if own is None else _both(hook, own)
    return merged


def _both(first, second):
    def call(*args, **kwargs):
        first(*args, **kwargs)
        return second(*args, **kwargs)
    return call


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
            modelled = param in model.conditional_parameters
            links[param] = model.family.link[param].name if modelled else "identity"
    return links


def _keep_cutpoints_ordered(model: bmb.Model) -> None:
    """Make a user's prior on a cumulative model's cutpoints a prior on *ordered* cutpoints.

    In Bambi (0.17 to 0.21 at least) a prior given for ``threshold`` replaces Bambi's own,
    ordered transform included, so the cutpoints are no longer kept in order and the model
    fails at its starting point (all cutpoints 0; nutpie: "All initialization points
    failed"). No upstream issue existed when this was checked; the report to file is
    ``upstream/bambi-threshold-prior.md``. The transform is added back with
    :meth:`bambi.Model.set_priors`; see :func:`_threshold_start` for the starting point.
    (Bambi's ``sratio`` cutpoints are not ordered, and are left alone.)
    """
    component = model.parameters.get("threshold")
    prior = getattr(component, "prior", None)
    if model.family.name != "cumulative" or not isinstance(prior, bmb.Prior) or "transform" in prior.args:
        return
    if prior is model.family.default_priors.get("threshold"):
        return  # Bambi's own prior, already ordered
    model.set_priors(priors={"threshold": bmb.Prior(prior.name, **prior.args,
                                                    transform=pm.distributions.transforms.ordered)})


def _threshold_start(model: bmb.Model) -> dict:
    """The sampler's starting cutpoints for a cumulative model with ordered cutpoints: the
    logits of the observed cumulative proportions of the response categories.

    Given to the sampler, not set on the model: PyMC cannot compute the log-likelihood of
    a model with initial values of its own.
    """
    prior = model.parameters["threshold"].prior if "threshold" in model.parameters else None
    if model.family.name != "cumulative" or prior is None or "transform" not in getattr(prior, "args", {}):
        return {}
    term = model.response_term
    codes = np.asarray(term.data).astype(int)  # 0 .. K-1, in Bambi's order of the levels
    shares = np.cumsum(np.bincount(codes, minlength=len(term.levels)) / len(codes))[:-1]
    shares = np.clip(shares, 1e-3, 1 - 1e-3)  # an unobserved first or last category
    cutpoints = np.log(shares) - np.log1p(-shares)
    # A small step keeps them strictly increasing if a middle category was never observed.
    return {"threshold": cutpoints + np.arange(len(cutpoints)) * 1e-3}


def fit_spec(idata: xr.DataTree) -> dict:
    """The description :func:`fit` stored with a fit (formula, family, sizes)."""
    return json.loads(idata.posterior.attrs.get(SPEC_ATTR, "{}"))


def fit(
    model: bmb.Model,
    name: str,
    *,
    random_seed: int,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    inference_method: str = "pymc",
    log_likelihood: bool = True,
    cores: int | None = None,
    progressbar: bool = False,
    cache: str | os.PathLike | None = None,
    refit: bool = False,
    **kwargs,
) -> xr.DataTree:
    """``model.fit(...)`` through the fit cache: the posterior, sampled or loaded.

    Bambi has no fit cache (brms has ``file=``); this is what the function adds, with the
    ordered cutpoints and starting point of a cumulative model (see the module docs).

    Parameters
    ----------
    model : bambi.Model
        Built here if it is not built yet. For a cumulative family with a prior on
        ``threshold``, that prior is made ordered first (:func:`_keep_cutpoints_ordered`).
    name : str
        The fit's name in the cache, e.g. ``"m2"``.
    random_seed : int
        Required: the same model, settings and seed give the same draws.
    draws, tune, chains, inference_method, cores, **kwargs
        As in :meth:`bambi.Model.fit` (brms's ``iter = tune + draws``, ``warmup = tune``).
        ``inference_method="nutpie"`` samples with nutpie, and extra keyword arguments
        (e.g. ``adaptation="low_rank"``) then go to ``nutpie.sample``;
        otherwise they go to ``model.fit`` (e.g. ``target_accept=0.9``). Extra keyword
        arguments are part of the cache key.
    log_likelihood : bool
        Store the pointwise log-likelihood (needed for LOO): ``model.fit``'s
        ``idata_kwargs={"log_likelihood": True}``.
    progressbar : bool
        Sampler progress bars (off: the course reports progress in the terminal).
    cache : path, optional
        The cache folder (default :func:`course_utils.cache.cache_dir`).
    refit : bool
        Sample even when a matching cached fit exists.

    Returns
    -------
    xarray.DataTree
        What ``model.fit`` returns: posterior, sample_stats, observed_data and, with
        ``log_likelihood``, log_likelihood.
    """
    _keep_cutpoints_ordered(model)
    if not model.built:
        model.build()
    key = _fit_key(model, random_seed=random_seed, draws=draws, tune=tune, chains=chains,
                   inference_method=inference_method, log_likelihood=log_likelihood, kwargs=kwargs)
    start = _threshold_start(model)

    def sample() -> xr.DataTree:
        extra = dict(kwargs)
        if inference_method == "nutpie":
            extra["initial_points"] = {**start, **extra.get("initial_points", {})}
            idata = _sample_nutpie(
                model.backend.model, draws=draws, tune=tune, chains=chains, seed=random_seed, cores=cores,
                progressbar=progressbar, log_likelihood=log_likelihood, **extra,
            )
            # Bambi's own post-processing: drop offsets, order dims, undo predictor centring.
            return model.backend._clean_results(idata, omit_offsets=True, include_response_params=False)
        if start:
            extra["initvals"] = {**start, **extra.get("initvals", {})}
        if inference_method == "pymc":
            extra = _with_progress("pymc", extra, chains=chains, tune=tune, draws=draws)
        return model.fit(
            draws=draws, tune=tune, chains=chains, random_seed=random_seed, inference_method=inference_method,
            **_run_kwargs(chains, cores, progressbar, log_likelihood), **extra,
        )

    idata = cached_idata(name, key, sample, folder=cache, refit=refit)
    _describe(idata, {
        "formula": str(getattr(model.formula, "main", model.formula)), "family": model.family.name, "links": _brms_links(model),
        "nobs": int(len(model.data)), "response": model.response_term.name,
    }, name=name, tune=tune, sampler=inference_method, seed=random_seed)
    return idata


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
    seed: int,
    sampler: str = "pymc",
    **fit_kwargs,
) -> tuple[bmb.Model, xr.DataTree]:
    """Build a :class:`bambi.Model` from its arguments and :func:`fit` it.

    For code that holds a model as data rather than writing it out (the grader refits
    students' models from their specifications, the benchmarks loop over the lecture's
    models); a chapter writes ``bmb.Model(...)`` and calls :func:`fit` itself.
    ``formula, data, family, priors, link, categorical, noncentered`` go to
    :class:`bambi.Model`; ``seed`` and ``sampler`` are :func:`fit`'s ``random_seed`` and
    ``inference_method``; other keyword arguments go to :func:`fit`.

    Returns
    -------
    (bambi.Model, xarray.DataTree)
        The built model (for predictions) and its posterior.
    """
    model = bmb.Model(
        formula, data, family=family, priors=dict(priors) if priors else None, link=link,
        categorical=list(categorical) if categorical else None, noncentered=noncentered,
    )
    return model, fit(model, name, random_seed=seed, inference_method=sampler, **fit_kwargs)


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
    coords_digest = hashlib.sha256(json.dumps(coords, sort_keys=True).encode()).hexdigest()
    return {
        "graph": hashlib.sha256(graph.encode()).hexdigest(),
        "constants": digest.hexdigest(),
        "coords": coords_digest,  # (Trolley's observations alone are 9,930 labels)
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
    random_seed: int,
    nuts_sampler: str = "pymc",
    log_likelihood: bool = True,
    cores: int | None = None,
    progressbar: bool = False,
    cache: str | os.PathLike | None = None,
    refit: bool = False,
    **sample_kwargs,
) -> xr.DataTree:
    """``pm.sample(...)`` for a hand-written PyMC model, through the fit cache.

    The keyword arguments are ``pm.sample``'s: ``nuts_sampler`` is ``"pymc"`` (PyMC's
    NUTS) or ``"nutpie"`` (through :func:`_sample_nutpie`); extra keyword arguments go to
    the sampler (e.g. ``target_accept=0.9``; for nutpie ``adaptation="low_rank"``) and are
    part of the cache key, with the model's graph (:func:`pymc_model_key`).

    ``description`` is what the brms-style summary prints in its header: ``formula``,
    ``family``, ``links`` (e.g. ``{"mu": "logit"}``) and ``nobs``. Name the model's
    variables the brms way (``b_...``, ``sd_<group>__...``, ``r_<group>...``) so the
    course's summaries, draws and predictions read them. Other arguments as in
    :func:`fit`.
    """
    key = {
        "interface": "pymc",
        "version": SAMPLING_VERSION,
        "model": pymc_model_key(model),
        "nuts_sampler": nuts_sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": random_seed,
        "log_likelihood": log_likelihood,
        "sample_kwargs": to_jsonable(sample_kwargs),
    }

    def sample() -> xr.DataTree:
        if nuts_sampler == "nutpie":
            return _sample_nutpie(
                model, draws=draws, tune=tune, chains=chains, seed=random_seed, cores=cores,
                progressbar=progressbar, log_likelihood=log_likelihood, **sample_kwargs,
            )
        with model:
            # PyMC's own NUTS, named: since PyMC 6, pm.sample picks nutpie by itself when it is
            # installed and no callback is given, so the draws would depend on whether the
            # progress callback is there.
            return pm.sample(
                draws=draws, tune=tune, chains=chains, random_seed=random_seed, nuts_sampler="pymc",
                **_run_kwargs(chains, cores, progressbar, log_likelihood),
                **_with_progress("pymc", sample_kwargs, chains=chains, tune=tune, draws=draws),
            )

    idata = cached_idata(name, key, sample, folder=cache, refit=refit)
    _describe(idata, description, name=name, tune=tune, sampler=nuts_sampler, seed=random_seed)
    return idata

