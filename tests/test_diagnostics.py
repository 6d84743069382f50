"""check_convergence: passes good fits, names what is wrong with bad ones."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from course_utils.diagnostics import ConvergenceError, check_convergence


def with_divergences(idata, count):
    diverging = np.zeros((idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]), dtype=bool)
    diverging.flat[:count] = True
    idata["sample_stats"] = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return idata


def test_good_fit_passes_with_a_report(toy_idata):
    report = check_convergence(with_divergences(toy_idata, 0), name="toy")
    assert report.startswith("toy: 7 parameters, max Rhat 1.0")


def test_a_stuck_cluster_effect_fails_even_though_summaries_hide_it(toy_idata):
    toy_idata.posterior["1|g"][0, :, 1] += 5.0  # chain 1 elsewhere, for cluster b only
    with pytest.raises(ConvergenceError, match=r"Rhat above 1.01 for \['r_g\[b,Intercept\]'\]"):
        check_convergence(toy_idata)


def test_low_ess_and_divergences_are_reported(toy_idata):
    smooth = np.cumsum(np.random.default_rng(0).normal(size=(4, 500)), axis=1) * 0.01
    toy_idata.posterior["x"].values = smooth  # a random walk: very low ESS
    with pytest.raises(ConvergenceError) as err:
        check_convergence(with_divergences(toy_idata, 3))
    assert "ESS below 400 for ['b_x']" in str(err.value)
    assert "3 divergent transition(s)" in str(err.value)


def test_missing_diagnostics_fail(toy_idata):
    toy_idata.posterior["sigma"][:] = 0.5  # constant: Rhat and ESS are undefined
    with pytest.raises(ConvergenceError, match="no Rhat or ESS for \\['sigma'\\]"):
        check_convergence(with_divergences(toy_idata, 0))


def test_unknown_divergences_fail(toy_idata):
    with pytest.raises(ConvergenceError, match="divergences cannot be checked"):
        check_convergence(toy_idata)
