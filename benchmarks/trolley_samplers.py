"""Time m_varying (the Trolley varying-intercepts model) under each sampler and parameterisation.

Run with ``make bench-trolley`` (or ``python benchmarks/trolley_samplers.py``). Every
variant fits the same model (the chapter's, from ``course_utils/models``; same priors, 4 chains of 1,000 warm-up and 1,000 kept
draws, same seed) from scratch, one after the other in one run, and the table printed
at the end compares wall time (compilation and sampling), the smallest bulk and tail ESS
over the cutpoints, coefficients and sd(id), the largest Rhat, and the smallest bulk ESS
per second of total wall time. Timings on shared machines are noisy: compare the rows
of one run, as ratios.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings

import pandas as pd

from course_utils.fitting import fit
from course_utils.models import prepared
from course_utils.models.m_varying import m_varying_model
from course_utils.summary import brms_summary

VARIANTS = {
    # name: (noncentered, sampler, extra sampler arguments)
    "pymc, non-centred (Bambi's defaults)": (True, "pymc", {}),
    "nutpie, non-centred": (True, "nutpie", {}),
    "nutpie, non-centred, low-rank mass matrix": (True, "nutpie", {"adaptation": "low_rank"}),
    "nutpie, centred": (False, "nutpie", {}),
    "nutpie, centred, low-rank mass matrix": (False, "nutpie", {"adaptation": "low_rank"}),
}


def fit_variant(variant: str, data: pd.DataFrame, seed: int, cache: str) -> dict:
    noncentered, sampler, extra = VARIANTS[variant]
    start = time.perf_counter()
    idata = fit(
        m_varying_model(data, noncentered=noncentered), "bench", inference_method=sampler, chains=4, tune=1000,
        draws=1000, random_seed=seed, cache=cache, refit=True, log_likelihood=False, **extra,
    )
    wall = time.perf_counter() - start
    table = brms_summary(idata).table  # cutpoints, coefficients and sd(id)
    sampling = idata.posterior.attrs.get("sampling_time")
    return {
        "variant": variant,
        "wall s": round(wall),
        "sampling s": round(float(sampling)) if sampling is not None else None,
        "min bulk ESS": round(table["Bulk_ESS"].min()),
        "min tail ESS": round(table["Tail_ESS"].min()),
        "lowest-ESS parameter": table["Bulk_ESS"].idxmin(),
        "max Rhat": round(table["Rhat"].max(), 3),
        "min bulk ESS / s": round(table["Bulk_ESS"].min() / wall, 1),
        "divergent": int(idata.sample_stats["diverging"].sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=71)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS), help="run only these variants")
    args = parser.parse_args()
    logging.getLogger("pymc").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    data = prepared("trolley")
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for variant in args.only or VARIANTS:
            rows.append(fit_variant(variant, data, args.seed, cache))
            print(rows[-1], flush=True)
    print()
    print(pd.DataFrame(rows).set_index("variant").to_string())


if __name__ == "__main__":
    main()
