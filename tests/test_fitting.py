"""fit: the cache key covers every input that moves a posterior; fits are reproducible."""

from __future__ import annotations

import os

import bambi as bmb
import numpy as np
import pandas as pd
import pytest

from course_utils.fitting import _fit_key, data_hash, fit_bambi, fit_pymc, fit_spec, pymc_model_key

PRIORS = {"Intercept": bmb.Prior("Normal", mu=0, sigma=1.5), "sigma": bmb.Prior("Exponential", lam=1)}
MODEL = {"formula", "family", "priors", "link", "categorical", "noncentered"}


def key(data, **change):
    """The key of a fit of ``y ~ 1 + x`` on ``data``, with some of its inputs changed."""
    args = dict(formula="y ~ 1 + x", family="gaussian", priors=PRIORS, draws=100, tune=100, chains=2,
                random_seed=1, inference_method="pymc", log_likelihood=True, kwargs={})
    args.update(change)
    model = bmb.Model(data=data, **{k: args.pop(k) for k in MODEL if k in args})
    model.build()
    return _fit_key(model, **args)


@pytest.mark.parametrize(
    "change",
    [
        {"formula": "y ~ 1 + x + (1|g)"},
        {"family": "t"},
        {"priors": {**PRIORS, "sigma": bmb.Prior("Exponential", lam=2)}},
        {"draws": 200},
        {"tune": 200},
        {"chains": 4},
        {"random_seed": 2},
        {"inference_method": "nutpie"},
        {"kwargs": {"target_accept": 0.95}},
        {"formula": "y ~ 1 + g", "categorical": ["g"]},
        {"formula": "y ~ 1 + x + (1|g)", "noncentered": False},
        {"link": "log"},
        {"log_likelihood": False},
        {"family": bmb.Family("gaussian", bmb.Likelihood("Normal", params=["mu", "sigma"], parent="mu"),
                              link={"mu": "log", "sigma": "log"})},
    ],
    ids=["formula", "family", "priors", "draws", "tune", "chains", "seed", "sampler", "kwargs",
         "categorical", "noncentered", "link", "log_likelihood", "family-object"],
)
def test_every_input_that_moves_the_posterior_is_in_the_key(toy_data, change):
    base = {k: change[k] for k in ("formula",) if k in change and len(change) > 1}
    assert key(toy_data, **change) != key(toy_data, **base)


def test_the_key_is_the_same_for_the_same_model(toy_data):
    assert key(toy_data.copy()) == key(toy_data)


def test_data_hash_sees_values_names_types_and_order(toy_data):
    base = data_hash(toy_data)
    assert data_hash(toy_data.copy()) == base
    changed = toy_data.copy()
    changed.loc[3, "y"] += 1e-9
    assert data_hash(changed) != base
    assert data_hash(toy_data.rename(columns={"x": "z"})) != base
    assert data_hash(toy_data.astype({"g": "float64"})) != base
    assert data_hash(toy_data.iloc[::-1]) != base


def test_custom_families_differ_by_link(toy_data):
    def family(link):
        likelihood = bmb.Likelihood("Normal", params=["mu", "sigma"], parent="mu")
        return bmb.Family("gaussian", likelihood, link={"mu": link, "sigma": "log"})

    assert key(toy_data, family=family("identity")) != key(toy_data, family=family("log"))
    assert key(toy_data, family=family("log")) == key(toy_data, family=family("log"))


def test_category_order_is_in_the_key(toy_data):
    ordered = toy_data.assign(g=pd.Categorical(toy_data["g"], categories=range(6), ordered=True))
    reordered = ordered.assign(g=ordered["g"].cat.reorder_categories([5, 4, 3, 2, 1, 0]))
    unordered = ordered.assign(g=ordered["g"].cat.as_unordered())
    assert len({data_hash(ordered), data_hash(reordered), data_hash(unordered)}) == 3
    # An ordinal response's category order decides the model: it is in the fit's key.
    data = toy_data.assign(r=pd.Categorical(toy_data["g"] % 3, categories=[0, 1, 2], ordered=True))
    flipped = data.assign(r=data["r"].cat.reorder_categories([2, 1, 0]))
    assert (key(data, formula="r ~ x", family="cumulative", priors=None)
            != key(flipped, formula="r ~ x", family="cumulative", priors=None))


