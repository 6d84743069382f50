"""The course's figures: one style, colour-blind-safe colours, labelled axes.

The palette is Okabe and Ito's, which stays distinguishable under the common forms of
colour blindness. Functions draw on an ``ax`` they are given (or a new one) and return it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .draws import mean_qi

__all__ = ["PALETTE", "plot_cluster_intervals", "plot_shrinkage", "use_course_style"]

# Okabe-Ito colours, in the order the course uses them.
PALETTE = {
    "no pooling": "#D55E00",  # vermillion
    "partial pooling": "#0072B2",  # blue
    "accent": "#009E73",  # bluish green
    "neutral": "#555555",
}


def use_course_style() -> None:
    """Set Matplotlib defaults for the book: readable at the page's width, no chart junk."""
    plt.rcParams.update({
        "figure.figsize": (7.5, 4.0),
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": plt.cycler(color=["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]),
        "legend.frameon": False,
    })


def plot_cluster_intervals(
    draws: pd.DataFrame, value: str, cluster: str, *, ax=None, color=None, title=None, ylabel=None,
    xlabel=None,
):
    """Posterior mean with 66% (thick) and 95% (thin) intervals for each cluster.

    ``draws`` is long (one row per cluster and draw), ``value`` the column to summarise
    and ``cluster`` the column naming the cluster. Clusters keep their order of first
    appearance along the x axis.
    """
    ax = ax or plt.gca()
    color = color or PALETTE["partial pooling"]
    summary = mean_qi(draws, value, width=[0.66, 0.95], by=[cluster])
    order = {c: i for i, c in enumerate(pd.unique(draws[cluster]))}
    for width, lw in ((0.95, 1.0), (0.66, 2.8)):
        rows = summary[summary[".width"] == width]
        x = rows[cluster].map(order)
        ax.vlines(x, rows[".lower"], rows[".upper"], color=color, lw=lw, alpha=0.8)
    means = summary[summary[".width"] == 0.95]
    ax.plot(means[cluster].map(order), means[value], "o", ms=3.5, color=color)
    ax.set_xticks([])
    ax.set_xlabel(xlabel if xlabel is not None else cluster)
    ax.set_ylabel(ylabel or value)
    if title:
        ax.set_title(title)
    return ax


def plot_shrinkage(
    no_pooling: pd.Series, partial_pooling: pd.Series, *, ax=None, reference: float | None = None,
    ylabel: str = "estimate", xlabel: str | None = None,
):
    """Each cluster's estimate under no pooling and partial pooling, side by side.

    Both series are indexed by cluster; the x axis follows ``no_pooling``'s order. A
    dashed line marks ``reference`` (e.g. the mean of the no-pooling estimates).
    """
    ax = ax or plt.gca()
    x = range(len(no_pooling))
    ax.scatter(x, no_pooling.to_numpy(), s=18, color=PALETTE["no pooling"], label="no pooling", zorder=2)
    ax.scatter(x, partial_pooling.reindex(no_pooling.index).to_numpy(), s=28, facecolors="none",
               edgecolors=PALETTE["partial pooling"], linewidths=1.3, label="partial pooling", zorder=3)
    if reference is not None:
        ax.axhline(reference, ls="--", color=PALETTE["neutral"], lw=1, label="mean of no-pooling estimates")
    ax.set_xticks([])
    ax.set_xlabel(xlabel if xlabel is not None else (no_pooling.index.name or "cluster"))
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.12), ncol=3)
    return ax
