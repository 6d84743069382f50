"""The limits of grading one submission, with its time limits derived from this machine.

A wall-clock limit fixed in seconds holds on the machine where it was chosen, and stops
a correct submission on a slower or busier one: the grade would then depend on the
machine. So the time limits are not fixed. Unless the instructor sets them
(``--timeout``, ``--cell-timeout``), each is a stated multiple of what the canary (the
solution notebooks, graded through the whole path by the preflight) took on the machine
that grades:

=======================  ==============================================================
limit                    derived as :data:`TIME_MULTIPLE` x share x ...
=======================  ==============================================================
a cell                   the canary's slowest cell (its ``m_varying`` fit)
the notebooks            the canary's whole nbgrader run (both notebooks), plus a
                         cell's limit
a trusted fit, per seed  the slowest of the canary's trusted fits (the right
                         ``m_varying``), as long as it took when it was made
the checks               the canary's checks
=======================  ==============================================================

and the trusted fits one submission asks for share a trusted fit's limit for each model
it can ask for (:func:`autograder.runner.refit_budget`).

each at least its floor in :data:`FLOORS`. The notebooks' limit holds one cell's limit
on top, so that a submission whose stuck cell is stopped at the cell's limit still has
the time for the rest, and only that cell's checks are lost. nbclient's wait for a cell's last outputs
after the kernel replied (``iopub_timeout``, fixed at 4 s by default; nbgrader fails the
whole notebook when it runs out, which on a busy machine stopped a correct submission
from being graded) is a quarter of the cell's limit. *share* is how much less of the machine a
submission gets than the canary had: the canary runs alone, and its fits run their chains
in parallel (nutpie, one thread per chain), while the class is graded several
submissions at a time: ``max(1, submissions at once on a host x min(chains, cores) /
cores)``. On the course's 2-core machine with two workers that is 2, so a cell may take
4 times what the canary's slowest cell took.

The canary's pass is remembered between runs (:mod:`autograder.preflight`), and the
machine may be busier now than then. So every run measures :func:`speed` (a small fixed
computation, timed) and scales the remembered times by how much slower it runs now
(never down). Without any canary measurement (grading with ``canary=False``), the limits
are :data:`REFERENCE` (the course's reference machine) scaled the same way by
:data:`REFERENCE_SPEED`, and by the share beyond the reference machine's.

Memory and disk are limits of the submission, not of the machine's speed, and stay fixed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np

__all__ = [
    "FLOORS",
    "IOPUB_SHARE",
    "REFERENCE",
    "REFERENCE_SHARE",
    "REFERENCE_SPEED",
    "SUBMISSION_THREADS",
    "TIME_MULTIPLE",
    "CanaryTimes",
    "Limits",
    "derive",
    "share",
    "speed",
]

#: Threads a submission's fits run on: the exercises' 2 chains (their SAMPLING), in parallel.
SUBMISSION_THREADS = 2
#: Each time limit is this many times what the canary took (after the share).
TIME_MULTIPLE = 2.0
#: The smallest each time limit can be (seconds): below these, start-up costs dominate.
FLOORS = {"cell_seconds": 60.0, "submission_seconds": 120.0, "fit_seconds": 60.0, "check_seconds": 60.0,
          "iopub_seconds": 30.0}
#: nbclient's wait for a cell's last outputs, as a share of the cell's limit.
IOPUB_SHARE = 0.25
#: Limits where no canary was measured: seconds on the course's reference machine (2 cores,
#: two submissions at once: a share of :data:`REFERENCE_SHARE`).
#: (The notebooks' is without the cell's limit that is added to it.)
REFERENCE = {"cell_seconds": 600.0, "submission_seconds": 600.0, "fit_seconds": 900.0, "check_seconds": 600.0}
REFERENCE_SHARE = 2.0
#: :func:`speed` on the reference machine, nothing else running (seconds; measured 0.012
#: to 0.016 on an AMD EPYC core, every other process paused; 0.036 to 0.044 with the two
#: cores busy with fits).
REFERENCE_SPEED = 0.013


@dataclass(frozen=True)
class Limits:
    """Per submission: wall time (s) of the whole nbgrader run, of a cell, of one trusted
    fit (per seed) and of the checks; memory and disk (bytes). A time left ``None`` is
    derived from the machine (:func:`derive`)."""

    submission_seconds: float | None = None
    cell_seconds: float | None = None
    fit_seconds: float | None = None
    check_seconds: float | None = None
    memory_bytes: int = 6 * 2**30
    disk_bytes: int = 4 * 2**30

    def derived(self) -> bool:
        """Whether every time limit is set."""
        return all(getattr(self, name) is not None for name in REFERENCE)

    @property
    def iopub_seconds(self) -> float:
        """How long nbclient waits for a cell's last outputs once the kernel has replied
        (its ``iopub_timeout``, a fixed 4 s by default): :data:`IOPUB_SHARE` of a cell's."""
        return max(FLOORS["iopub_seconds"], IOPUB_SHARE * self.cell_seconds)


