"""Predictions for clusters in the sample, the average cluster and new clusters, with known answers."""

from __future__ import annotations

import arviz as az
import xarray as xr
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from course_utils.predictions import (
    LinearModel, VaryingIntercept, epred_draws, _from_bambi, linear_predictor, linpred_draws,
    tidy_predictions,
)


def synthetic(family="bernoulli", n_draw=20_000, sd=2.0, seed=0):
    """A logit model with intercept 0.5, slope 1 on x and three known cluster effects."""
    rng = np.random.default_rng(seed)
    effects = np.broadcast_to([-1.0, 0.0, 1.5], (1, n_draw, 3)) + rng.normal(0, 0.01, (1, n_draw, 3))
    posterior = {
        "b_Intercept": np.full((1, n_draw), 0.5),
        "b_x": np.ones((1, n_draw)),
        "r_g": effects,
        "sd_g__Intercept": np.full((1, n_draw), sd),
        "cut": np.broadcast_to([-1.0, 0.0, 2.0], (1, n_draw, 3)).copy(),
    }
    idata = az.from_dict({"posterior": posterior}, coords={"g": ["a", "b", "c"], "k": [1, 2, 3]},
                         dims={"r_g": ["g"], "cut": ["k"]})

    def fixed(post, newdata):
        return (post["b_Intercept"].to_numpy()[..., None]
                + post["b_x"].to_numpy()[..., None] * newdata["x"].to_numpy())

    return LinearModel(idata=idata, fixed=fixed, varying={"g": VaryingIntercept("r_g", "sd_g__Intercept")},
                       family=family, thresholds="cut" if family == "cumulative" else None)


ROWS = pd.DataFrame({"x": [0.0, 1.0, 0.0], "g": ["c", "a", "new"]})


def test_average_cluster_is_the_inverse_link_of_the_fixed_part():
    model = synthetic()
    epred = epred_draws(model, ROWS, clusters="average")
    expected = expit(0.5 + ROWS["x"].to_numpy())
    np.testing.assert_allclose(epred.groupby(".row")[".epred"].agg(["min", "max"]).to_numpy(),
                               np.c_[expected, expected])


def test_clusters_in_the_sample_add_their_own_effects():
    model = synthetic()
    eta = linear_predictor(model, ROWS.iloc[:2])
    np.testing.assert_allclose(eta.mean(axis=(0, 1)), [0.5 + 1.5, 1.5 - 1.0], atol=1e-3)
    with pytest.raises(KeyError, match=r"\['new'\] are not in the data.*clusters='new'"):
        linear_predictor(model, ROWS)


def test_new_clusters_gaussian_have_the_fitted_sd():
    model = synthetic(sd=2.0)
    eta = linear_predictor(model, ROWS, clusters="new", seed=1)
    new = eta[0, :, 2] - 0.5
    assert new.std() == pytest.approx(2.0, rel=0.03)
    assert new.mean() == pytest.approx(0.0, abs=0.05)
    np.testing.assert_allclose(eta[0, :, 0].mean(), 2.0, atol=1e-3)  # "c" keeps its own effect


def test_new_clusters_uncertainty_borrow_an_existing_cluster_per_draw():
    model = synthetic()
    eta = linear_predictor(model, ROWS, clusters="new", new_levels="uncertainty", seed=1)
    new = eta[0, :, 2] - 0.5
    effects = model.idata.posterior["r_g"].to_numpy()[0]
    matches = np.isclose(new[:, None], effects).sum(axis=1)
    assert (matches == 1).all()
    shares = np.isclose(new[:, None], effects).mean(axis=0)
    np.testing.assert_allclose(shares, 1 / 3, atol=0.02)