def test_fit_bambi_keys_on_every_argument_it_uses(toy_data, tmp_path, monkeypatch):
    """fit_bambi's key is fit's key of the model its arguments build (none forgotten)."""
    import course_utils.fitting as fitting

    seen = {}

    def capture(name, key, sample, **kwargs):
        seen["key"] = key
        raise RuntimeError("stop before sampling")

    monkeypatch.setattr(fitting, "cached_idata", capture)
    model_args = dict(family="t", priors=PRIORS, link="identity", categorical=["g"], noncentered=False)
    with pytest.raises(RuntimeError):
        fit_bambi("m", "y ~ 1 + x + (1|g)", toy_data, seed=11, cache=tmp_path, target_accept=0.9, draws=7,
                  tune=8, chains=3, sampler="nutpie", log_likelihood=False, **model_args)
    model = bmb.Model("y ~ 1 + x + (1|g)", toy_data, **model_args)
    model.build()
    assert seen["key"] == _fit_key(model, random_seed=11, draws=7, tune=8, chains=3, inference_method="nutpie",
                                   log_likelihood=False, kwargs={"target_accept": 0.9})


def test_a_shifted_predictor_changes_the_key(toy_data):
    """Bambi centres predictors in the PyMC graph, so x and x + 1 give the same graph; the
    intercept it un-centres afterwards differs, and so must the key."""
    assert key(toy_data.assign(x=toy_data["x"] + 1)) != key(toy_data)


def test_a_callable_argument_does_not_break_the_cache(toy_data):
    one, other = key(toy_data, kwargs={"callback": print}), key(toy_data, kwargs={"callback": repr})
    assert one == other == key(toy_data)


def test_data_content_is_in_the_key(toy_data):
    changed = toy_data.assign(y=toy_data["y"] + 0.01)
    assert key(changed) != key(toy_data)


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
    assert spec["links"] == {"mu": "identity", "sigma": "identity"}  # as brms prints them
    assert (spec["nobs"], spec["chains"], spec["draws"], spec["tune"]) == (24, 2, 150, 150)
    assert idata.log_likelihood["y"].shape == (2, 150, 24)


def tiny_pymc_model(prior_sd=1.0, y=(0.1, -0.3, 0.8, 0.5)):
    import pymc as pm

    with pm.Model(coords={"obs": range(len(y))}) as model:
        b = pm.Normal("b_Intercept", 0, prior_sd)
        sigma = pm.Exponential("sigma", 1)
        pm.Normal("y", b, sigma, observed=np.array(y), dims="obs")
    return model


def test_pymc_model_key_sees_priors_and_data():
    base = pymc_model_key(tiny_pymc_model())
    assert pymc_model_key(tiny_pymc_model()) == base
    assert pymc_model_key(tiny_pymc_model(prior_sd=1.5)) != base
    assert pymc_model_key(tiny_pymc_model(y=(0.1, -0.3, 0.8, 0.6))) != base


def test_fit_pymc_is_cached_reproducible_and_summarised(tmp_path):
    args = dict(description={"formula": "y ~ 1", "family": "gaussian", "links": {"mu": "identity"}, "nobs": 4},
                draws=100, tune=100, chains=2, random_seed=4)
    first = fit_pymc("toy", tiny_pymc_model(), cache=tmp_path / "a", **args)
    again = fit_pymc("toy", tiny_pymc_model(), cache=tmp_path / "b", **args)  # a fresh fit
    np.testing.assert_array_equal(first.posterior["b_Intercept"], again.posterior["b_Intercept"])
    assert fit_spec(first)["formula"] == "y ~ 1"
    assert first.log_likelihood["y"].shape == (2, 100, 4)
    cached = fit_pymc("toy", tiny_pymc_model(), cache=tmp_path / "a", **args)
    assert cached.posterior.attrs["course_fingerprint"] == first.posterior.attrs["course_fingerprint"]
    changed = fit_pymc("toy", tiny_pymc_model(prior_sd=0.1), cache=tmp_path / "a", **args)
    assert changed.posterior["b_Intercept"].mean() < first.posterior["b_Intercept"].mean()


