"""The course's figure style and the one figure no library draws for us.

The chapters draw their figures with seaborn and ArviZ. This module holds the style they
share (:func:`use_course_style`, :data:`PALETTE`) and :func:`plot_category_bars`, which the
exercises use on the course's tidy prediction tables.

The palette is Okabe and Ito's, which stays distinguishable under the common forms of
colour blindness. Functions draw on an ``ax`` they are given (or a new one) and return it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


__all__ = ["PALETTE", "plot_category_bars", "use_course_style"]

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
