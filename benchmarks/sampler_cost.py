"""Where the Trolley model's sampling time goes: leapfrog steps, and the cost of each.

Run with ``.venv/bin/python benchmarks/sampler_cost.py [--tune N] [--seed S]`` (2 to 4
minutes). It builds ``m_varying`` exactly as the Trolley chapter does (centred intercepts,
the ordered Normal(0, 1.5) cutpoint prior), compiles it for nutpie and samples it at the
exercises' size (2 chains x (1000 warm-up + 500 draws) by default, low-rank mass matrix,
warm-up kept), then prints the sampling time, the leapfrog steps taken (warm-up and draws;
one gradient each), the time per gradient, the mean step size after warm-up, the mean tree
depth and the smallest bulk ESS and largest Rhat of the cutpoints and sd(id). Run under two
stacks (two virtual environments) to see whether a slower fit comes from more steps or from
dearer gradients. It needs no course fit cache and writes nothing.

Runs under the course's earlier stack too (nutpie 0.16.8 took ``low_rank_modified_mass_matrix``
where 0.16.11 takes ``adaptation="low_rank"``), so the two can be set side by side.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import time
from importlib import metadata

import arviz as az
import bambi as bmb
import nutpie
import numpy as np

from course_utils.fitting import _keep_cutpoints_ordered, _threshold_start
from course_utils.models import prepared
from course_utils.models.m_varying import m_varying_model

CHAINS, TUNE, DRAWS, SEED = 2, 1000, 500, 71


def trolley_model() -> bmb.Model:
    """The chapter's m_varying (course_utils/models), built for nutpie."""
    model = m_varying_model(prepared("trolley"))
    _keep_cutpoints_ordered(model)
    model.build()
    return model


def low_rank() -> dict:
    parameters = inspect.signature(nutpie.sample).parameters
    return {"adaptation": "low_rank"} if "adaptation" in parameters else {"low_rank_modified_mass_matrix": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", type=int, default=TUNE, help=f"warm-up iterations per chain (default {TUNE})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"sampler seed (default {SEED})")
    args = parser.parse_args()
    model = trolley_model()
    pymc_model = model.backend.model
    dims = pymc_model.named_vars_to_dims
    keep = [rv.name for rv in pymc_model.free_RVs] + [
        d.name for d in pymc_model.deterministics if "__obs__" not in dims.get(d.name, ())]
    start = time.perf_counter()
    compiled = nutpie.compile_pymc_model(pymc_model, initial_points=_threshold_start(model), var_names=keep)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    trace = nutpie.sample(compiled, draws=DRAWS, tune=args.tune, chains=CHAINS, seed=args.seed, cores=CHAINS,
                          save_warmup=True, progress_bar=False, **low_rank())
    sampling_s = time.perf_counter() - start
    warmup = trace["warmup_sample_stats"] if "warmup_sample_stats" in trace else trace.warmup_sample_stats
    stats = trace["sample_stats"] if "sample_stats" in trace else trace.sample_stats
    steps = float(warmup["n_steps"].sum() + stats["n_steps"].sum())
    posterior = trace["posterior"]
    if hasattr(posterior, "to_dataset"):
        posterior = posterior.to_dataset()
    checked = posterior[["threshold", "1|id_sigma"]]
    ess, rhat = az.ess(checked), az.rhat(checked)
    result = {
        "tune": args.tune,
        "seed": args.seed,
        "python": platform.python_version(),
        **{p: metadata.version(p) for p in ("bambi", "pymc", "pytensor", "nutpie", "numba", "numpy")},
        "compile_s": round(compile_s, 1),
        "sampling_s": round(sampling_s, 1),
        "leapfrog_steps": int(steps),
        "steps_per_draw_after_warmup": round(float(stats["n_steps"].mean()), 1),
        "us_per_gradient_per_chain": round(sampling_s * CHAINS / steps * 1e6, 1),
        "step_size_after_warmup": round(float(stats["step_size"].mean()), 4),
        "mean_tree_depth": round(float(stats["depth"].mean()), 2),
        "sd_id_mean": round(float(np.asarray(posterior["1|id_sigma"]).mean()), 3),
        "min_bulk_ess": round(min(float(ess[v].min()) for v in ess.data_vars)),
        "max_rhat": round(max(float(rhat[v].max()) for v in rhat.data_vars), 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
