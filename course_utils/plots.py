"""The course's figures: one style, colour-blind-safe colours, labelled axes.

The palette is Okabe and Ito's, which stays distinguishable under the common forms of
colour blindness. Functions draw on an ``ax`` they are given (or a new one) and return it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


__all__ = ["PALETTE", "plot_category_bars", "plot_densities", "plot_intervals", "plot_ppc_bars", "plot_prediction_panels", "use_course_style"]

# Okabe-Ito colours, in the order the course uses them.
PALETTE = {
    "no pooling": "#D55E00",  # vermillion
    "partial pooling": "#0072B2",  # blue
    "accent": "#009E73",  # bluish green
    "neutral": "#555555",
}


# The Okabe-Ito colours in the order series take them.
SERIES = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]


def _colors(n: int) -> list[str]:
    if n > len(SERIES):
        raise ValueError(f"{n} series are more than the {len(SERIES)} colours that stay distinguishable")
    return SERIES[:n]


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
        "axes.prop_cycle": plt.cycler(color=SERIES),
        "legend.frameon": False,
    })


def plot_intervals(draws: dict, *, ax=None, prob: float = 0.5, prob_outer: float = 0.9, color=None):
    """Forest plot: median, inner and outer quantile intervals per parameter, top to bottom.

    ``draws`` maps a label to its draws (any shape), e.g. from
    :func:`course_utils.names.brms_draws`. The defaults are bayesplot's ``mcmc_intervals``
    (brms's ``mcmc_plot``): 50% and 90% intervals around the median.
    """
    ax = ax or plt.gca()
    color = color or PALETTE["partial pooling"]
    labels = list(draws)
    y = np.arange(len(labels))[::-1]
    for yi, label in zip(y, labels):
        values = np.asarray(draws[label]).reshape(-1)
        outer = np.quantile(values, [(1 - prob_outer) / 2, (1 + prob_outer) / 2])
        inner = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2])
        ax.hlines(yi, *outer, color=color, lw=1)
        ax.hlines(yi, *inner, color=color, lw=3.5)
        ax.plot(np.median(values), yi, "o", color="white", mec=color, mew=1.5, ms=6, zorder=3)
    ax.axvline(0, color=PALETTE["neutral"], lw=0.8, ls=":")
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"posterior median, {prob:.0%} and {prob_outer:.0%} intervals")
    return ax


def plot_densities(draws: dict, *, ax=None, colors=None, xlim=None, xlabel="value"):
    """Smoothed posterior densities, each labelled at its peak (no legend to look up)."""
    from scipy.stats import gaussian_kde

    ax = ax or plt.gca()
    colors = colors or _colors(len(draws))
    for (label, values), color in zip(draws.items(), colors):
        values = np.asarray(values).reshape(-1)
        grid = np.linspace(*(xlim or (values.min(), values.max())), 400)
        density = gaussian_kde(values)(grid)
        ax.fill_between(grid, density, color=color, alpha=0.6, lw=0)
        peak = density.argmax()
        ax.annotate(label, (grid[peak], density[peak]), xytext=(6, 4), textcoords="offset points", color=color,
                    fontweight="bold")
    ax.set_yticks([])
    ax.set_ylabel("posterior density")
    ax.set_xlabel(xlabel)
    if xlim:
        ax.set_xlim(*xlim)
    return ax


def plot_prediction_panels(
    predictions: dict, *, x: str, facet: str, observed: pd.DataFrame | None = None, value: str = ".epred",
    x_labels: dict | None = None, ylabel: str = "probability", ncols: int = 4, ylim=(0, 1),
    xlabel: str | None = None,
):
    """One panel per ``facet`` level: posterior mean lines and 95% ribbons over ``x``.

    ``predictions`` maps a legend label to a :func:`course_utils.draws.mean_qi` table (with
    a ``.width`` of 0.95). A table without the ``facet`` column (e.g. the average cluster)
    is drawn in every panel. ``observed`` (columns ``facet``, ``x``, ``value``) adds open
    circles. The lowest panel of each column carries the x axis's labels (``xlabel``,
    default ``x``).
    """
    with_facet = [t for t in predictions.values() if facet in t.columns]
    if not with_facet:
        raise KeyError(f"no prediction table has the column {facet!r} to make panels of")
    facets = pd.unique(with_facet[0][facet])
    nrows = int(np.ceil(len(facets) / ncols))
    fig, axs = plt.subplots(nrows, ncols, figsize=(2.1 * ncols, 2.1 * nrows), sharex=True, sharey=True,
                            squeeze=False)
    colors = _colors(len(predictions))
    for ax, level in zip(axs.flat, facets):
        for (label, table), color in zip(predictions.items(), colors):
            rows = table[table[facet] == level] if facet in table.columns else table
            rows = rows[rows[".width"] == 0.95] if ".width" in rows.columns else rows
            xs = rows[x].map(x_labels) if x_labels else rows[x].astype(str)
            ax.fill_between(xs, rows[".lower"], rows[".upper"], color=color, alpha=0.25, lw=0)
            ax.plot(xs, rows[value], color=color, label=label)
        obs = observed[observed[facet] == level] if observed is not None else None
        if obs is not None and not obs.empty:
            xs = obs[x].map(x_labels) if x_labels else obs[x].astype(str)
            ax.plot(xs, obs[value], "o", mfc="none", color="black", ms=5, label="observed", clip_on=False)
        ax.set_title(f"{facet} {level}")
        ax.set_ylim(*ylim)
    for ax in axs.flat[len(facets):]:
        ax.set_visible(False)
    for column in axs.T:
        lowest = [ax for ax in column if ax.get_visible()][-1]
        lowest.tick_params(axis="x", labelbottom=True)  # also above an empty panel
        lowest.set_xlabel(xlabel if xlabel is not None else x)
    for ax in axs[:, 0]:
        ax.set_ylabel(ylabel)
    legend = {}
    for ax in axs.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="upper center", ncol=len(legend), bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig, axs


def plot_ppc_bars(
    observed, replicated: pd.DataFrame, *, categories=None, title: str | None = None, xlabel: str = "response",
    ncols: int = 3,
):
    """Observed outcome counts beside those of replicated data sets, one panel each
    (bayesplot's ``ppc_hist`` for a discrete outcome, as brms's ``pp_check(type = "hist")``),
    ``ncols`` panels to a row.

    ``replicated`` is :func:`course_utils.predictions.predicted_draws` output (columns
    ``.draw`` and ``.prediction``). Returns the figure and its panels, observed first.
    """
    observed = pd.Series(np.asarray(observed))
    categories = list(categories) if categories is not None else sorted(observed.unique())
    draws = list(pd.unique(replicated[".draw"]))
    ncols = min(ncols, len(draws) + 1)
    nrows = int(np.ceil((len(draws) + 1) / ncols))
    fig, grid = plt.subplots(nrows, ncols, figsize=(2.5 * ncols, 2.1 * nrows + 0.4), sharex=True, sharey=True,
                             squeeze=False)
    panels = [("observed", observed, "#000000")] + [
        (f"replicate {i + 1}", replicated.loc[replicated[".draw"] == d, ".prediction"], PALETTE["partial pooling"])
        for i, d in enumerate(draws)
    ]
    axs = grid.flat[:len(panels)]
    for ax, (label, values, color) in zip(axs, panels):
        counts = values.value_counts().reindex(categories, fill_value=0)
        ax.bar([str(c) for c in categories], counts.to_numpy(), color=color, width=0.8)
        ax.set_title(label, fontsize=11)
    for ax in grid.flat[len(panels):]:
        ax.set_visible(False)
    for column in grid.T:
        lowest = [ax for ax in column if ax.get_visible()][-1]
        lowest.tick_params(axis="x", labelbottom=True)
        lowest.set_xlabel(xlabel)
    for ax in grid[:, 0]:
        ax.set_ylabel("count")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, np.asarray(axs)


def plot_category_bars(
    table: pd.DataFrame, *, row: str | None = None, col: str | None = None, hue: str,
    value: str = ".epred", category: str = ".category", ylabel: str = "probability",
):
    """Probability of each response category as bars, dodged by ``hue``, one panel per
    combination of ``row`` and ``col`` (with the 95% interval as an error bar when the
    table has ``.lower`` and ``.upper``)."""
    rows = list(pd.unique(table[row])) if row else [None]
    cols = list(pd.unique(table[col])) if col else [None]
    hues = sorted(pd.unique(table[hue]))
    categories = sorted(pd.unique(table[category]))
    fig, axs = plt.subplots(len(rows), len(cols), figsize=(2.6 * len(cols), 1.9 * len(rows) + 0.6),
                            sharex=True, sharey=True, squeeze=False)
    width = 0.8 / len(hues)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axs[i, j]
            panel = table
            if row:
                panel = panel[panel[row] == r]
            if col:
                panel = panel[panel[col] == c]
            for k, (h, color) in enumerate(zip(hues, _colors(len(hues)))):
                bars = panel[panel[hue] == h].set_index(category).reindex(categories)
                x = np.arange(len(categories)) + (k - (len(hues) - 1) / 2) * width
                errors = None
                if {".lower", ".upper"} <= set(bars.columns):
                    errors = np.vstack([bars[value] - bars[".lower"], bars[".upper"] - bars[value]])
                ax.bar(x, bars[value], width=width, color=color, yerr=errors, ecolor="#333333",
                       error_kw={"lw": 0.8}, label=f"{hue} = {h}")
            title = ", ".join(f"{name} = {v}" for name, v in ((row, r), (col, c)) if name)
            ax.set_title(title, fontsize=9)
            ax.set_xticks(np.arange(len(categories)), [str(c) for c in categories])
    for ax in axs[-1, :]:
        ax.set_xlabel("response")
    for ax in axs[:, 0]:
        ax.set_ylabel(ylabel)
    handles, labels = axs[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.5, 1.02))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig, axs
