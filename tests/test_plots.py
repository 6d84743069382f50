"""The course's figures draw what they say: one interval per cluster, means where they belong."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest



def test_intervals_quantiles_top_to_bottom():
    from course_utils.plots import plot_intervals

    values = np.linspace(0, 1, 1001)
    fig, ax = plt.subplots()
    plot_intervals({"first": values, "second": values + 10}, ax=ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["first", "second"]
    assert list(ax.get_yticks()) == [1, 0]  # first on top
    outer, inner = ax.collections[0].get_segments()[0], ax.collections[1].get_segments()[0]
    np.testing.assert_allclose(outer[:, 0], [0.05, 0.95])
    np.testing.assert_allclose(inner[:, 0], [0.25, 0.75])
    assert ax.lines[0].get_xdata()[0] == pytest.approx(0.5)
    plt.close(fig)


def test_densities_are_labelled_at_their_peaks():
    from course_utils.plots import plot_densities

    rng = np.random.default_rng(0)
    fig, ax = plt.subplots()
    plot_densities({"narrow": rng.normal(1, 0.1, 4000), "wide": rng.normal(3, 0.5, 4000)}, ax=ax, xlim=(0, 5))
    labels = {t.get_text(): t.xy for t in ax.texts}
    assert labels["narrow"][0] == pytest.approx(1, abs=0.1) and labels["wide"][0] == pytest.approx(3, abs=0.2)
    assert labels["narrow"][1] > labels["wide"][1]  # the narrow one peaks higher
    plt.close(fig)


def test_prediction_panels_one_per_facet_with_shared_average():
    from course_utils.plots import plot_prediction_panels

    per_actor = pd.DataFrame({"actor": np.repeat([1, 2, 3], 2), "t": ["a", "b"] * 3,
                              ".epred": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], ".lower": 0.0, ".upper": 1.0, ".width": 0.95})
    average = pd.DataFrame({"t": ["a", "b"], ".epred": [0.45, 0.55], ".lower": 0.0, ".upper": 1.0, ".width": 0.95})
    observed = pd.DataFrame({"actor": [2], "t": ["b"], ".epred": [1.0]})
    fig, axs = plot_prediction_panels({"actor": per_actor, "average": average}, x="t", facet="actor",
                                      observed=observed, ncols=2)
    visible = [ax for ax in axs.flat if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["actor 1", "actor 2", "actor 3"]
    np.testing.assert_allclose(visible[1].lines[0].get_ydata(), [0.3, 0.4])
    np.testing.assert_allclose(visible[2].lines[1].get_ydata(), [0.45, 0.55])  # average in every panel
    assert len(visible[1].lines) == 3 and len(visible[0].lines) == 2  # observed only where there is data
    # Every column's lowest panel labels the x axis, also where the panel below is empty.
    assert [ax.get_xlabel() for ax in visible] == ["", "t", "t"]
    assert all(label.get_visible() for label in visible[1].get_xticklabels())
    assert [ax.get_ylabel() for ax in visible] == ["probability", "", "probability"]
    with pytest.raises(KeyError, match="no prediction table has the column 'block'"):
        plot_prediction_panels({"average": average}, x="t", facet="block")
    plt.close("all")


def test_ppc_bars_count_each_data_set():
    from course_utils.plots import plot_ppc_bars

    replicated = pd.DataFrame({".draw": np.repeat([7, 9], 4), ".prediction": [1, 1, 2, 3, 3, 3, 3, 2]})
    fig, axs = plot_ppc_bars([1, 2, 2, 3], replicated, categories=[1, 2, 3])
    heights = [[p.get_height() for p in ax.patches] for ax in axs]
    assert heights == [[1, 2, 1], [2, 1, 1], [0, 1, 3]]
    assert [ax.get_title() for ax in axs] == ["observed", "replicate 1", "replicate 2"]
    assert [ax.get_xlabel() for ax in axs] == ["response"] * 3 and axs[0].get_ylabel() == "count"
    plt.close(fig)


def test_ppc_bars_wrap_into_rows_with_labelled_axes():
    from course_utils.plots import plot_ppc_bars

    replicated = pd.DataFrame({".draw": np.repeat(np.arange(5), 3), ".prediction": np.tile([1, 2, 3], 5)})
    fig, axs = plot_ppc_bars([1, 2, 3], replicated, categories=[1, 2, 3], xlabel="rating")
    assert len(axs) == 6 and fig.get_size_inches()[0] == pytest.approx(7.5)  # the page's width, 3 a row
    assert [ax.get_xlabel() for ax in axs] == ["", "", "", "rating", "rating", "rating"]
    assert [ax.get_ylabel() for ax in axs] == ["count", "", "", "count", "", ""]
    plt.close(fig)


def test_category_bars_panels_and_heights():
    from course_utils.plots import plot_category_bars

    table = pd.DataFrame({
        "action": np.repeat([0, 1], 6), "intention": np.tile(np.repeat([0, 1], 3), 2),
        ".category": np.tile([1, 2, 3], 4), ".epred": np.arange(12) / 12,
    })
    fig, axs = plot_category_bars(table, row="action", hue="intention")
    assert axs.shape == (2, 1)
    assert [p.get_height() for p in axs[1, 0].patches] == pytest.approx(np.arange(6, 12) / 12)
    assert axs[1, 0].get_title() == "action = 1"
    plt.close(fig)
