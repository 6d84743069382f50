"""The course's figures draw what they say: one interval per cluster, means where they belong."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba

from course_utils.plots import PALETTE, plot_cluster_intervals, plot_shrinkage


def test_cluster_intervals_one_thin_and_one_thick_line_per_cluster():
    draws = pd.DataFrame({"c": np.repeat(["b", "a", "c"], 201), "v": np.tile(np.linspace(0, 1, 201), 3)
                          + np.repeat([0.0, 1.0, 2.0], 201)})
    fig, ax = plt.subplots()
    plot_cluster_intervals(draws, "v", "c", ax=ax, title="t", ylabel="y")
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert [len(c.get_segments()) for c in lines] == [3, 3]
    thin = lines[0].get_segments()
    assert thin[0][:, 0].tolist() == [0, 0]  # "b" first: order of appearance
    np.testing.assert_allclose(sorted(seg[0, 1] for seg in thin), [0.025, 1.025, 2.025])
    means = ax.lines[0].get_ydata()
    np.testing.assert_allclose(means, [0.5, 1.5, 2.5])  # b, a, c
    assert (ax.get_title(), ax.get_ylabel(), ax.get_xlabel()) == ("t", "y", "c")
    plt.close(fig)


def test_shrinkage_aligns_clusters_and_draws_reference():
    no_pool = pd.Series([0.1, 0.5, 0.9], index=pd.Index([3, 1, 2], name="id"))
    partial = pd.Series([0.45, 0.3, 0.6], index=[1, 2, 3])  # other order on purpose
    fig, ax = plt.subplots()
    plot_shrinkage(no_pool, partial, ax=ax, reference=0.5)
    filled, hollow = ax.collections
    np.testing.assert_allclose(filled.get_offsets()[:, 1], [0.1, 0.5, 0.9])
    np.testing.assert_allclose(hollow.get_offsets()[:, 1], [0.6, 0.45, 0.3])
    assert ax.lines[0].get_ydata()[0] == 0.5
    assert ax.get_xlabel() == "id"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "no pooling", "partial pooling", "mean of no-pooling estimates"]
    np.testing.assert_allclose(filled.get_facecolor()[0], to_rgba(PALETTE["no pooling"]))
    plt.close(fig)