def test_each_new_level_is_its_own_cluster_and_seeds_reproduce():
    model = synthetic()
    rows = pd.DataFrame({"x": [0.0, 0.0, 0.0], "g": ["New1", "New2", "New1"]})
    eta = linear_predictor(model, rows, clusters="new", seed=7)
    np.testing.assert_array_equal(eta[..., 0], eta[..., 2])
    assert np.corrcoef(eta[0, :, 0], eta[0, :, 1])[0, 1] == pytest.approx(0, abs=0.03)
    np.testing.assert_array_equal(eta, linear_predictor(model, rows, clusters="new", seed=7))
    assert not np.array_equal(eta, linear_predictor(model, rows, clusters="new", seed=8))
    with pytest.raises(ValueError, match="seed"):
        linear_predictor(model, rows, clusters="new")


def test_groups_and_missing_columns():
    model = synthetic()
    eta = linear_predictor(model, ROWS[["x"]], groups=[])
    np.testing.assert_allclose(eta[0, :3], np.tile(0.5 + ROWS["x"].to_numpy(), (3, 1)))
    with pytest.raises(KeyError, match="no column 'g'"):
        linear_predictor(model, ROWS[["x"]])
    with pytest.raises(KeyError, match="no varying intercept per 'h'"):
        linear_predictor(model, ROWS, groups=["h"])


def test_cumulative_category_probabilities():
    model = synthetic(family="cumulative", n_draw=10)
    epred = epred_draws(model, ROWS.iloc[:1], clusters="average")
    assert epred[".category"].unique().tolist() == [1, 2, 3, 4]
    p = epred[epred[".draw"] == 1].set_index(".category")[".epred"]
    cdf = expit(np.array([-1.0, 0.0, 2.0]) - 0.5)  # P(Y <= k) = F(tau_k - eta)
    np.testing.assert_allclose(p.to_numpy(), np.diff(np.r_[0, cdf, 1]))
    assert epred.groupby(".draw")[".epred"].sum().to_numpy() == pytest.approx(1.0)


def test_linpred_and_long_layout():
    model = synthetic(n_draw=5)
    lin = linpred_draws(model, ROWS.iloc[:2], clusters="average")
    assert list(lin.columns) == ["x", "g", ".row", ".linpred", ".chain", ".iteration", ".draw"]
    assert lin.groupby(".row")[".draw"].agg(list).tolist() == [[1, 2, 3, 4, 5]] * 2
    assert lin.attrs["groups"] == ["x", "g", ".row"]


def test_bambi_fit_matches_bambis_own_predictions(tiny_fit):
    data, _, model, idata = tiny_fit
    newdata = pd.DataFrame({"g": [2, 0, 3]})
    ours = epred_draws((model, idata), newdata)
    theirs = model.predict(idata, kind="response_params", data=newdata, inplace=False).posterior["mu"]
    np.testing.assert_allclose(ours.pivot(index=".draw", columns=".row", values=".epred").to_numpy(),
                               theirs.stack(s=("chain", "draw")).transpose("s", "__obs__").to_numpy())
    avg = epred_draws((model, idata), newdata, clusters="average")
    np.testing.assert_allclose(avg[avg[".row"] == 0][".epred"], idata.posterior["Intercept"].to_numpy().reshape(-1))
    assert set(_from_bambi(model, idata).varying) == {"g"}


def test_bambi_new_groups_use_the_group_sd(tiny_fit):
    _, _, model, idata = tiny_fit
    eta = linear_predictor((model, idata), pd.DataFrame({"g": ["unseen"] * 2}), clusters="new", seed=3)
    z = (eta[..., 0] - idata.posterior["Intercept"].to_numpy()) / idata.posterior["1|g_sigma"].to_numpy()
    assert z.std() == pytest.approx(1.0, abs=0.15)


def prior_as_posterior(model, draws=40):
    """Stand-in posterior for a Bambi model, from its prior: no sampling, seconds to make."""
    prior = model.prior_predictive(draws=draws, random_seed=2).prior.to_dataset()
    keep = [v for v in prior.data_vars if "__obs__" not in prior[v].dims]
    posterior = prior[keep].drop_vars([c for c in prior.coords if c == "__obs__"], errors="ignore")
    idata = xr.DataTree.from_dict({"posterior": posterior})
    idata.posterior.attrs["modeling_interface"] = "bambi"
    return idata


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(3)
    n = 60
    data = pd.DataFrame({
        "a": rng.integers(0, 2, n), "b": rng.integers(0, 2, n), "x": rng.normal(size=n),
        "f": rng.choice(["u", "v", "w"], n), "g": rng.choice(["g1", "g2", "g3"], n),
    })
    data["y"] = rng.normal(size=n)
    data["r"] = pd.Categorical(rng.integers(1, 5, n), ordered=True)
    return data


