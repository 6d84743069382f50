"""PSIS-LOO tables: totals, standard errors and ranking, checked against ArviZ and by hand."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

from course_utils.loo import COMPARE_COLUMNS, Loo, loo, loo_compare, _pareto_k_threshold


def idata_with_loglik(rng, scale, n_obs=60, shift=0.0, y=None):
    """A posterior predictive setting: y ~ Normal(mu, 1) with mu's posterior spread ``scale``."""
    y = rng.normal(size=n_obs) if y is None else y
    mu = rng.normal(0, scale, (4, 400, 1)) + shift
    log_lik = -0.5 * np.log(2 * np.pi) - 0.5 * (y - mu) ** 2
    return az.from_dict({"posterior": {"mu": mu[..., 0]}, "log_likelihood": {"y": log_lik}})


@pytest.fixture
def two_fits(rng):
    """Two models of the same observations: one centred on them, one off by 0.8."""
    y = rng.normal(size=60)
    return idata_with_loglik(rng, 0.1, y=y), idata_with_loglik(rng, 0.1, shift=0.8, y=y)


def test_totals_match_arviz_and_the_loo_formulas(two_fits):
    idata = two_fits[0]
    ours = loo(idata)
    theirs = az.loo(idata)
    assert ours.elpd_loo == pytest.approx(theirs.elpd)
    # The loo package (and so brms) uses R's var() with n - 1, and so does ArviZ 1.x.
    assert ours.se_elpd_loo == pytest.approx(theirs.se)
    assert ours.p_loo == pytest.approx(theirs.p)
    log_lik = idata.log_likelihood["y"].to_numpy().reshape(1600, -1)
    lpd = logsumexp(log_lik, axis=0) - np.log(1600)
    p_i = lpd - ours.pointwise["elpd_loo"].to_numpy()
    assert ours.se_p_loo == pytest.approx(np.sqrt(len(p_i) * np.var(p_i, ddof=1)))
    assert ours.looic == pytest.approx(-2 * ours.elpd_loo)
    assert ours.se_looic == pytest.approx(2 * ours.se_elpd_loo)


def test_compare_ranks_best_first_with_brms_columns(two_fits):
    good, bad = two_fits
    table = loo_compare({"bad": bad, "good": good})
    assert list(table.columns) == COMPARE_COLUMNS
    assert table.index.tolist() == ["good", "bad"]
    assert table.loc["good", ["elpd_diff", "se_diff"]].tolist() == [0.0, 0.0]
    assert table.loc["bad", "elpd_diff"] == pytest.approx(table.loc["bad", "elpd_loo"] - table.loc["good", "elpd_loo"])
    diff_i = loo(bad).pointwise["elpd_loo"] - loo(good).pointwise["elpd_loo"]
    assert table.loc["bad", "se_diff"] == pytest.approx(np.sqrt(len(diff_i) * diff_i.var(ddof=1)))
    # ArviZ's compare (unrounded) gives the same difference, with the same sign since ArviZ 1.0;
    # its dse still divides by n where elpd_loo's se (above) now uses n - 1.
    arviz_table = az.compare({"bad": bad, "good": good}, round_to="none")
    assert table.loc["bad", "elpd_diff"] == pytest.approx(arviz_table.loc["bad", "elpd_diff"])
    n = len(diff_i)
    assert table.loc["bad", "se_diff"] == pytest.approx(arviz_table.loc["bad", "dse"] * np.sqrt(n / (n - 1)))


def test_compare_refuses_different_observations(rng):
    with pytest.raises(ValueError, match="different numbers of observations"):
        loo_compare({"a": idata_with_loglik(rng, 0.1, 50), "b": idata_with_loglik(rng, 0.1, 60)})


def test_missing_log_likelihood_says_how_to_fix(rng):
    with pytest.raises(ValueError, match="log_likelihood=True"):
        loo(az.from_dict({"posterior": {"mu": rng.normal(size=(2, 10))}}))


def test_pareto_k_threshold_and_table():
    assert _pareto_k_threshold(4000) == 0.7
    assert _pareto_k_threshold(100) == pytest.approx(0.5)
    pointwise = pd.DataFrame({"elpd_loo": np.zeros(8), "p_loo": np.zeros(8),
                              "pareto_k": [0.1, 0.5, 0.69, 0.7, 0.71, 0.99, 1.0, 1.4]})
    result = Loo(pointwise=pointwise, n_draws=4000)
    table = result.pareto_k_table()
    assert table["Count"].tolist() == [4, 3, 1]
    assert table["Pct."].tolist() == [50.0, 37.5, 12.5]
    assert result.bad_observations().tolist() == [4, 5, 6, 7]


def test_wide_posterior_gives_large_k(rng):
    # A posterior far wider than the data warrant makes single observations influential.
    result = loo(idata_with_loglik(rng, 3.0, n_obs=20))
    assert (result.pointwise["pareto_k"] > 0.7).any()
    assert "Pareto k diagnostic values" in str(result)
