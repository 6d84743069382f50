"""Convergence checks that a chapter runs on its own fits, because the book is built unattended.

:func:`check_convergence` looks at every parameter (cluster effects included), not only
those a summary shows, and fails on a missing value as well as on a bad one.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .summary import posterior_summary

__all__ = ["ConvergenceError", "check_convergence"]


class ConvergenceError(AssertionError):
    """A fit failed the course's convergence thresholds."""


def check_convergence(idata: xr.DataTree, *, rhat_max: float = 1.01, ess_min: float = 400,
                      name: str = "fit") -> str:
    """Raise :class:`ConvergenceError` unless every parameter has Rhat <= ``rhat_max``,
    bulk and tail ESS >= ``ess_min``, and the sampler reported no divergent transition.

    Returns a one-line report (worst Rhat, smallest ESS) for the reader.
    """
    table = posterior_summary(idata)
    problems = []
    stats = table[["Rhat", "Bulk_ESS", "Tail_ESS"]]
    missing = stats.index[stats.isna().any(axis=1)].tolist()
    if missing:
        problems.append(f"no Rhat or ESS for {missing[:5]}")
    high = table.index[table["Rhat"] > rhat_max].tolist()
    if high:
        problems.append(f"Rhat above {rhat_max} for {high[:5]} (worst {table['Rhat'].max():.3f})")
    ess = stats[["Bulk_ESS", "Tail_ESS"]].min(axis=1)
    low = ess.index[ess < ess_min].tolist()
    if low:
        problems.append(f"ESS below {ess_min:g} for {low[:5]} (lowest {ess.min():.0f})")
    if "sample_stats" not in idata.children or "diverging" not in idata.sample_stats:
        problems.append("the sampler's statistics are missing, so divergences cannot be checked")
    elif divergent := int(np.asarray(idata.sample_stats["diverging"]).sum()):
        problems.append(f"{divergent} divergent transition(s)")
    if problems:
        raise ConvergenceError(f"{name}: " + "; ".join(problems))
    return (f"{name}: {len(table)} parameters, max Rhat {table['Rhat'].max():.3f}, "
            f"min ESS {ess.min():.0f}, no divergences")
