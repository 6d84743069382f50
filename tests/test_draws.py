"""mean_qi: posterior mean and quantile interval per group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from course_utils.draws import mean_qi


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


def test_mean_qi_keeps_missing_groups_and_accepts_a_string():
    frame = pd.DataFrame({"k": ["a", "a", None, None], "v": [1.0, 3.0, 5.0, 7.0], "label": list("wxyz")})
    out = mean_qi(frame, by="k")  # text columns are not summarised
    assert out["v"].tolist() == [2.0, 6.0]
    assert out["k"].isna().tolist() == [False, True]
    assert "label" not in out.columns


def test_mean_qi_uses_the_groups_the_draws_carry():
    frame = pd.DataFrame({"g": np.repeat(["b", "a"], 3), "v": [1.0, 2.0, 3.0, 10.0, 20.0, 30.0],
                          ".chain": 1, ".iteration": [1, 2, 3] * 2, ".draw": [1, 2, 3] * 2})
    frame.attrs["groups"] = ["g"]
    out = mean_qi(frame)
    assert out["g"].tolist() == ["b", "a"] and out["v"].tolist() == [2.0, 20.0]  # draw indices left out
    with pytest.raises(KeyError, match="no column"):
        mean_qi(frame, "w")
