"""Tidy draws: as_draws_df, spread_draws, mean_qi, cluster_means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_utils.draws import as_draws_df, cluster_means, mean_qi, spread_draws


def test_as_draws_df_indices_are_one_based_like_r(toy_idata):
    draws = as_draws_df(toy_idata)
    assert len(draws) == 2000
    assert list(draws.columns[-3:]) == [".chain", ".iteration", ".draw"]
    assert draws[".chain"].tolist()[498:502] == [1, 1, 2, 2]
    assert draws[".iteration"].tolist()[498:502] == [499, 500, 1, 2]
    assert draws[".draw"].tolist() == list(range(1, 2001))
    # Chain 2, iteration 1 is posterior[chain=1, draw=0].
    assert draws.loc[500, "b_x"] == toy_idata.posterior["x"].to_numpy()[1, 0]


def test_spread_draws_long_by_cluster(toy_idata):
    long = spread_draws(toy_idata, "r_g[g,term]")
    assert list(long.columns) == ["g", "term", "r_g", ".chain", ".iteration", ".draw"]
    assert len(long) == 3 * 2000
    assert long["g"].unique().tolist() == ["a", "b", "c"]
    assert set(long["term"]) == {"Intercept"}
    b = long[long["g"] == "b"]
    np.testing.assert_array_equal(b["r_g"], toy_idata.posterior["1|g"].sel(g__factor_dim="b").to_numpy().reshape(-1))
    assert long.attrs["groups"] == ["g", "term"]


def test_spread_draws_joins_scalars_by_draw(toy_idata):
    long = spread_draws(toy_idata, "b_Intercept", "r_g[g,term]")
    assert list(long.columns[:4]) == ["g", "term", "b_Intercept", "r_g"]
    first = long[(long["g"] == "c") & (long[".draw"] == 7)].iloc[0]
    draws = as_draws_df(toy_idata).set_index(".draw")
    assert first["b_Intercept"] == draws.loc[7, "b_Intercept"]
    assert first["r_g"] == draws.loc[7, "r_g[c,Intercept]"]


def test_spread_draws_parses_integer_levels():
    draws = pd.DataFrame({"r_id[6,Intercept]": [0.1, 0.2], "r_id[29,Intercept]": [0.3, 0.4],
                          ".chain": [1, 1], ".iteration": [1, 2], ".draw": [1, 2]})
    long = spread_draws(draws, "r_id[id,term]")
    assert long["id"].dtype == "int64"
    assert long["id"].tolist() == [6, 6, 29, 29]  # numeric order, not text order


def test_spread_draws_errors_name_the_problem(toy_idata):
    with pytest.raises(KeyError, match="no parameter is named r_id"):
        spread_draws(toy_idata, "r_id[id,term]")
    with pytest.raises(ValueError, match="names 1"):
        spread_draws(toy_idata, "r_g[g]")
    with pytest.raises(KeyError, match="b_nope"):
        spread_draws(toy_idata, "b_nope")


def test_mean_qi_known_values():
    frame = pd.DataFrame({"k": np.repeat(["p", "q"], 101), "v": np.r_[np.arange(101.0), np.arange(101.0) * 2]})
    out = mean_qi(frame, "v", by=["k"], width=[0.5, 0.9])
    assert list(out.columns) == ["k", "v", ".lower", ".upper", ".width", ".point", ".interval"]
    p50 = out[(out["k"] == "p") & (out[".width"] == 0.5)].iloc[0]
    assert (p50["v"], p50[".lower"], p50[".upper"]) == pytest.approx((50.0, 25.0, 75.0))
    q90 = out[(out["k"] == "q") & (out[".width"] == 0.9)].iloc[0]
    assert (q90["v"], q90[".lower"], q90[".upper"]) == pytest.approx((100.0, 10.0, 190.0))
    assert set(out[".point"]) == {"mean"} and set(out[".interval"]) == {"qi"}


def test_mean_qi_several_columns_and_no_groups():
    frame = pd.DataFrame({"a": np.arange(11.0), "b": np.arange(11.0) + 100})
    out = mean_qi(frame, width=0.8)
    assert list(out.columns) == ["a", "a.lower", "a.upper", "b", "b.lower", "b.upper", ".width", ".point", ".interval"]
    assert (out.loc[0, "a.lower"], out.loc[0, "b.upper"]) == pytest.approx((1.0, 109.0))


def test_mean_qi_uses_groups_from_spread_draws(toy_idata):
    out = mean_qi(spread_draws(toy_idata, "r_g[g,term]"))
    assert out["g"].tolist() == ["a", "b", "c"]
    expected = toy_idata.posterior["1|g"].mean(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(out["r_g"], expected)


def test_cluster_means_add_grand_mean_and_deviation(toy_idata):
    means = cluster_means(toy_idata, group="g")
    post = toy_idata.posterior
    expected = (post["Intercept"] + post["1|g"]).mean(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(mean_qi(means, "value")["value"], expected)


def test_levels_are_parsed_without_merging():
    draws = pd.DataFrame({"r_id[007,Intercept]": [0.1], "r_id[7,Intercept]": [0.2], "r_id[1e3,Intercept]": [0.3],
                          ".chain": [1], ".iteration": [1], ".draw": [1]})
    long = spread_draws(draws, "r_id[id,term]")
    assert sorted(long["id"].tolist()) == ["007", "1e3", "7"]


def test_mean_qi_keeps_missing_groups_and_accepts_a_string():
    frame = pd.DataFrame({"k": ["a", "a", None, None], "v": [1.0, 3.0, 5.0, 7.0], "label": list("wxyz")})
    out = mean_qi(frame, by="k")  # text columns are not summarised
    assert out["v"].tolist() == [2.0, 6.0]
    assert out["k"].isna().tolist() == [False, True]
    assert "label" not in out.columns
