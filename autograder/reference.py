"""The reference posterior the Trolley exercises are graded against.

The reference solution is the Trolley chapter's (``book/trolley.md``): the same models
(built by :mod:`course_utils.models`, which the chapter shows), sampler settings and
seed, so ``fit`` reuses the chapter's cached fits when they exist. :func:`build`
summarises it into a small JSON file, ``autograder/reference/trolley.json``, committed
with its provenance (data hash, model specifications, sampler settings, library
versions):

- per model: mean, sd, their MCSE and the 95% interval of the six cutpoints, the three
  coefficients and (``m_varying``) sd(id); ``elpd_loo`` with its se, ``p_loo`` and MCSE;
- the comparison: ``elpd_diff`` and ``se_diff`` of ``m_simple`` against ``m_varying``;
- predicted probabilities of the seven ratings (mean and MCSE) for every participant
  under each of the six kinds of story, for the average participant, and for a new
  participant (both of brms's ways of drawing one: ``gaussian`` and ``uncertainty``).

Rebuild it with ``make reference`` (``python -m autograder reference``) after a change
that moves the posterior; ``python -m autograder reference --check`` refits (or reads
the cached fit) and compares with the committed file using the grading rule.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from course_utils.cache import library_versions
from course_utils.data import DATASETS
from course_utils.diagnostics import check_convergence
from course_utils.models import fit_model, prepared

from . import summaries as S

__all__ = ["REFERENCE_FILE", "REFERENCE_MODELS", "trolley_data", "fit_reference", "build", "save", "load_reference",
           "compare_references"]

REFERENCE_FILE = Path(__file__).parent / "reference" / "trolley.json"
#: The reference solution's models: the Trolley chapter's (``course_utils/models/``).
REFERENCE_MODELS = ("m_simple", "m_varying")


def trolley_data() -> pd.DataFrame:
    """The Trolley data as the chapter and the exercises use it (ordered response)."""
    return prepared("trolley")


def fit_reference(data: pd.DataFrame | None = None, *, seed: int | None = None) -> dict:
    """Fit (or load from the fit cache) both reference models: name -> (model, idata).

    The models and settings are the chapter's (:mod:`course_utils.models`); ``seed``
    replaces the chapter's seed. Each fit must meet the course's convergence policy, as
    the chapter's does (:func:`course_utils.diagnostics.check_convergence` raises
    otherwise): a reference is never built from a fit that did not converge.
    """
    data = trolley_data() if data is None else data
    fits = {}
    for name in REFERENCE_MODELS:
        model, idata = fit_model(name, data, **({"random_seed": seed} if seed is not None else {}))
        check_convergence(idata, name=f"the reference's {name}")
        fits[name] = (model, idata)
    return fits


def _rounded(value, digits: int = 6):
    """Floats to ``digits`` significant digits, recursively (keeps the file small)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def summarise_fit(posterior, data: pd.DataFrame) -> dict:
    """Parameters and LOO of one cumulative fit, from its draws."""
    result, mcse = S.loo_stats(S.cumulative_log_lik(posterior, data), posterior)
    return {
        "parameters": S.parameter_stats(posterior),
        "loo": {"elpd_loo": result.elpd_loo, "se_elpd_loo": result.se_elpd_loo, "p_loo": result.p_loo,
                "mcse_elpd_loo": mcse, "max_pareto_k": float(result.pointwise["pareto_k"].max())},
        "_loo": result,
    }


def participant_predictions(posterior, data: pd.DataFrame, chunk: int = 30) -> pd.DataFrame:
    """Mean and MCSE of every participant's rating probabilities under each kind of story."""
    tau = S.draws_matrix(posterior, S.CUTPOINTS)
    stories = S.stories(data)
    ids = sorted(data["id"].astype(str).unique())
    tables = []
    for start in range(0, len(ids), chunk):
        rows = pd.DataFrame({"id": ids[start:start + chunk]}).merge(stories, how="cross")
        alpha = S._intercepts_for(posterior, rows["id"])
        probs = S.category_probabilities(tau, S.linear_predictor(posterior, rows, alpha))
        tables.append(S.probability_table(rows, probs, ["id", *S.STORY_COLUMNS]))
    return pd.concat(tables, ignore_index=True)


