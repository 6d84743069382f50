"""brms-style summaries of synthetic posteriors with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.summary import COLUMNS, brms_summary, posterior_summary


def test_blocks_labels_and_levels(toy_idata):
    summary = brms_summary(toy_idata)
    table = summary.table
    assert list(table.index) == ["b_Intercept", "b_x", "sd_g__Intercept", "sigma"]
    assert table["block"].tolist() == ["b", "b", "sd", "dpar"]
    assert summary.block("sd", "g").index.tolist() == ["sd(Intercept)"]
    assert summary.block("b").index.tolist() == ["Intercept", "x"]
    assert summary.levels == {"g": 3}


def test_values_are_mean_sd_quantiles_and_diagnostics(toy_idata):
    table = brms_summary(toy_idata).table
    x = toy_idata.posterior["x"].to_numpy().reshape(-1)
    row = table.loc["b_x"]
    assert row["Estimate"] == pytest.approx(x.mean())
    assert row["Est.Error"] == pytest.approx(x.std(ddof=1))
    assert row["l-95% CI"] == pytest.approx(np.quantile(x, 0.025))
    assert row["u-95% CI"] == pytest.approx(np.quantile(x, 0.975))
    # Independent draws: Rhat near 1 and ESS near the number of draws.
    assert table["Rhat"].between(0.99, 1.01).all()
    assert table["Bulk_ESS"].between(1500, 2600).all()
    assert table["Tail_ESS"].between(1200, 2600).all()


def test_stuck_chain_shows_in_rhat(toy_idata):
    toy_idata.posterior["x"][0] += 3.0  # one chain elsewhere
    table = brms_summary(toy_idata).table
    assert table.loc["b_x", "Rhat"] > 1.5
    assert table.loc["b_x", "Bulk_ESS"] < 100


def test_printed_like_brms(toy_idata):
    text = str(brms_summary(toy_idata))
    assert text.splitlines()[:5] == [
        " Family: gaussian",
        "  Links: mu = identity",
        "Formula: y ~ 1 + x + (1 | g)",
        "   Data: 30 observations",
        "  Draws: 4 chains, each with iter = 1200; warmup = 700; thin = 1;",
    ]
    assert "total post-warmup draws = 2000" in text
    order = [text.index(s) for s in (
        "Multilevel Hyperparameters:", "~g (Number of levels: 3)", "sd(Intercept)",
        "Regression Coefficients:", "Further Distributional Parameters:", "sigma",
    )]
    assert order == sorted(order)
    header = next(line for line in text.splitlines() if "Estimate" in line)
    assert header.split() == ["Estimate", "Est.Error", "l-95%", "CI", "u-95%", "CI", "Rhat", "Bulk_ESS", "Tail_ESS"]
    assert "<table" in brms_summary(toy_idata)._repr_html_()


def test_posterior_summary_lists_varying_effects(toy_idata):
    table = posterior_summary(toy_idata)
    assert list(table.columns) == COLUMNS
    assert "r_g[c,Intercept]" in table.index
    assert len(table) == 7


def test_mcse_of_the_mean_is_sd_over_root_ess(toy_idata):
    table = posterior_summary(toy_idata, mcse=True)
    expected = table["Est.Error"] / np.sqrt(table["Bulk_ESS"])
    np.testing.assert_allclose(table["MCSE"], expected, rtol=0.15)