def test_pymc_model_key_sees_derived_quantities():
    import pymc as pm

    def model(scale):
        with pm.Model() as m:
            z = pm.Normal("z", 0, 1)
            pm.Deterministic("r", z * scale)
        return m

    assert pymc_model_key(model(2.0)) != pymc_model_key(model(3.0))


def _printed_in_two_processes(code: str) -> list[str]:
    """What ``code`` prints, run twice, each time in a new Python process."""
    import subprocess
    import sys

    return [subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
            for _ in range(2)]


def test_pymc_model_key_is_the_same_in_every_process():
    """A model with derived quantities gets the same key in a new process (a book build
    runs each chapter in a new kernel); otherwise its cached fit is never used."""
    code = (
        "import json, pymc as pm\n"
        "from course_utils.fitting import pymc_model_key\n"
        "with pm.Model(coords={'g': ['a', 'b']}) as m:\n"
        "    s = pm.Exponential('s', 1)\n"
        "    z = pm.Normal('z', 0, 1, dims='g')\n"
        "    r = pm.Deterministic('r', z * s, dims='g')\n"
        "    pm.Normal('y', r[[0, 1, 1]], 1, observed=[0.1, 0.5, 0.4])\n"
        "print(json.dumps(pymc_model_key(m)))\n"
    )
    keys = _printed_in_two_processes(code)
    assert keys[0] == keys[1]


@pytest.fixture(scope="module")
def ordinal_data():
    rng = np.random.default_rng(8)
    x = rng.integers(0, 2, 300)
    latent = 0.8 * x + rng.logistic(size=300)
    y = np.digitize(latent, [-1.0, 0.5, 1.5]) + 1
    return pd.DataFrame({"y": pd.Categorical(y, categories=[1, 2, 3, 4], ordered=True), "x": x})


@pytest.mark.parametrize("sampler", ["pymc", "nutpie"])
def test_user_prior_on_cutpoints_keeps_them_ordered(ordinal_data, tmp_path, sampler):
    """Bambi alone drops the ordered transform with a user prior on threshold and fails at
    its starting point; through fit_bambi the fit works, its log-likelihood included."""
    priors = {"threshold": bmb.Prior("Normal", mu=0, sigma=1.5), "x": bmb.Prior("Normal", mu=0, sigma=0.5)}
    model, idata = fit_bambi("ordinal", "y ~ x", ordinal_data, family="cumulative", priors=priors,
                             draws=200, tune=200, chains=2, seed=1, sampler=sampler, cache=tmp_path)
    cutpoints = idata.posterior["threshold"].to_numpy()
    assert (np.diff(cutpoints, axis=-1) > 0).all()
    assert idata.log_likelihood["y"].shape == (2, 200, 300)
    np.testing.assert_allclose(cutpoints.mean(axis=(0, 1)), [-1.0, 0.5, 1.5], atol=0.35)
    assert idata.posterior["x"].mean() == pytest.approx(0.8, abs=0.3)
    transform = model.backend.model.rvs_to_transforms[model.backend.model["threshold"]]
    assert type(transform).__name__ == "Ordered"


def test_threshold_start_is_the_logit_of_observed_cumulative_shares():
    from course_utils.fitting import _keep_cutpoints_ordered, _threshold_start

    data = pd.DataFrame({"y": pd.Categorical([2, 2, 3, 4, 4, 4, 4, 4], categories=[1, 2, 3, 4, 5], ordered=True),
                         "x": range(8)})
    model = bmb.Model("y ~ x", data, family="cumulative", priors={"threshold": bmb.Prior("Normal", mu=0, sigma=1.5)})
    _keep_cutpoints_ordered(model)
    assert type(model.parameters["threshold"].prior.args["transform"]).__name__ == "Ordered"
    assert model.parameters["threshold"].prior.args["sigma"] == 1.5
    start = _threshold_start(model)["threshold"]
    shares = np.clip([0, 2 / 8, 3 / 8, 1.0], 1e-3, 1 - 1e-3)  # category 1 never observed, 5 neither
    np.testing.assert_allclose(start, np.log(shares / (1 - shares)) + np.arange(4) * 1e-3)
    assert (np.diff(start) > 0).all()
    # The sratio family's cutpoints are not ordered, and are left alone.
    sratio = bmb.Model("y ~ x", data, family="sratio", priors={"threshold": bmb.Prior("Normal", mu=0, sigma=1)})
    _keep_cutpoints_ordered(sratio)
    assert "transform" not in sratio.parameters["threshold"].prior.args


