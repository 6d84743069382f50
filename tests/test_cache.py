"""The fit cache: hits, misses on every kind of change, atomic writes, unreadable files."""

from __future__ import annotations

import json
import os

import arviz as az
import bambi as bmb
import numpy as np
import pytest
import xarray as xr

from course_utils import cache


class CountingSampler:
    """Stands in for MCMC: returns a small posterior and counts its calls."""

    def __init__(self, seed=0):
        self.calls = 0
        self.seed = seed

    def __call__(self):
        self.calls += 1
        rng = np.random.default_rng(self.seed + self.calls)
        return az.from_dict({"posterior": {"mu": rng.normal(size=(2, 50))}})


KEY = {"formula": "y ~ 1", "priors": {"Intercept": bmb.Prior("Normal", mu=0, sigma=1.5)}, "seed": 1}


def test_second_call_loads_the_saved_fit(tmp_path):
    sampler = CountingSampler()
    first = cache.cached_idata("m", KEY, sampler, folder=tmp_path)
    second = cache.cached_idata("m", KEY, sampler, folder=tmp_path)
    assert sampler.calls == 1
    np.testing.assert_array_equal(first.posterior["mu"], second.posterior["mu"])
    assert json.loads(second.posterior.attrs["course_fit_key"])["seed"] == 1


@pytest.mark.parametrize(
    "change",
    [
        {"formula": "y ~ 1 + x"},
        {"priors": {"Intercept": bmb.Prior("Normal", mu=0, sigma=1.0)}},
        {"priors": {"Intercept": bmb.Prior("StudentT", mu=0, sigma=1.5, nu=3)}},
        {"seed": 2},
    ],
    ids=["formula", "prior-parameter", "prior-family", "seed"],
)
def test_any_change_of_key_refits_and_replaces(tmp_path, change):
    sampler = CountingSampler()
    cache.cached_idata("m", KEY, sampler, folder=tmp_path)
    cache.cached_idata("m", {**KEY, **change}, sampler, folder=tmp_path)
    assert sampler.calls == 2
    cache.cached_idata("m", {**KEY, **change}, sampler, folder=tmp_path)  # now cached
    assert sampler.calls == 2
    assert [p.name for p in tmp_path.iterdir()] == ["m.nc"]


def test_library_upgrade_refits(tmp_path, monkeypatch):
    sampler = CountingSampler()
    cache.cached_idata("m", KEY, sampler, folder=tmp_path)
    versions = cache.library_versions()
    monkeypatch.setattr(cache, "library_versions", lambda: {**versions, "pymc": "99.0"})
    cache.cached_idata("m", KEY, sampler, folder=tmp_path)
    assert sampler.calls == 2


def test_refit_flag_samples_anyway(tmp_path):
    sampler = CountingSampler()
    cache.cached_idata("m", KEY, sampler, folder=tmp_path)
    cache.cached_idata("m", KEY, sampler, folder=tmp_path, refit=True)
    assert sampler.calls == 2


def test_unreadable_file_is_refitted_with_a_warning(tmp_path):
    sampler = CountingSampler()
    cache.cached_idata("m", KEY, sampler, folder=tmp_path)
    file = tmp_path / "m.nc"
    file.write_bytes(file.read_bytes()[:200])  # truncated, as by a full disk
    with pytest.warns(UserWarning, match=r"m\.nc could not be read"):
        idata = cache.cached_idata("m", KEY, sampler, folder=tmp_path)
    assert sampler.calls == 2
    assert idata.posterior["mu"].shape == (2, 50)
    assert cache.cached_idata("m", KEY, sampler, folder=tmp_path) is not None
    assert sampler.calls == 2  # the rewritten file is good


def test_killed_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    sampler = CountingSampler()
    good = cache.cached_idata("m", KEY, sampler, folder=tmp_path)

    def crash_midway(self, filename, *args, **kwargs):
        with open(filename, "wb") as stream:
            stream.write(b"\x89HDF\r\n\x1a\n half a file")
        raise KeyboardInterrupt("build killed")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        cache.cached_idata("m", {**KEY, "seed": 2}, sampler, folder=tmp_path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m.nc"]
    again = cache.cached_idata("m", KEY, sampler, folder=tmp_path)
    assert sampler.calls == 2  # the crashed run sampled; the old file still serves KEY
    np.testing.assert_array_equal(good.posterior["mu"], again.posterior["mu"])


def test_cache_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_FIT_CACHE", str(tmp_path / "fits"))
    cache.cached_idata("m", KEY, CountingSampler())
    assert (tmp_path / "fits" / "m.nc").is_file()


def test_default_cache_folder_is_in_the_project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "book").mkdir()
    monkeypatch.delenv("COURSE_FIT_CACHE", raising=False)
    monkeypatch.chdir(tmp_path / "book")
    assert cache.cache_dir() == tmp_path / ".cache" / "fits"


def test_cached_file_is_readable_by_others(tmp_path):
    cache.cached_idata("m", KEY, CountingSampler(), folder=tmp_path)
    assert os.stat(tmp_path / "m.nc").st_mode & 0o044 == 0o044


def test_jsonable_priors_are_exact_and_ordered():
    nested = bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1))
    assert cache.to_jsonable(nested) == {
        "dist": "Normal",
        "mu": {"array": "0.0", "dtype": "float64"},
        "sigma": {"dist": "Exponential", "lam": {"array": "1.0", "dtype": "float64"}},
    }
    assert cache.fingerprint({"a": 1, "b": 2}) == cache.fingerprint({"b": 2, "a": 1})
    assert cache.fingerprint({"a": 0.1}) != cache.fingerprint({"a": 0.1000000001})
