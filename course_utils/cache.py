"""A fit cache in the spirit of brms's ``file=`` argument, keyed on everything that matters.

A fitted model's posterior (an ArviZ DataTree) is saved as NetCDF under a name and loaded on the next run
instead of sampling again, but only while its *fingerprint* still matches: a hash of
everything that changes the posterior (model, priors, data, sampler settings, seed, and
the version of the course's sampling code, which callers put in the key) and of the library
versions. Any change gives a new fingerprint, and the model is refitted
and the file replaced. brms's own cache checks nothing by default (``file_refit =
"never"``) and only the model code and data with ``file_refit = "on_change"``; neither
notices a library upgrade. This one does.

Writes are atomic: the file is written beside its final name and renamed into place, so
a build killed mid-write leaves either the old file or none, never half of one. A file
that cannot be read (truncated, corrupted, from an incompatible version) is refitted with
a warning.

The cache folder is ``$COURSE_FIT_CACHE`` when set, otherwise ``.cache/fits`` in the
project (the nearest folder above the working directory holding ``pyproject.toml``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path

import numpy as np
import xarray as xr

from .progress import reporting

__all__ = ["cache_dir", "cached_idata", "fingerprint", "library_versions", "to_jsonable"]

ENV_FIT_CACHE = "COURSE_FIT_CACHE"
FINGERPRINT_ATTR = "course_fingerprint"
KEY_ATTR = "course_fit_key"
# Bump when the layout of cached files changes, so old files are refitted.
CACHE_FORMAT = 1

# Packages whose versions can change a posterior: the sampler stack and its numerics.
_VERSIONED = ("bambi", "pymc", "pytensor", "arviz", "arviz-base", "arviz-stats", "numpy", "scipy", "pandas",
              "xarray", "formulae", "nutpie")


def library_versions() -> dict[str, str]:
    """Versions of Python and of the packages that can move a posterior (missing: None)."""
    import pytensor

    versions = {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "pytensor.floatX": pytensor.config.floatX,  # float32 and float64 runs differ
    }
    for package in _VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def to_jsonable(obj):
    """Turn priors, arrays and nested containers into plain JSON values, deterministically.

    Objects with ``name`` and ``args`` (Bambi's ``Prior``) become ``{"dist": name, ...args}``;
    anything unknown falls back to its ``repr``.
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return repr(obj)  # exact, and JSON has no NaN
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return {"array": to_jsonable(obj.tolist()), "dtype": str(obj.dtype)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_jsonable(v) for v in obj)
    if hasattr(obj, "likelihood") and hasattr(obj, "link"):  # a Bambi Family
        likelihood = obj.likelihood
        return {
            "family": obj.name,
            "likelihood": [likelihood.name, list(likelihood.params), likelihood.parent],
            "link": {param: getattr(link, "name", repr(link)) for param, link in obj.link.items()},
        }
    if hasattr(obj, "name") and hasattr(obj, "args"):  # a Bambi Prior
        jsonable = {"dist": obj.name, **to_jsonable(dict(obj.args))}
        if getattr(obj, "dist", None) is not None:  # a custom distribution function
            jsonable["custom"] = f"{obj.dist.__module__}.{obj.dist.__qualname__}"
        return jsonable
    return repr(obj)


def fingerprint(key: Mapping) -> str:
    """SHA-256 of a fit's key together with the library versions and cache format."""
    payload = {"key": to_jsonable(key), "versions": library_versions(), "format": CACHE_FORMAT}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder cached fits live in (created if missing); see the module docs."""
    if path is None:
        path = os.environ.get(ENV_FIT_CACHE)
    if path is None:
        here = Path.cwd().resolve()
        root = next((p for p in (here, *here.parents) if (p / "pyproject.toml").is_file()), here)
        path = root / ".cache" / "fits"
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _read(file: Path) -> xr.DataTree:
    """Read a whole fit (an ArviZ DataTree) into memory and release the file."""
    return xr.load_datatree(file)


def _write_atomic(idata: xr.DataTree, file: Path) -> None:
    """Write ``idata`` to a temporary file in the same folder, then rename it into place."""
    handle, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        idata.to_netcdf(str(tmp))
        tmp.chmod(0o644)  # mkstemp makes it private; a cache is for everyone who builds
        with open(tmp, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)


def cached_idata(
    name: str,
    key: Mapping,
    sample: Callable[[], xr.DataTree],
    *,
    folder: str | os.PathLike | None = None,
    refit: bool = False,
) -> xr.DataTree:
    """Return the cached fit ``name`` if its fingerprint matches ``key``, else sample anew.

    Parameters
    ----------
    name : str
        File name (without ``.nc``) of the fit in the cache folder, e.g. ``"m2"``.
    key : mapping
        Everything that determines the posterior: model, priors, a data hash, sampler
        settings, seed. Library versions are added here; callers do not pass them.
    sample : callable
        Runs the sampler and returns a DataTree; called only on a miss.
    folder : path, optional
        The cache folder; default :func:`cache_dir`.
    refit : bool
        Sample even when a valid cached fit exists (and replace it).

    Returns
    -------
    xarray.DataTree
        With ``posterior.attrs["course_fingerprint"]`` and ``["course_fit_key"]`` set.
    """
    file = cache_dir(folder) / f"{name}.nc"
    expected = fingerprint(key)
    if file.exists() and not refit:
        try:
            idata = _read(file)
        except Exception as err:  # any unreadable file is refitted, never trusted
            warnings.warn(f"cached fit {file} could not be read ({type(err).__name__}: {err}); refitting")
        else:
            if idata.posterior.attrs.get(FINGERPRINT_ATTR) == expected:
                return idata
    with reporting(name):  # which model, each chain's progress, time left: in the terminal only
        idata = sample()
    idata.posterior.attrs[FINGERPRINT_ATTR] = expected
    idata.posterior.attrs[KEY_ATTR] = json.dumps(to_jsonable(key), sort_keys=True)
    _write_atomic(idata, file)
    return idata