def build(fits: dict | None = None, data: pd.DataFrame | None = None) -> dict:
    """The reference as a JSON-ready dict (see the module docs for what it holds)."""
    data = trolley_data() if data is None else data
    fits = fit_reference(data) if fits is None else fits
    posteriors = {name: idata.posterior.to_dataset() for name, (_, idata) in fits.items()}
    models = {name: summarise_fit(post, data) for name, post in posteriors.items()}
    simple, varying = models["m_simple"].pop("_loo"), models["m_varying"].pop("_loo")
    diff_i = simple.pointwise["elpd_loo"].to_numpy() - varying.pointwise["elpd_loo"].to_numpy()
    comparison = {
        "elpd_diff": float(diff_i.sum()),
        "se_diff": float(np.sqrt(len(diff_i) * np.var(diff_i, ddof=1))),
        "mcse_elpd_diff": float(np.hypot(models["m_simple"]["loo"]["mcse_elpd_loo"],
                                         models["m_varying"]["loo"]["mcse_elpd_loo"])),
    }
    post = posteriors["m_varying"]
    stories = S.stories(data)
    tau = S.draws_matrix(post, S.CUTPOINTS)
    average = S.probability_table(stories, S.category_probabilities(tau, S.linear_predictor(post, stories)),
                                  S.STORY_COLUMNS)
    new = {kind: S.probability_table(stories, probs, S.STORY_COLUMNS)
           for kind, probs in S.new_participant_probabilities(post, stories).items()}
    sha = {name: DATASETS[name].sha256 for name in ("trolley",)}
    reference = {
        "provenance": {
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": "python -m autograder reference",
            "data": {"trolley.csv": sha["trolley"], "rows": int(len(data))},
            "fits": {name: json.loads(idata.posterior.attrs.get("course_fit_key", "{}"))
                     for name, (_, idata) in fits.items()},
            "libraries": library_versions(),
        },
        "models": models,
        "comparison": comparison,
        "predictions": {
            "participants": S.as_records(participant_predictions(post, data)),
            "average": S.as_records(average),
            "new": {kind: S.as_records(table) for kind, table in new.items()},
        },
    }
    return _rounded(reference)


def save(reference: dict, path: str | os.PathLike = REFERENCE_FILE) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(reference, separators=(",", ":"), sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load_reference(path: str | os.PathLike = REFERENCE_FILE) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: build it with 'make reference'")
    return json.loads(path.read_text())


def compare_references(fresh: dict, committed: dict) -> list[str]:
    """Where a freshly built reference disagrees with the committed one, by the grading
    rule of :mod:`autograder.checks` (an empty list when every number agrees)."""
    from .checks import FLOORS, agrees

    problems = []
    for model, parts in committed["models"].items():
        for name, old in parts["parameters"].items():
            new = fresh["models"][model]["parameters"].get(name)
            if new is None:
                problems.append(f"{model} {name}: missing from the fresh fit")
                continue
            for what, mcse in (("mean", "mcse_mean"), ("sd", "mcse_sd")):
                if not agrees(new[what], new[mcse], old[what], old[mcse], FLOORS["parameter"]):
                    problems.append(f"{model} {name} {what}: {new[what]:.4g} now, {old[what]:.4g} committed")
        old, new = parts["loo"], fresh["models"][model]["loo"]
        if not agrees(new["elpd_loo"], new["mcse_elpd_loo"], old["elpd_loo"], old["mcse_elpd_loo"], FLOORS["elpd"]):
            problems.append(f"{model} elpd_loo: {new['elpd_loo']:.1f} now, {old['elpd_loo']:.1f} committed")
    old, new = committed["comparison"], fresh["comparison"]
    if not agrees(new["elpd_diff"], new["mcse_elpd_diff"], old["elpd_diff"], old["mcse_elpd_diff"], FLOORS["elpd"]):
        problems.append(f"elpd_diff: {new['elpd_diff']:.1f} now, {old['elpd_diff']:.1f} committed")
    tables = [("participants", committed["predictions"]["participants"], fresh["predictions"]["participants"]),
              ("average", committed["predictions"]["average"], fresh["predictions"]["average"])]
    tables += [(f"new ({kind})", committed["predictions"]["new"][kind], fresh["predictions"]["new"][kind])
               for kind in committed["predictions"]["new"]]
    for label, old_rows, new_rows in tables:
        if len(old_rows) != len(new_rows):
            problems.append(f"{label} predictions: {len(new_rows)} rows now, {len(old_rows)} committed")
            continue
        bad = sum(not agrees(n["mean"], n["mcse"], o["mean"], o["mcse"], FLOORS["probability"])
                  for o, n in zip(old_rows, new_rows))
        if bad:
            problems.append(f"{label} predictions: {bad} of {len(old_rows)} probabilities moved")
    return problems