@dataclass(frozen=True)
class CanaryTimes:
    """What the canary took (seconds) and the machine's :func:`speed` when it ran."""

    notebooks: float  # the whole nbgrader run
    slowest_cell: float
    checks: float
    fit: float  # the slowest trusted fit it used, when it was made
    speed: float
    reused: bool = False  # remembered from an earlier run, rather than measured in this one

    def as_dict(self) -> dict:
        return asdict(self)


def speed(repeats: int = 5) -> float:
    """Seconds a small fixed computation takes here now (the median of ``repeats``, after
    one run to warm up): more on a slower machine, and on a busy one, where this process
    gets less of a core.

    It computes in place, in two buffers made once: a computation that allocates its
    arrays anew measures the kernel's page faults too, which depend on what the process
    allocated before (the same machine gave 0.03 s or 0.13 s by whether PyMC had been
    imported), not on the machine."""
    x0 = np.linspace(-3.0, 3.0, 100_000)
    x, y = np.empty_like(x0), np.empty_like(x0)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        np.copyto(x, x0)
        for _ in range(40):  # x <- 1.5 tanh(x) + exp(-x^2)
            np.tanh(x, out=y)
            y *= 1.5
            np.multiply(x, x, out=x)
            np.negative(x, out=x)
            np.exp(x, out=x)
            x += y
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def share(workers_on_host: int, cores: int, chains: int) -> float:
    """How much less of a machine each submission gets than the canary alone had."""
    cores = max(1, cores)
    return max(1.0, workers_on_host * min(chains, cores) / cores)


def derive(limits: Limits, canary: CanaryTimes | None, *, speed_now: float, share_now: float) -> tuple[Limits, str]:
    """``limits`` with every time limit that is ``None`` derived (see the module docs),
    and one line saying how, for the log."""
    if limits.derived():
        return limits, "time limits as given"
    if canary is not None:
        # A canary graded in this run measured the machine as it is; a remembered one did not.
        slower = max(1.0, speed_now / canary.speed) if canary.reused and canary.speed > 0 else 1.0
        factor = TIME_MULTIPLE * share_now * slower
        base = {"cell_seconds": canary.slowest_cell, "submission_seconds": canary.notebooks,
                "fit_seconds": canary.fit, "check_seconds": canary.checks}
        how = (f"{TIME_MULTIPLE:g} x {share_now:g} (submissions sharing the cores) x {slower:.2f} (this machine now "
               f"against when the canary ran) x the canary's times (slowest cell {canary.slowest_cell:.0f} s, "
               f"notebooks {canary.notebooks:.0f} s, trusted fit {canary.fit:.0f} s, checks {canary.checks:.0f} s)")
    else:
        slower = max(1.0, speed_now / REFERENCE_SPEED)
        factor = slower * max(1.0, share_now / REFERENCE_SHARE)
        base = REFERENCE
        how = (f"{slower:.2f} (this machine against the reference machine) x {max(1.0, share_now / REFERENCE_SHARE):g} "
               "(submissions sharing the cores, beyond the reference's) x the reference machine's limits")
    chosen = {name: getattr(limits, name) if getattr(limits, name) is not None
              else max(FLOORS[name], round(factor * base[name])) for name in REFERENCE}
    if limits.submission_seconds is None:  # room for one cell stopped at its limit
        chosen["submission_seconds"] += chosen["cell_seconds"]
    derived = replace(limits, **chosen)
    return derived, (f"time limits: cell {derived.cell_seconds:.0f} s, notebooks {derived.submission_seconds:.0f} s, "
                     f"trusted fit {derived.fit_seconds:.0f} s per seed, checks {derived.check_seconds:.0f} s ({how})")
