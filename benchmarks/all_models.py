"""Fit the lecture's five models from a cold fit cache, time them, and set brms beside them.

Run with ``make bench-models`` (or ``python benchmarks/all_models.py``). Each model is
fitted with exactly the call its chapter makes (same formula, priors, sampler, settings
and seed), but into a temporary, empty fit cache with ``refit=True``, so the course's own
cache (``.cache/fits``) is neither read nor touched. The models run one after the other in
one process. For each it prints:

- wall time of the whole call (building the model, compiling, sampling, computing the
  pointwise log-likelihood the chapters store for LOO), split into compilation (nutpie:
  ``compile_pymc_model``), sampling (the sampler's own clock: ``nutpie.sample`` or PyMC's
  ``sampling_time``) and the rest;
- the smallest bulk ESS, the smallest bulk ESS per second of wall time and the largest
  Rhat over the parameters the lecture reports (the same ones as parity/brms_results.json),
  and the number of divergent transitions;
- brms's wall time and smallest bulk ESS per second from parity/brms_results.json (written
  by ``make parity``), and the ratios: how many times faster the Python fit is, and how
  many times more effective draws per second it makes.

It also checks that each fit's cache key is the one the chapter's cached fit has (when
the course cache holds that model), so the benchmark times the chapters' fits and not
some other model. PyTensor's and numba's compiled-code caches are left as they are; on a
machine that has never compiled these models, add a minute or two to the first run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import bambi as bmb
import numpy as np
import nutpie
import pandas as pd
import pymc as pm
import xarray as xr

from course_utils.data import load
from course_utils.fitting import fit_bambi, fit_pymc
from course_utils.summary import posterior_summary

ROOT = Path(__file__).resolve().parents[1]
BRMS_JSON = ROOT / "parity" / "brms_results.json"
MODELS = ["m1", "m2", "m3", "m_simple", "m_varying"]


# ---- timing hooks: nutpie's compilation and sampling, inside the chapters' calls ------------
class Clock:
    def __init__(self):
        self.compile = 0.0
        self.sampling = 0.0

    def reset(self):
        self.compile = self.sampling = 0.0


CLOCK = Clock()


def _timed(function, attribute):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            setattr(CLOCK, attribute, getattr(CLOCK, attribute) + time.perf_counter() - start)
    return wrapper


nutpie.compile_pymc_model = _timed(nutpie.compile_pymc_model, "compile")
nutpie.sample = _timed(nutpie.sample, "sampling")


# ---- the chapters' calls ------------------------------------------------------------------------
def fit_m1(cache):  # book/partial-pooling.md
    mlm = load("mlm")
    return fit_bambi(
        "m1", "con ~ 0 + id", mlm, family="gaussian", categorical=["id"],
        priors={"id": bmb.Prior("Normal", mu=0, sigma=1.5), "sigma": bmb.Prior("Exponential", lam=1)},
        chains=4, tune=1000, draws=1000, seed=9, cache=cache, refit=True,
    )[1]


def fit_m2(cache):  # book/partial-pooling.md
    mlm = load("mlm")
    return fit_bambi(
        "m2", "con ~ 1 + (1 | id)", mlm, family="gaussian", categorical=["id"],
        priors={
            "Intercept": bmb.Prior("Normal", mu=0, sigma=1.5),
            "1|id": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)),
            "sigma": bmb.Prior("Exponential", lam=1),
        },
        chains=4, tune=1000, draws=1000, seed=9, cache=cache, refit=True,
    )[1]


def m3_model() -> tuple[pm.Model, int]:  # book/crossed-clusters.md, "The exact model, in PyMC"
    chimps = load("chimpanzees")
    chimps["treatment"] = (1 + chimps["prosoc_left"] + 2 * chimps["condition"]).astype(str)
    coords = {
        "actor": sorted(chimps["actor"].unique()),
        "block": sorted(chimps["block"].unique()),
        "treatment": ["1", "2", "3", "4"],
    }
    actor_idx = chimps["actor"].to_numpy() - 1
    block_idx = chimps["block"].to_numpy() - 1
    treatment_idx = chimps["treatment"].astype(int).to_numpy() - 1
    with pm.Model(coords=coords) as model:
        a_bar = pm.Normal("b_a_Intercept", mu=0, sigma=1.5)
        b = pm.Normal("b_b_treatment", mu=0, sigma=0.5, dims="treatment")
        sigma_actor = pm.Exponential("sd_actor__a_Intercept", lam=1)
        sigma_block = pm.Exponential("sd_block__a_Intercept", lam=1)
        z_actor = pm.Normal("r_actor__a_offset", mu=0, sigma=1, dims="actor")
        z_block = pm.Normal("r_block__a_offset", mu=0, sigma=1, dims="block")
        r_actor = pm.Deterministic("r_actor__a", z_actor * sigma_actor, dims="actor")
        r_block = pm.Deterministic("r_block__a", z_block * sigma_block, dims="block")
        pm.Bernoulli(
            "pulled_left",
            logit_p=a_bar + r_actor[actor_idx] + r_block[block_idx] + b[treatment_idx],
            observed=chimps["pulled_left"].to_numpy(),
        )
    return model, len(chimps)


def fit_m3(cache):
    model, nobs = m3_model()
    return fit_pymc(
        "m3", model,
        description={
            "formula": "pulled_left ~ a + b; a ~ 1 + (1 | actor) + (1 | block); b ~ 0 + treatment",
            "family": "bernoulli", "links": {"mu": "logit"}, "nobs": nobs,
        },
        chains=4, tune=1000, draws=1000, random_seed=1, target_accept=0.9, cache=cache, refit=True,
    )


def trolley_data() -> pd.DataFrame:  # book/trolley.md
    trolley = load("trolley")
    trolley["response"] = pd.Categorical(trolley["response"], categories=range(1, 8), ordered=True)
    return trolley


CUTPOINT_PRIOR = {"threshold": bmb.Prior("Normal", mu=0, sigma=1.5)}


def fit_m_simple(cache):  # book/trolley.md
    return fit_bambi(
        "m_simple", "response ~ action + intention + contact", trolley_data(), family="cumulative",
        priors={**CUTPOINT_PRIOR, **{b: bmb.Prior("Flat") for b in ("action", "intention", "contact")}},
        chains=4, tune=1000, draws=1000, seed=71, sampler="nutpie", cache=cache, refit=True,
    )[1]


def fit_m_varying(cache):  # book/trolley.md
    return fit_bambi(
        "m_varying", "response ~ action + intention + contact + (1 | id)", trolley_data(),
        family="cumulative",
        priors={
            **CUTPOINT_PRIOR,
            **{b: bmb.Prior("Normal", mu=0, sigma=0.5) for b in ("action", "intention", "contact")},
            "1|id": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)),
        },
        noncentered=False, chains=4, tune=1000, draws=1000, seed=71,
        sampler="nutpie", adaptation="low_rank", cache=cache, refit=True,
    )[1]


FITS = {"m1": fit_m1, "m2": fit_m2, "m3": fit_m3, "m_simple": fit_m_simple, "m_varying": fit_m_varying}


# ---- the parameters the lecture reports (brms names, as in parity/brms_results.json) ------------
def python_name(model: str, brms_name: str) -> str:
    """The course's brms-style name for a brms parameter (only m1's differ: b_a_id.f6 -> b_id6)."""
    if model == "m1" and brms_name.startswith("b_a_id.f"):
        return "b_id" + brms_name[len("b_a_id.f"):]
    return brms_name


def reported(model: str, table: pd.DataFrame, brms: dict | None) -> pd.DataFrame:
    """The rows of ``table`` (Python's posterior_summary) that the lecture reports."""
    if brms is not None:
        names = [python_name(model, n) for n in brms["models"][model]["parameters"]]
        return table.loc[names]
    # Without brms's JSON: the summary's rows (no varying effects, except m3's).
    keep = ~table.index.str.startswith("r_") | (model == "m3")
    return table[keep]


def chapter_key_matches(name: str, idata) -> bool | None:
    """Whether the course cache's fit of ``name`` has this fit's key (None: not cached)."""
    folder = Path(os.environ.get("COURSE_FIT_CACHE", ROOT / ".cache" / "fits"))
    file = folder / f"{name}.nc"
    if not file.exists():
        return None
    with xr.open_dataset(file, group="posterior") as posterior:
        cached = posterior.attrs.get("course_fingerprint")
    return cached == idata.posterior.attrs.get("course_fingerprint")


def bench(name: str, cache: str, brms: dict | None) -> dict:
    CLOCK.reset()
    start = time.perf_counter()
    idata = FITS[name](cache)
    wall = time.perf_counter() - start
    sampling = CLOCK.sampling or float(idata.posterior.attrs.get("sampling_time", np.nan))
    table = reported(name, posterior_summary(idata), brms)
    row = {
        "model": name,
        "sampler": json.loads(idata.posterior.attrs.get("course_spec", "{}")).get("sampler", "?"),
        "wall s": wall,
        "compile s": CLOCK.compile if CLOCK.compile else np.nan,
        "sampling s": sampling,
        "rest s": wall - sampling - (CLOCK.compile or 0.0),
        "min bulk ESS": table["Bulk_ESS"].min(),
        "min bulk ESS/s": table["Bulk_ESS"].min() / wall,
        "max Rhat": table["Rhat"].max(),
        "divergent": int(idata.sample_stats["diverging"].sum()),
        "same key as chapter": chapter_key_matches(name, idata),
    }
    if brms is not None and name in brms["models"]:
        b = brms["models"][name]
        b_ess = min(p["ess_bulk"] for p in b["parameters"].values())
        row.update({
            "brms wall s": b["timing"]["wall_s"],
            "brms compile s": b["timing"]["compile_s"],
            "brms sampling s": b["timing"]["sampling_s"],
            "brms min bulk ESS": b_ess,
            "brms min bulk ESS/s": b_ess / b["timing"]["wall_s"],
            "brms max Rhat": max(p["rhat"] for p in b["parameters"].values()),
        })
        row["wall: brms / Python"] = row["brms wall s"] / wall
        row["ESS/s: Python / brms"] = row["min bulk ESS/s"] / row["brms min bulk ESS/s"]
    return row


def markdown(frame: pd.DataFrame) -> str:
    """The table as Markdown, numbers rounded for reading."""
    shown = frame.copy()
    for column in shown.columns:
        if shown[column].dtype.kind == "f":
            digits = 3 if "Rhat" in column else (1 if ("/" in column or "ESS/s" in column) else 0)
            shown[column] = shown[column].map(lambda v, d=digits: "" if pd.isna(v) else f"{v:,.{d}f}")
    header = "| " + " | ".join(["model", *shown.columns]) + " |"
    rule = "|" + "---|" * (len(shown.columns) + 1)
    rows = ["| " + " | ".join([str(i), *map(str, r)]) + " |" for i, r in zip(shown.index, shown.to_numpy())]
    return "\n".join([header, rule, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=MODELS, help="fit only these models")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    logging.getLogger("pymc").setLevel(logging.ERROR)
    logging.getLogger("bambi").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    brms = json.loads(BRMS_JSON.read_text()) if BRMS_JSON.is_file() else None
    if brms is None:
        print(f"({BRMS_JSON} not found: no brms columns; `make parity` writes it)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fits-") as cache:
        for name in args.only or MODELS:
            rows.append(bench(name, cache, brms))
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
    frame = pd.DataFrame(rows).set_index("model")
    total = frame["wall s"].sum()
    print()
    print(f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; all {len(frame)} models in {total:.0f} s")
    print(frame.to_string(float_format=lambda v: f"{v:.3f}"))
    print()
    columns = ["sampler", "wall s", "compile s", "sampling s", "min bulk ESS", "min bulk ESS/s", "max Rhat", "divergent"]
    if brms is not None:
        columns += ["brms wall s", "brms min bulk ESS", "brms min bulk ESS/s", "wall: brms / Python", "ESS/s: Python / brms"]
    print(markdown(frame[[c for c in columns if c in frame.columns]]))
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": {"cores": os.cpu_count(), "python": platform.python_version()},
             "rows": json.loads(frame.reset_index().to_json(orient="records"))}, indent=1))


if __name__ == "__main__":
    main()
