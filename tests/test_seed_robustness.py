"""The sampler settings are robust, not lucky: every model the course fits met the
convergence policy with every one of many seeds, with today's settings, policy and
libraries.

The fits themselves take about an hour (``make bench-seeds``,
benchmarks/seed_robustness.py); this test reads the run it recorded and fails when the
record no longer speaks for the code: a model's settings, the policy or a pinned library
changed since, a model is missing, a fit broke the policy, or the grader's trusted fits
no longer use the settings of the chapter's fits that the record covers.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from course_utils.cache import library_versions
from course_utils.diagnostics import POLICY
from course_utils.models import LECTURE

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("seed_robustness", ROOT / "benchmarks" / "seed_robustness.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

RECORD = json.loads(bench.RESULTS.read_text()) if bench.RESULTS.is_file() else {"models": {}}
MODELS = list(LECTURE)
MIN_SEEDS = 10


def test_every_model_of_the_book_was_run():
    assert sorted(RECORD["models"]) == sorted(MODELS), "run make bench-seeds"


@pytest.mark.parametrize("name", ["m_simple", "m_varying"])
def test_the_graders_trusted_fits_are_made_as_the_chapters_fits_that_were_run(name):
    """A trusted fit of the exercises' right model is the chapter's fit with another seed
    (and no pointwise log-likelihood, which changes no draw): the record covers it."""
    from autograder.trusted import SETTINGS

    chapter, _ = bench.plan(name)
    assert {"chains": SETTINGS["chains"], "tune": SETTINGS["tune"], "draws": SETTINGS["draws"],
            "inference_method": SETTINGS["sampler"], "adaptation": SETTINGS["adaptation"]} == chapter


@pytest.mark.parametrize("name", MODELS)
def test_the_record_is_of_todays_settings_policy_and_libraries(name):
    result = RECORD["models"].get(name)
    assert result is not None, f"{name} was never run: make bench-seeds"
    options, chapter_seed = bench.plan(name)
    assert result["settings"] == json.loads(json.dumps(options)), \
        f"{name}'s settings changed since the record: run make bench-seeds"
    assert result["policy"] == asdict(POLICY)
    assert result["libraries"] == library_versions(), f"the libraries changed since {name} was run: make bench-seeds"
    seeds = result["seeds"]
    assert len(set(seeds)) == len(seeds) >= MIN_SEEDS
    assert chapter_seed in seeds
    assert [f["seed"] for f in result["fits"]] == seeds


@pytest.mark.parametrize("name", MODELS)
def test_every_seed_met_the_policy(name):
    result = RECORD["models"].get(name)
    assert result is not None, f"{name} was never run: make bench-seeds"
    for fit in result["fits"]:
        assert fit["problems"] == [], (name, fit)
        assert fit["divergent"] <= POLICY.divergent_max, (name, fit["seed"])
        assert fit["max_rhat"] <= POLICY.rhat_max, (name, fit["seed"])
        assert fit["min_ess"] >= POLICY.ess_min, (name, fit["seed"])
    assert result["passed"]
