"""Fit Bambi models with explicit seeds, through the fit cache.

``fit_bambi`` is the one call chapters, exercises and the grader use to fit a Bambi
model: it builds the model, and samples only when no cached fit matches everything that
determines the posterior (see :mod:`course_utils.cache`).

Example
-------
>>> import bambi as bmb
>>> from course_utils.fitting import fit_bambi
>>> m2, m2_idata = fit_bambi(                                    # doctest: +SKIP
...     "m2", "con ~ 1 + (1 | id)", mlm, family="gaussian",
...     priors={"Intercept": bmb.Prior("Normal", mu=0, sigma=1.5),
...             "1|id": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)),
...             "sigma": bmb.Prior("Exponential", lam=1)},
...     categorical=["id"], seed=9)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence

import arviz as az
import bambi as bmb
import pandas as pd

from .cache import cached_idata, to_jsonable

__all__ = ["data_hash", "fit_bambi", "fit_key", "fit_spec"]

SPEC_ATTR = "course_spec"


def data_hash(data: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's content: column names, dtypes and every value, in order."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in data.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _family_name(family) -> str:
    return family if isinstance(family, str) else getattr(family, "name", repr(family))


def fit_key(
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
    sample_kwargs: Mapping | None = None,
) -> dict:
    """Everything that determines a Bambi fit's posterior, as a plain dict.

    ``cores`` and ``progressbar`` are left out: they change how the chains run, not the
    draws (each chain's seed is derived from ``seed``).
    """
    return {
        "interface": "bambi",
        "formula": str(formula),
        "family": _family_name(family),
        "link": to_jsonable(link),
        "priors": to_jsonable(priors or {}),
        "categorical": sorted(categorical or []),
        "noncentered": noncentered,
        "data": data_hash(data),
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "log_likelihood": log_likelihood,
        "sample_kwargs": to_jsonable(sample_kwargs or {}),
    }


def fit_spec(idata: az.InferenceData) -> dict:
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
) -> tuple[bmb.Model, az.InferenceData]:
    """Build a Bambi model and return it with its posterior, fitted or from the cache.

    Parameters
    ----------
    name : str
        The fit's name in the cache, e.g. ``"m2"``.
    formula, data, family, priors, link, categorical, noncentered
        Passed to :class:`bambi.Model`.
    draws, tune, chains : int
        Post-warm-up draws and warm-up iterations per chain, and the number of chains
        (brms's ``iter = tune + draws``, ``warmup = tune``).
    seed : int
        Required: the same inputs and seed give the same draws.
    sampler : str
        Bambi's ``inference_method`` (``"pymc"`` is PyMC's NUTS).
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
    (bambi.Model, arviz.InferenceData)
        The built model (for predictions) and its posterior.
    """
    model = bmb.Model(
        formula, data, family=family, priors=dict(priors) if priors else None, link=link,
        categorical=list(categorical) if categorical else None, noncentered=noncentered,
    )
    key = fit_key(
        formula, data, family=family, priors=priors, link=link, categorical=categorical,
        noncentered=noncentered, draws=draws, tune=tune, chains=chains, seed=seed,
        sampler=sampler, log_likelihood=log_likelihood, sample_kwargs=sample_kwargs,
    )

    def sample() -> az.InferenceData:
        idata = model.fit(
            draws=draws, tune=tune, chains=chains, random_seed=seed, inference_method=sampler,
            cores=cores if cores is not None else min(chains, os.cpu_count() or 1),
            progressbar=progressbar,
            idata_kwargs={"log_likelihood": log_likelihood},
            **sample_kwargs,
        )
        idata.posterior.attrs[SPEC_ATTR] = json.dumps({
            "name": name,
            "formula": str(formula),
            "family": model.family.name,
            # Links of the parameters that have a linear predictor, as brms prints them.
            "links": {
                param: model.family.link[param].name
                for param in model.distributional_components
                if param in model.family.link
            },
            "nobs": int(len(data)),
            "response": model.response_component.response.name,
            "chains": chains,
            "draws": draws,
            "tune": tune,
            "sampler": sampler,
            "seed": seed,
        })
        return idata

    idata = cached_idata(name, key, sample, folder=cache, refit=refit)
    if not model.built:
        model.build()
    return model, idata
