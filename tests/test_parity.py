"""Parity with the original brms fits (issue 7).

``parity/brms_results.json`` holds brms's fits of the lecture's five models (written by
``make parity``). The appendix ``book/appendix-parity.md`` sets every reported quantity
beside the chapters' Python fits and computes, per row, the largest |z| over its
estimates: the difference in units of the combined Monte Carlo standard error. The slow
tests read what the built appendix glued and fail when any row is beyond the tolerance
|z| <= z* = Phi^-1(1 - 0.01 / (2 N)) for N comparisons (a 1% chance of any false alarm if
both sides sample the same posterior), when a reported quantity is missing, or when the
appendix did not use the chapters' cached fits. The fast tests check the JSON itself.
"""

from __future__ import annotations

import ast
import json
import math
import os
from pathlib import Path

import pytest
import xarray as xr
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
BRMS_JSON = ROOT / "parity" / "brms_results.json"
MODELS = ["m1", "m2", "m3", "m_simple", "m_varying"]
# The parameters the lecture reports for each model (summary() rows; m3 also its
# posterior_summary()'s actor and block effects).
N_PARAMETERS = {"m1": 92, "m2": 3, "m3": 20, "m_simple": 9, "m_varying": 10}
LOO_QUANTITIES = ["elpd_loo", "se_elpd_loo", "p_loo", "se_p_loo", "looic", "se_looic"]
PARAMETER_FIELDS = ["estimate", "est_error", "l95", "u95", "rhat", "ess_bulk", "ess_tail",
                    "mcse_mean", "mcse_sd", "mcse_l95", "mcse_u95"]


@pytest.fixture(scope="module")
def brms():
    assert BRMS_JSON.is_file(), "parity/brms_results.json is missing: run `make parity`"
    return json.loads(BRMS_JSON.read_text())


def test_brms_results_hold_every_model_and_quantity(brms):
    assert set(brms["versions"]) >= {"R", "brms", "rstan"}
    for model in MODELS:
        record = brms["models"][model]
        assert len(record["parameters"]) == N_PARAMETERS[model], model
        for name, row in record["parameters"].items():
            missing = [f for f in PARAMETER_FIELDS if not isinstance(row.get(f), (int, float))]
            assert not missing, (model, name, missing)
            assert row["mcse_mean"] > 0 and row["ess_bulk"] > 0, (model, name)
        assert all(isinstance(record["loo"][q], (int, float)) for q in LOO_QUANTITIES), model
        assert record["timing"]["wall_s"] > record["timing"]["sampling_s"] > 0, model
        assert record["chains"] == 4 and record["iter"] == 2000 and record["warmup"] == 1000, model
    assert brms["models"]["m1"]["seed"] == 9 and brms["models"]["m3"]["seed"] == 1
    assert brms["loo_compare"]["mlm"]["best"] == "m2"
    assert brms["loo_compare"]["trolley"]["best"] == "m_varying"


def test_brms_fits_converged(brms):
    """The reference itself must be trustworthy: brms's Rhat and divergences."""
    for model in MODELS:
        record = brms["models"][model]
        assert max(p["rhat"] for p in record["parameters"].values()) < 1.05, model
        assert record["diagnostics"]["divergent"] == 0, model


def glued(built_book) -> dict:
    record = built_book / "jupyter_execute" / "book" / "appendix-parity.glue.json"
    return {name: ast.literal_eval(output["data"]["text/plain"])
            for name, output in json.loads(record.read_text()).items()}


@pytest.mark.slow
def test_every_row_agrees_within_monte_carlo_error(built_book, brms):
    values = glued(built_book)
    rows = values["parity_max_abs_z"]
    expected = {f"{m}:{p}" for m in MODELS for p in brms["models"][m]["parameters"]}
    expected |= {f"{m}:{q}" for m in MODELS for q in LOO_QUANTITIES}
    expected |= {f"{pair}:{q}" for pair in ("m1 vs m2", "m_simple vs m_varying") for q in ("elpd_diff", "se_diff")}
    assert set(rows) == expected, set(rows) ^ expected
    n_comparisons = 4 * sum(N_PARAMETERS.values()) + len(MODELS) * len(LOO_QUANTITIES) + 4
    assert values["parity_n_comparisons"] == n_comparisons
    z_star = stats.norm.ppf(1 - 0.01 / (2 * n_comparisons))
    assert math.isclose(values["parity_z_star"], z_star, rel_tol=1e-9)
    beyond = {row: z for row, z in rows.items() if z is None or z > z_star}
    assert not beyond, f"rows beyond |z| <= {z_star:.2f}: {beyond}"


@pytest.mark.slow
def test_appendix_uses_the_chapters_fits(built_book):
    """The appendix's fits are the cached fits the chapters use (same fingerprints), so
    it compares brms with what readers see and never refits on its own."""
    fingerprints = glued(built_book)["parity_fingerprints"]
    folder = Path(os.environ.get("COURSE_FIT_CACHE", ROOT / ".cache" / "fits"))
    for model in MODELS:
        with xr.open_dataset(folder / f"{model}.nc", group="posterior") as posterior:
            assert posterior.attrs["course_fingerprint"] == fingerprints[model], model


@pytest.mark.slow
def test_appendix_page_renders(built_book):
    html = (built_book / "html" / "book" / "appendix-parity.html").read_text()
    assert "Traceback" not in html
    assert "elpd_diff" in html and "b_a_id.f6" in html and "sd_id__Intercept" in html
