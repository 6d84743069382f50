"""The course's convergence policy, and the check that applies it to a fit.

The gap it fills: ArviZ computes Rhat, ESS and the sampler's divergences
(``az.summary``, ``az.rhat``, ``az.ess``) but does not decide whether a fit may be used.
An unattended build (the book), the exercises' reference posterior and the grader's own
fits of students' models all need that decision, and the same one, so it is made here
once: :data:`POLICY`.

The policy is Vehtari et al.'s (2021) recommendation, applied to every parameter
(cluster effects included, not only those a summary shows): rank-normalised split Rhat
at most 1.01, bulk and tail ESS at least 400, and no divergent transition at all. It is
a property the settings must have for *any* seed, not one that a lucky trajectory
happens to pass: other CPUs round differently, so a given seed does not give the same
trajectory everywhere. ``benchmarks/seed_robustness.py`` fits every model of the book
and of the grader with many seeds and records that each one meets it
(``benchmarks/results/seed_robustness.json``, checked by ``tests/test_models.py``).

:func:`diagnose` measures a fit, :meth:`Diagnostics.problems` says what breaks the
policy, :func:`check_convergence` raises with that list.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from .summary import posterior_summary

__all__ = ["POLICY", "ConvergenceError", "ConvergencePolicy", "Diagnostics", "check_convergence", "diagnose"]


class ConvergenceError(AssertionError):
    """A fit failed the course's convergence policy."""


@dataclass(frozen=True)
class ConvergencePolicy:
    """When a fit may be used: thresholds that every parameter must meet."""

    rhat_max: float = 1.01
    ess_min: float = 400
    divergent_max: int = 0


#: The course's policy, for the chapters, the reference posterior and the grader's fits.
POLICY = ConvergencePolicy()


@dataclass
class Diagnostics:
    """A fit's convergence figures: the worst parameter for each, and the divergences."""

    parameters: int
    max_rhat: float
    worst_rhat: str
    min_ess: float  # the smaller of bulk and tail ESS, over every parameter
    worst_ess: str
    divergent: int | None  # None: the sampler's statistics are missing
    chains: int
    draws: int
    table: pd.DataFrame = field(repr=False, default=None)

    def problems(self, policy: ConvergencePolicy = POLICY) -> list[str]:
        """What breaks ``policy``, one sentence each (empty when the fit may be used)."""
        table, found = self.table, []
        stats = table[["Rhat", "Bulk_ESS", "Tail_ESS"]]
        missing = stats.index[stats.isna().any(axis=1)].tolist()
        if missing:
            found.append(f"no Rhat or ESS for {missing[:5]}")
        high = table.index[table["Rhat"] > policy.rhat_max].tolist()
        if high:
            found.append(f"Rhat above {policy.rhat_max} for {high[:5]} (worst {self.max_rhat:.3f})")
        ess = stats[["Bulk_ESS", "Tail_ESS"]].min(axis=1)
        low = ess.index[ess < policy.ess_min].tolist()
        if low:
            found.append(f"ESS below {policy.ess_min:g} for {low[:5]} (lowest {self.min_ess:.0f})")
        if self.divergent is None:
            found.append("the sampler's statistics are missing, so divergences cannot be checked")
        elif self.divergent > policy.divergent_max:
            found.append(f"{self.divergent} divergent transition(s)")
        return found

    def as_dict(self) -> dict:
        """The figures as plain JSON values (without the table)."""
        record = {k: v for k, v in asdict(self).items() if k != "table"}
        for name in ("max_rhat", "min_ess"):
            record[name] = None if not np.isfinite(record[name]) else round(float(record[name]), 4)
        return record


def _divergent(idata) -> int | None:
    if isinstance(idata, xr.DataTree) and "sample_stats" in idata.children \
            and "diverging" in idata.sample_stats:
        return int(np.asarray(idata.sample_stats["diverging"]).sum())
    return None


def diagnose(idata: xr.DataTree | xr.Dataset, divergent: int | None = None) -> Diagnostics:
    """Rhat, bulk and tail ESS of every parameter (brms names) and the divergences.

    ``idata`` is a fit (its ``sample_stats`` give the divergences) or a posterior alone,
    whose divergences are then passed as ``divergent``.
    """
    table = posterior_summary(idata)
    ess = table[["Bulk_ESS", "Tail_ESS"]].min(axis=1)
    rhat = table["Rhat"]
    posterior = idata.posterior if isinstance(idata, xr.DataTree) else idata
    return Diagnostics(
        parameters=len(table),
        max_rhat=float(rhat.max()) if rhat.notna().any() else float("nan"),
        worst_rhat=str(rhat.idxmax()) if rhat.notna().any() else "",
        min_ess=float(ess.min()) if ess.notna().any() else float("nan"),
        worst_ess=str(ess.idxmin()) if ess.notna().any() else "",
        divergent=_divergent(idata) if divergent is None else int(divergent),
        chains=int(posterior.sizes.get("chain", 0)), draws=int(posterior.sizes.get("draw", 0)),
        table=table,
    )


def check_convergence(idata: xr.DataTree, *, name: str = "fit", policy: ConvergencePolicy = POLICY) -> str:
    """Raise :class:`ConvergenceError` unless the fit meets ``policy`` (the course's,
    :data:`POLICY`): every parameter with Rhat <= 1.01 and bulk and tail ESS >= 400,
    and no divergent transition.

    Returns a one-line report (worst Rhat, smallest ESS) for the reader.
    """
    found = diagnose(idata)
    problems = found.problems(policy)
    if problems:
        raise ConvergenceError(f"{name}: " + "; ".join(problems))
    divergences = f"{found.divergent} divergences" if found.divergent else "no divergences"
    return (f"{name}: {found.parameters} parameters, max Rhat {found.max_rhat:.3f}, "
            f"min ESS {found.min_ess:.0f}, {divergences}")
