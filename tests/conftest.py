"""Shared fixtures: synthetic posteriors shaped like Bambi's, and the course data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import arviz as az
import matplotlib
import numpy as np
import pandas as pd
import pytest

from autograder.limits import REFERENCE_SPEED, speed

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

if not os.environ.get("COURSE_DATA_DIR") and (SHARED_DATA / "mlm.csv").is_file():
    os.environ["COURSE_DATA_DIR"] = str(SHARED_DATA)

# Tests that read the real data need a local copy (the test machines have no route to
# the pinned URLs; the download path itself is tested against a local web server).
HAVE_DATA = bool(os.environ.get("COURSE_DATA_DIR")) and (Path(os.environ["COURSE_DATA_DIR"]) / "mlm.csv").is_file()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="no local data folder (COURSE_DATA_DIR)")


def machine_seconds(seconds: float) -> float:
    """A wait of ``seconds`` on the course's reference machine, as long as it is on this
    machine as it runs now (autograder.limits.speed): longer on a slower or busier one."""
    return seconds * max(1.0, speed() / REFERENCE_SPEED)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The whole book, built as `make book` builds it, once per test session (test_book.py
    checks its content, test_browser.py opens its pages). Chapters execute afresh (a new
    jupyter-cache); fits come from the fit cache. Returns the ``_build`` folder.

    ``COURSE_BUILT_BOOK=_build`` checks a book already built (e.g. by ``make book``)
    instead of building one."""
    if os.environ.get("COURSE_BUILT_BOOK"):
        built = Path(os.environ["COURSE_BUILT_BOOK"]).resolve()
        assert (built / "html" / "index.html").is_file(), f"COURSE_BUILT_BOOK={built} holds no built book (html/index.html)"
        return built
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "--warningiserror", "--keep-going"],
        check=False, capture_output=True, text=True, timeout=machine_seconds(1800),
    )
    assert result.returncode == 0, f"book build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return out / "_build"


@pytest.fixture(scope="session", autouse=True)
def grader_cache(tmp_path_factory):
    """The grader's trusted fits and canary passes for this test session only (shared by
    its grading tests), unless AUTOGRADER_CACHE names a folder."""
    if not os.environ.get("AUTOGRADER_CACHE"):
        os.environ["AUTOGRADER_CACHE"] = str(tmp_path_factory.mktemp("grader-cache"))
    return Path(os.environ["AUTOGRADER_CACHE"])


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


def bambi_like_idata(rng, n_chain=4, n_draw=500, levels=("a", "b", "c"), spec=True):
    """A posterior named as Bambi names ``y ~ 1 + x + (1 | g)`` (non-centred)."""
    n_level = len(levels)
    sd = np.abs(rng.normal(1.0, 0.1, (n_chain, n_draw)))
    offset = rng.normal(size=(n_chain, n_draw, n_level))
    posterior = {
        "Intercept": rng.normal(2.0, 0.5, (n_chain, n_draw)),
        "x": rng.normal(-1.0, 0.2, (n_chain, n_draw)),
        "1|g_sigma": sd,
        "1|g_offset": offset,
        "1|g": offset * sd[..., None],
        "sigma": np.abs(rng.normal(0.5, 0.05, (n_chain, n_draw))),
    }
    idata = az.from_dict(
        {"posterior": posterior},
        coords={"g__factor_dim": list(levels)},
        dims={"1|g_offset": ["g__factor_dim"], "1|g": ["g__factor_dim"]},
    )
    idata.posterior.attrs["modeling_interface"] = "bambi"
    if spec:
        idata.posterior.attrs["course_spec"] = json.dumps({
            "name": "toy", "formula": "y ~ 1 + x + (1 | g)", "family": "gaussian",
            "links": {"mu": "identity"}, "nobs": 30, "chains": n_chain, "draws": n_draw, "tune": 700,
        })
    return idata


@pytest.fixture
def toy_idata(rng):
    return bambi_like_idata(rng)


@pytest.fixture
def toy_data(rng):
    """Small clustered data: 6 groups of 8, a slope of 0.5, group sd 1."""
    g = np.repeat(np.arange(6), 8)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + rng.normal(0, 1.0, 6)[g] + rng.normal(0, 0.5, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.fixture(scope="session")
def tiny_fit(tmp_path_factory):
    """A real, small Bambi fit of ``y ~ 1 + (1 | g)``, made once per test session.

    Returns ``(data, fit_bambi keyword arguments, model, idata)``.
    """
    import bambi as bmb

    from course_utils.fitting import fit_bambi

    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(4), 6)
    data = pd.DataFrame({"y": rng.normal(size=24) + g * 0.5, "g": g})
    args = dict(
        family="gaussian", categorical=["g"], draws=150, tune=150, chains=2, seed=3,
        cache=tmp_path_factory.mktemp("fits"),
        priors={"Intercept": bmb.Prior("Normal", mu=0, sigma=2),
                "1|g": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)),
                "sigma": bmb.Prior("Exponential", lam=1)},
    )
    model, idata = fit_bambi("tiny", "y ~ 1 + (1 | g)", data, **args)
    return data, args, model, idata
