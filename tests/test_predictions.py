"""epred_draws: expected outcomes per row of new data, checked against the parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd

from course_utils.draws import as_draws_df
from course_utils.predictions import epred_draws


def test_epred_is_intercept_plus_cluster_effect(tiny_fit):
    _, _, model, idata = tiny_fit
    newdata = pd.DataFrame({"g": [2, 0]})
    epred = epred_draws(model, idata, newdata)
    assert len(epred) == 2 * 300
    assert list(epred.columns) == ["g", ".row", ".epred", ".chain", ".iteration", ".draw"]
    draws = as_draws_df(idata)
    for g in (2, 0):
        ours = epred[epred["g"] == g].sort_values(".draw")[".epred"].to_numpy()
        expected = (draws["b_Intercept"] + draws[f"r_g[{g},Intercept]"]).to_numpy()
        np.testing.assert_allclose(ours, expected)
    assert epred[epred["g"] == 2][".row"].unique().tolist() == [0]


def test_epred_keeps_newdata_columns_and_draw_indices(tiny_fit):
    _, _, model, idata = tiny_fit
    newdata = pd.DataFrame({"g": [1, 1, 3], "label": ["x", "y", "z"]}, index=[10, 11, 12])
    epred = epred_draws(model, idata, newdata)
    assert epred.groupby(".row")["label"].first().tolist() == ["x", "y", "z"]
    assert epred.groupby(".row")[".draw"].agg(["min", "max", "count"]).values.tolist() == [[1, 300, 300]] * 3
    rows = epred[epred[".row"] < 2].pivot(index=".draw", columns=".row", values=".epred")
    np.testing.assert_allclose(rows[0], rows[1])  # same cluster, same draws
