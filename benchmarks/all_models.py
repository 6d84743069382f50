"""Fit the lecture's five models from a cold fit cache, time them, and set brms beside them.

Run with ``make bench-models`` (or ``python benchmarks/all_models.py``). Each model is
fitted as its chapter fits it (the model and settings of ``course_utils/models``, which the
chapter shows), but into a temporary, empty fit cache with ``refit=True``, so the course's own
cache (``.cache/fits``) is neither read nor touched. The models run one after the other in
one process. For each it prints:

- wall time of the whole call (building the model, compiling, sampling, computing the
  pointwise log-likelihood the chapters store for LOO), split into compilation (nutpie:
  ``compile_pymc_model``), sampling (the sampler's own clock: ``nutpie.sample`` or PyMC's
  ``sampling_time``) and the rest;
- the smallest bulk ESS, the smallest bulk ESS per second of wall time and the largest
  Rhat over the parameters the lecture reports (the same ones as parity/brms_results.json),
  and the number of divergent transitions;
- brms's wall time and smallest bulk ESS per second, and the ratios: how many times
  faster the Python fit is, and how many times more effective draws per second it makes.
  When R with brms and rstan is installed (``make parity`` installs them), brms's side is
  fitted in the same run, after the Python fits (``parity/fit_brms.R``, the lecture's
  brms code, into a temporary folder), so a ratio never mixes two machines or two runs;
  otherwise it is read from ``parity/brms_results.json`` and the output says so
  (``--brms run | recorded`` forces one or the other).

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
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import nutpie
import pandas as pd
import xarray as xr

from course_utils.data import path as data_path
from course_utils.models import LECTURE, fit_model, prepared
from course_utils.summary import posterior_summary

ROOT = Path(__file__).resolve().parents[1]
BRMS_JSON = ROOT / "parity" / "brms_results.json"
#: brms's fits as `make parity` recorded them: the parameters the lecture reports, and brms's
#: side of the table when brms is not fitted in this run.
RECORDED = json.loads(BRMS_JSON.read_text()) if BRMS_JSON.is_file() else None
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


# ---- the chapters' models and settings (course_utils/models) -----------------------------------
def fit_chapter_model(name: str, data: pd.DataFrame, cache: str):
    """Fit ``name`` as its chapter does (model and settings from course_utils.models)."""
    return fit_model(name, data, cache=cache, refit=True)[1]


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


def bench(name: str, cache: str) -> dict:
    data = prepared(LECTURE[name])
    CLOCK.reset()
    start = time.perf_counter()
    idata = fit_chapter_model(name, data, cache)
    wall = time.perf_counter() - start
    sampling = CLOCK.sampling or float(idata.posterior.attrs.get("sampling_time", np.nan))
    table = reported(name, posterior_summary(idata), RECORDED)
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
    return row


def brms_columns(row: dict, brms: dict) -> dict:
    """brms's time and effective draws per second for ``row``'s model, and the ratios."""
    if row["model"] not in brms["models"]:
        return {}
    b = brms["models"][row["model"]]
    b_ess = min(p["ess_bulk"] for p in b["parameters"].values())
    columns = {
        "brms wall s": b["timing"]["wall_s"],
        "brms compile s": b["timing"]["compile_s"],
        "brms sampling s": b["timing"]["sampling_s"],
        "brms min bulk ESS": b_ess,
        "brms min bulk ESS/s": b_ess / b["timing"]["wall_s"],
        "brms max Rhat": max(p["rhat"] for p in b["parameters"].values()),
    }
    columns["wall: brms / Python"] = columns["brms wall s"] / row["wall s"]
    columns["ESS/s: Python / brms"] = row["min bulk ESS/s"] / columns["brms min bulk ESS/s"]
    return columns


def brms_installed() -> bool:
    """Whether R with brms and rstan can run here (``make parity`` installs them)."""
    if shutil.which("Rscript") is None:
        return False
    check = subprocess.run(["Rscript", "--vanilla", "-e", "library(brms); library(rstan)"], capture_output=True)
    return check.returncode == 0


def fit_brms(models: list[str], folder: Path) -> dict:
    """brms's fits of ``models`` in this run: ``parity/fit_brms.R`` (the lecture's brms code)
    into a temporary folder, so that both sides' times come from one machine and one run."""
    env = {**os.environ, **{f"PARITY_DATA_{name.upper()}": str(data_path(name))
                            for name in ("mlm", "chimpanzees", "trolley")}}
    out = folder / "brms_results.json"
    command = ["Rscript", str(ROOT / "parity" / "fit_brms.R"), "--out", str(out), "--fits", str(folder / "fits"),
               "--only", ",".join(models)]
    print("brms, in this run:", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return json.loads(out.read_text())


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
    parser.add_argument("--brms", choices=["auto", "run", "recorded"], default="auto", help=(
        "brms's side: fitted in this run ('run'; 'auto' when R with brms is installed) or as recorded in "
        "parity/brms_results.json ('recorded'; 'auto' otherwise)"))
    args = parser.parse_args()
    logging.getLogger("pymc").setLevel(logging.ERROR)
    logging.getLogger("bambi").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    models = args.only or MODELS
    in_this_run = args.brms == "run" or (args.brms == "auto" and brms_installed())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fits-") as cache:
        for name in models:
            rows.append(bench(name, cache))
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
        if in_this_run:
            brms = fit_brms(models, Path(cache))
            source = "fitted in this run, after the Python fits"
        else:
            brms = RECORDED
            source = (f"recorded in {BRMS_JSON.relative_to(ROOT)} ({brms['machine']['cores']} cores, "
                      f"{brms['machine']['cpu']}): another run, maybe another machine" if brms else "none")
    if brms is not None:
        rows = [{**row, **brms_columns(row, brms)} for row in rows]
    frame = pd.DataFrame(rows).set_index("model")
    total = frame["wall s"].sum()
    print()
    print(f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; all {len(frame)} models in {total:.0f} s")
    print(f"brms: {source}")
    print(frame.to_string(float_format=lambda v: f"{v:.3f}"))
    print()
    columns = ["sampler", "wall s", "compile s", "sampling s", "min bulk ESS", "min bulk ESS/s", "max Rhat", "divergent"]
    if brms is not None:
        columns += ["brms wall s", "brms min bulk ESS", "brms min bulk ESS/s", "wall: brms / Python", "ESS/s: Python / brms"]
    print(markdown(frame[[c for c in columns if c in frame.columns]]))
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": {"cores": os.cpu_count(), "python": platform.python_version()}, "brms": source,
             "rows": json.loads(frame.reset_index().to_json(orient="records"))}, indent=1))


if __name__ == "__main__":
    main()
