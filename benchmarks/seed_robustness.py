"""Fit every model the course fits with many seeds: its settings must meet the convergence
policy for every one, not only for the seed its chapter happens to use.

Run with ``make bench-seeds`` (or ``python benchmarks/seed_robustness.py``; about an
hour on 2 cores). A seed stands in for another machine: CPUs round differently, so
the chapter's seed does not give the same trajectory everywhere, and a setting that
passes with one seed on one machine proves little. Fitted, each into an empty
temporary fit cache (the course's ``.cache/fits`` is neither read nor touched): the
book's models (``course_utils.models.LECTURE``: m1, m2, m3, m3_bambi, m_simple,
m_varying) with their chapter's settings, the chapter's seed first, then others. The
exercises' reference posterior is made of the chapter's m_simple and m_varying fits, and
the grader's trusted fits of the exercises' two models use the same settings
(``autograder.trusted.SETTINGS`` is made from ``M_VARYING_FIT``; the test checks that
``M_SIMPLE_FIT`` agrees), so these rows speak for them too.

Each fit is judged by ``course_utils.diagnostics`` (the policy the chapters, the
reference and the grader apply: every parameter with Rhat <= 1.01, bulk and tail ESS >=
400, no divergent transition). The run is written to
``benchmarks/results/seed_robustness.json`` (the settings, seeds, machine, library
versions and each fit's figures), which ``tests/test_seed_robustness.py`` holds against
today's settings and policy: change a model's settings or the pinned libraries and that
test fails until this benchmark has been run again. The exit status is 1 if any fit
broke the policy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

from course_utils.cache import library_versions
from course_utils.diagnostics import POLICY, diagnose
from course_utils.models import LECTURE, fit_model, prepared, settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "seed_robustness.json"
#: Seeds per model: more for the models that take seconds to fit.
SEEDS = {"m1": 20, "m2": 20, "m3": 20, "m3_bambi": 20, "m_simple": 10, "m_varying": 10}
#: The seeds tried after the chapter's own: far from any seed a chapter uses.
FIRST_OTHER_SEED = 1001


def plan(name: str, draws: int | None = None) -> tuple[dict, int]:
    """(the chapter's settings for ``name``, without the seed, with ``draws`` per chain
    if given; the chapter's seed)."""
    chosen = settings(name)
    options = {k: v for k, v in chosen.items() if k != "random_seed"}
    return ({**options, "draws": draws} if draws else options), chosen["random_seed"]


def seeds_for(name: str, count: int) -> list[int]:
    own = plan(name)[1]
    return ([own] + [FIRST_OTHER_SEED + i for i in range(count)])[:count]


def run(name: str, seeds: list[int], cache: str, draws: int | None = None) -> dict:
    options, _ = plan(name, draws)
    data = prepared(LECTURE[name])
    fits = []
    for seed in seeds:
        start = time.perf_counter()
        _, idata = fit_model(name, data, **{**options, "random_seed": seed}, cache=cache, refit=True)
        found = diagnose(idata)
        fits.append({"seed": seed, **found.as_dict(), "problems": found.problems(POLICY),
                     "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps({"model": name, **fits[-1]}), flush=True)
    return {
        "settings": options, "seeds": seeds, "fits": fits,
        "worst": {"max_rhat": max(f["max_rhat"] for f in fits), "min_ess": min(f["min_ess"] for f in fits),
                  "divergent": max(f["divergent"] for f in fits)},
        "passed": not any(f["problems"] for f in fits),
        # Where and with what it ran (a record can hold models from several runs: --only).
        "policy": asdict(POLICY), "libraries": library_versions(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "cpu": _cpu(), "python": platform.python_version()},
        "command": " ".join(["python", "benchmarks/seed_robustness.py", *sys.argv[1:]]),
    }


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = list(LECTURE)
    parser.add_argument("--only", nargs="*", choices=names, help="fit only these models (the record is then "
                        "updated for them alone)")
    parser.add_argument("--seeds", type=int, help="seeds per model (default: 20 for the quick models, 10 for "
                        "the Trolley ones)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the record (default {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--draws", type=int, help="draws per chain instead of the chapter's, to see what other "
                        "settings give (needs --out: the default record holds the chapters' settings)")
    args = parser.parse_args()
    if args.draws and args.out == RESULTS:
        parser.error("--draws needs --out: the default record holds the chapters' own settings")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    logging.getLogger("bambi").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    record = json.loads(args.out.read_text()) if args.only and args.out.is_file() else {"models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as cache:
        for name in args.only or names:
            started = time.perf_counter()
            record["models"][name] = run(name, seeds_for(name, args.seeds or SEEDS[name]), cache, args.draws)
            record["models"][name]["seconds"] = round(time.perf_counter() - started)
            # Written after each model, so that a long run stopped part-way keeps what it found.
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"\n{'model':<18} {'seeds':>5} {'max Rhat':>9} {'min ESS':>8} {'divergent':>9}  verdict")
    for name, result in record["models"].items():
        worst = result["worst"]
        print(f"{name:<18} {len(result['seeds']):>5} {worst['max_rhat']:>9.4f} {worst['min_ess']:>8.0f} "
              f"{worst['divergent']:>9}  {'every seed passes' if result['passed'] else 'FAILS the policy'}")
    print(f"wrote {args.out}")
    return 0 if all(result["passed"] for result in record["models"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
