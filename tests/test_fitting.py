"""fit_bambi: the cache key covers every input that moves a posterior; fits are reproducible."""

from __future__ import annotations

import bambi as bmb
import numpy as np
import pytest

from course_utils.fitting import data_hash, fit_bambi, fit_key, fit_spec

PRIORS = {"Intercept": bmb.Prior("Normal", mu=0, sigma=1.5), "sigma": bmb.Prior("Exponential", lam=1)}


def key(data, **change):
    args = dict(family="gaussian", priors=PRIORS, draws=100, tune=100, chains=2, seed=1)
    args.update(change)
    formula = args.pop("formula", "y ~ 1 + x")
    return fit_key(formula, data, **args)


def test_data_hash_sees_values_names_types_and_order(toy_data):
    base = data_hash(toy_data)
    assert data_hash(toy_data.copy()) == base
    changed = toy_data.copy()
    changed.loc[3, "y"] += 1e-9
    assert data_hash(changed) != base
    assert data_hash(toy_data.rename(columns={"x": "z"})) != base
    assert data_hash(toy_data.astype({"g": "float64"})) != base
    assert data_hash(toy_data.iloc[::-1]) != base


@pytest.mark.parametrize(
    "change",
    [
        {"formula": "y ~ 1 + x + (1|g)"},
        {"family": "t"},
        {"priors": {**PRIORS, "sigma": bmb.Prior("Exponential", lam=2)}},
        {"draws": 200},
        {"tune": 200},
        {"chains": 4},
        {"seed": 2},
        {"sampler": "nutpie"},
        {"sample_kwargs": {"target_accept": 0.95}},
        {"categorical": ["g"]},
        {"noncentered": False},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_input_that_moves_the_posterior_is_in_the_key(toy_data, change):
    assert key(toy_data, **change) != key(toy_data)


def test_data_content_is_in_the_key(toy_data):
    changed = toy_data.assign(y=toy_data["y"] + 0.01)
    assert key(changed) != key(toy_data)
    assert key(toy_data.copy()) == key(toy_data)


def test_fit_is_cached_and_not_resampled(tiny_fit, monkeypatch):
    data, args, _, idata = tiny_fit

    def no_sampling(*a, **k):
        raise AssertionError("sampled although a matching fit was cached")

    monkeypatch.setattr(bmb.Model, "fit", no_sampling)
    model, again = fit_bambi("tiny", "y ~ 1 + (1 | g)", data, **args)
    np.testing.assert_array_equal(idata.posterior["Intercept"], again.posterior["Intercept"])
    assert model.built  # ready for predictions without sampling


def test_same_seed_gives_the_same_draws(tiny_fit, tmp_path):
    data, args, _, idata = tiny_fit
    _, fresh = fit_bambi("tiny", "y ~ 1 + (1 | g)", data, **{**args, "cache": tmp_path})
    for var in ("Intercept", "1|g_sigma", "1|g", "sigma"):
        np.testing.assert_array_equal(idata.posterior[var], fresh.posterior[var])


def test_fit_stores_what_the_summary_header_needs(tiny_fit):
    _, _, _, idata = tiny_fit
    spec = fit_spec(idata)
    assert spec["formula"] == "y ~ 1 + (1 | g)"
    assert spec["family"] == "gaussian"
    assert spec["links"] == {"mu": "identity"}
    assert (spec["nobs"], spec["chains"], spec["draws"], spec["tune"]) == (24, 2, 150, 150)
    assert idata.log_likelihood["y"].shape == (2, 150, 24)
