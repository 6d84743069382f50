"""precis(): the data summary, histograms included, against rethinking's output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import needs_data
from course_utils.data import load
from course_utils.precis import _histospark, precis, _pretty_breaks


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1, 7, np.arange(1, 7.01, 0.5)),  # R: pretty(c(1, 7), 10)
        (0, 1, np.arange(0, 1.01, 0.1)),
        (48, 229, np.arange(40, 240.1, 20)),
        (0.0423, 0.4005, np.arange(0, 0.451, 0.05)),
    ],
)
def test_pretty_breaks_match_r(low, high, expected):
    np.testing.assert_allclose(_pretty_breaks(low, high), expected)


def test_histospark_shapes():
    # Edges 1, 1.2, ..., 3; right-closed bins, the first closed on the left too.
    assert _histospark([1, 2, 2, 3]) == "▃▁▁▁▇▁▁▁▁▃"
    assert _histospark(np.repeat([0, 1], [4, 6])) == "▅▁▁▁▁▁▁▁▁▇"  # like chose_prosoc
    assert _histospark([5, 5, 5]) == "▇"
    assert _histospark([]) == ""


def test_precis_columns_and_non_numeric_rows():
    frame = pd.DataFrame({"x": [1.0, 2.0, 2.0, 3.0], "name": list("abcd")})
    table = precis(frame)
    assert list(table.columns) == ["mean", "sd", "5.5%", "94.5%", "histogram"]
    assert table.loc["x", "mean"] == 2.0
    assert table.loc["x", "sd"] == pytest.approx(np.std([1, 2, 2, 3], ddof=1))
    assert table.loc["x", "5.5%"] == pytest.approx(1.165)
    assert table.loc["name"].drop("histogram").isna().all()
    assert table.loc["name", "histogram"] == ""


@needs_data
def test_precis_reproduces_the_lecture_for_mlm():
    table = precis(load("mlm"))
    assert table["histogram"].to_dict() == {
        "id": "▁▂▂▅▇▇▃▅▂▂▂▁", "group": "", "time": "▇▃▁▂▁▇▁▁▁▁▁▁",
        "wave": "▇▇▁▃▁▁", "con": "▁▂▃▇▃▂▁▁▁▁", "dan": "▁▁▅▇▇▃▁▁",
    }
    assert table.loc["con", "5.5%"] == pytest.approx(0.085244)
    assert table.loc["id", "sd"] == pytest.approx(50.69207461)


def test_infinite_values_are_left_out_of_the_histogram():
    assert _histospark([1.0, 2.0, np.inf, -np.inf, np.nan, 2.0, 3.0]) == _histospark([1.0, 2.0, 2.0, 3.0])