def test_the_sampling_version_is_in_the_key(toy_data, monkeypatch):
    import course_utils.fitting as fitting

    before = key(toy_data)
    monkeypatch.setattr(fitting, "SAMPLING_VERSION", fitting.SAMPLING_VERSION + 1)
    assert key(toy_data) != before


def test_fit_gives_what_model_fit_gives(tiny_fit):
    """fit adds a cache, not a different posterior: model.fit with the same arguments
    (and the log-likelihood fit stores) gives the same draws."""
    data, args, _, idata = tiny_fit
    model = bmb.Model("y ~ 1 + (1 | g)", data, family=args["family"], categorical=args["categorical"],
                      priors=args["priors"])
    plain = model.fit(draws=args["draws"], tune=args["tune"], chains=args["chains"], random_seed=args["seed"],
                      cores=min(args["chains"], os.cpu_count() or 1), progressbar=False,
                      idata_kwargs={"log_likelihood": True})
    for var in ("Intercept", "1|g_sigma", "1|g", "sigma"):
        np.testing.assert_array_equal(idata.posterior[var], plain.posterior[var])


def test_a_bambi_models_key_is_the_same_in_every_process():
    """A book build runs each chapter in a new kernel: the key must not change with it."""
    code = (
        "import json, bambi as bmb, numpy as np, pandas as pd\n"
        "from course_utils.fitting import _fit_key\n"
        "rng = np.random.default_rng(1)\n"
        "d = pd.DataFrame({'y': rng.normal(size=12), 'x': rng.normal(size=12), 'g': np.repeat(list('abc'), 4)})\n"
        "m = bmb.Model('y ~ x + (1 | g)', d, priors={'1|g': bmb.Prior('Normal', mu=0, "
        "sigma=bmb.Prior('Exponential', lam=1))})\n"
        "m.build()\n"
        "print(json.dumps(_fit_key(m, random_seed=1, draws=1, tune=1, chains=1, inference_method='pymc', "
        "log_likelihood=True, kwargs={})))\n"
    )
    keys = _printed_in_two_processes(code)
    assert keys[0] == keys[1] and '"graph"' in keys[0]


@pytest.mark.slow
def test_nutpie_gives_the_same_posterior_as_pymc(toy_data, tmp_path):
    """Through nutpie, Bambi's post-processing still applies (the intercept is un-centred)
    and no sampler-internal variable is left in the posterior."""
    args = dict(family="gaussian", priors=PRIORS, draws=500, tune=500, chains=2, seed=1, cache=tmp_path)
    _, with_pymc = fit_bambi("pymc", "y ~ 1 + x", toy_data, sampler="pymc", **args)
    _, with_nutpie = fit_bambi("nutpie", "y ~ 1 + x", toy_data, sampler="nutpie", **args)
    assert set(with_nutpie.posterior.data_vars) == set(with_pymc.posterior.data_vars)
    for var in ("Intercept", "x", "sigma"):
        a, b = with_pymc.posterior[var], with_nutpie.posterior[var]
        assert float(b.mean()) == pytest.approx(float(a.mean()), abs=4 * float(a.std()) / np.sqrt(200))
    _, again = fit_bambi("nutpie", "y ~ 1 + x", toy_data, sampler="nutpie", **{**args, "cache": tmp_path / "b"})
    np.testing.assert_array_equal(with_nutpie.posterior["x"], again.posterior["x"])
    idata = fit_pymc("toy", tiny_pymc_model(), nuts_sampler="nutpie", cache=tmp_path, draws=100, tune=100,
                     chains=2, random_seed=1, description={"formula": "y ~ 1", "family": "gaussian", "nobs": 4})
    assert set(idata.posterior.data_vars) == {"b_Intercept", "sigma"}
    assert idata.log_likelihood["y"].shape == (2, 100, 4)