@pytest.mark.parametrize(
    ("formula", "family", "param"),
    [
        ("y ~ 1 + x + f + a:b + (1|g)", "gaussian", "mu"),
        ("r ~ a + b + x + f + (1|g)", "cumulative", "p"),
    ],
)
def test_bambi_adapter_matches_bambi_predict_with_several_predictors(clustered, formula, family, param):
    import bambi as bmb

    model = bmb.Model(formula, clustered, family=family)
    model.build()
    idata = prior_as_posterior(model)
    newdata = clustered.iloc[[0, 5, 11, 17]]
    theirs = model.predict(idata, kind="response_params", data=newdata, inplace=False).posterior[param]
    theirs = theirs.transpose("chain", "draw", "__obs__", ...).to_numpy()
    ours = epred_draws((model, idata), newdata)
    keys = [".row", ".category", ".draw"] if family == "cumulative" else [".row", ".draw"]
    ours = ours.sort_values(keys)[".epred"].to_numpy()
    expected = np.moveaxis(theirs, 2, 0).reshape(theirs.shape[2], -1, *theirs.shape[3:])  # row, draw[, cat]
    if family == "cumulative":
        expected = expected.transpose(0, 2, 1)  # row, category, draw
    np.testing.assert_allclose(ours, expected.reshape(-1), atol=1e-10)
    # model.predict's draws as a tidy table: the same rows, columns and values as epred_draws's.
    predicted = model.predict(idata, kind="response_params", data=newdata, inplace=False)
    tidy, direct = tidy_predictions(predicted, newdata), epred_draws((model, idata), newdata)
    pd.testing.assert_frame_equal(tidy.drop(columns=".epred"), direct.drop(columns=".epred"))
    np.testing.assert_allclose(tidy[".epred"], direct[".epred"], atol=1e-10)
    with pytest.raises(ValueError, match="rows but newdata has 3"):
        tidy_predictions(predicted, newdata.iloc[:3])


def test_probit_link_is_applied():
    model = synthetic(n_draw=4)
    model.link = "probit"
    epred = epred_draws(model, ROWS.iloc[:1], clusters="average")
    from scipy.stats import norm

    np.testing.assert_allclose(epred[".epred"], norm.cdf(0.5))


def test_float_and_integer_levels_are_the_same_cluster():
    model = synthetic(n_draw=50)
    model.idata["posterior"] = model.idata.posterior.to_dataset().assign_coords(g=[1, 2, 3])
    as_float = linear_predictor(model, pd.DataFrame({"x": [0.0], "g": [2.0]}), clusters="new", seed=1)
    as_text = linear_predictor(model, pd.DataFrame({"x": [0.0], "g": ["2"]}), clusters="sample")
    np.testing.assert_array_equal(as_float, as_text)
    with pytest.raises(ValueError, match="missing values"):
        linear_predictor(model, pd.DataFrame({"x": [0.0], "g": [np.nan]}), clusters="new", seed=1)


def test_gaussian_new_effects_scale_with_each_draws_sd():
    model = synthetic(n_draw=20_000)
    sd = np.random.default_rng(4).uniform(0.5, 3.0, (1, 20_000))
    model.idata.posterior["sd_g__Intercept"] = xr.DataArray(sd, dims=("chain", "draw"))
    eta = linear_predictor(model, ROWS.iloc[2:], clusters="new", seed=2)
    z = (eta[0, :, 0] - 0.5) / sd[0]
    assert z.std() == pytest.approx(1.0, abs=0.03)
