"""Trusted fits: each student's model specification refitted by the grader, once.

The checks grade these fits, not the draws a student's kernel produced (which the
student's code could have made up): parameters and LOO come from the trusted fit of the
model the student wrote, and the student's own draws must agree with it. A trusted fit
is made from a validated specification (:mod:`autograder.spec`) in a sandbox of its own
(:mod:`autograder.sandbox`; the specification is the student's input too), with the
grader's sampler settings (:data:`SETTINGS`, the exercises' own: 2 chains of 500 draws
after 1000 warm-up iterations, nutpie with its low-rank mass matrix) and a seed derived
from the specification.

Fits are cached by :func:`autograder.spec.key`: the model and its data, without the
student's seed or sampler settings, so every student who wrote the same model shares
one fit (most of a class shares the right one). Requests for the same key wait for
each other (a lock per key, in this process and across processes), so a fit is never
made twice. A fit that failed because of the model (it cannot be built, or sampling
fails) is cached as that failure with its reason, which the student reads; a failure
of the grader's own (the sandbox did not start, the process vanished) is not cached and
is reported as the grader's, so the submission is graded again later.

``python -I -m autograder.trusted FOLDER`` is what runs inside the sandbox: it reads
``spec.json`` and ``data.json`` from ``FOLDER`` and writes ``posterior.nc`` and
``result.json`` there.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from .export import parameters_only
from .spec import build_priors, key, read_data, validate

__all__ = ["SETTINGS", "TrustedFit", "cached", "fit", "settings", "store", "main"]

#: The grader's sampler settings for every trusted fit (the exercises' own).
SETTINGS = {"chains": 2, "tune": 1000, "draws": 500, "sampler": "nutpie", "adaptation": "low_rank"}
FIT_SECONDS = 900

_LOCKS: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@dataclass
class TrustedFit:
    """The outcome of refitting one specification."""

    key: str = ""
    posterior: str | None = None  # NetCDF file of the trusted draws
    problem: str = ""  # why there is no fit, for the student (their model's fault)
    grader_error: str = ""  # why there is no fit, for the instructor (the grader's fault)
    seconds: float = 0.0
    reused: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def settings() -> dict:
    """Everything of the grader's that a trusted fit depends on (part of its key)."""
    from course_utils.cache import library_versions
    from course_utils.fitting import SAMPLING_VERSION

    return {**SETTINGS, "versions": library_versions(), "sampling": SAMPLING_VERSION}


def _read_record(path: Path, cache: Path) -> TrustedFit | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    fitted = TrustedFit(**{**record, "reused": True})
    if fitted.posterior and not (cache / Path(fitted.posterior).name).exists():
        return None
    if fitted.posterior:
        fitted.posterior = str(cache / Path(fitted.posterior).name)
    return fitted


def cached(name: str, cache: Path) -> TrustedFit | None:
    """The fit with key ``name`` from the cache, or None."""
    record_file = Path(cache) / f"{name}.json"
    return _read_record(record_file, Path(cache)) if record_file.exists() else None


def store(cache: Path, record: dict, blob: bytes) -> Path:
    """Keep a fit made elsewhere (another Dask worker) in this cache; returns its posterior file."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    name = record["key"]
    target = cache / f"{name}.nc"
    if not target.exists() or target.read_bytes() != blob:
        tmp = cache / f"{name}.nc.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_bytes(blob)
        os.replace(tmp, target)
    kept = {k: v for k, v in record.items() if k != "reused"}
    kept["posterior"] = str(target)
    tmp = cache / f"{name}.json.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(kept))
    tmp.replace(cache / f"{name}.json")
    return target


def fit(spec, data, cache: Path, *, code: Path, memory_bytes: int, sandboxed: bool = True,
        seconds: float = FIT_SECONDS, stop=None) -> TrustedFit:
    """The trusted fit of ``spec`` on ``data`` (from the cache, or made now); never raises
    for a student's input."""
    problem = validate(spec, data)
    if problem:
        return TrustedFit(problem=f"your model could not be refitted by the grader: {problem}")
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    name = key(spec, data, settings())
    record_file = cache / f"{name}.json"
    with _LOCKS[name], open(cache / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another grading process fitting the same model
        cached = _read_record(record_file, cache) if record_file.exists() else None
        if cached is not None:
            return cached
        return _fit_now(name, spec, data, cache, code=code, memory_bytes=memory_bytes, sandboxed=sandboxed,
                        seconds=seconds, stop=stop)


def _fit_now(name: str, spec, data, cache: Path, *, code: Path, memory_bytes: int, sandboxed: bool,
             seconds: float, stop=None) -> TrustedFit:
    from . import sandbox
    from .runner import run_limited, user_compile_cache

    folder = cache / "work" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(json.dumps(spec))
    (folder / "data.json").write_text(json.dumps(data))
    compiledir = cache / "pytensor"
    if not compiledir.exists():  # start from the machine's warm compile cache: faster, and only trusted code uses it
        user_cache = user_compile_cache()
        if user_cache.is_dir():
            shutil.copytree(user_cache, compiledir, ignore=shutil.ignore_patterns("lock_dir"), dirs_exist_ok=True)
        compiledir.mkdir(exist_ok=True)
    env = {"PYTENSOR_FLAGS": f"base_compiledir={compiledir}", "COURSE_FIT_CACHE": str(folder / "fits")}
    argv = [sys.executable, "-I", "-c",
            f"import sys; sys.path.insert(0, {str(code)!r}); from autograder.trusted import main; main({str(folder)!r})"]
    if sandboxed:
        try:
            argv = sandbox.command(argv, folder=folder, code=code, env=env, writable=[compiledir])
        except sandbox.SandboxUnavailable as error:
            return TrustedFit(name, grader_error=str(error))
        run_env = {"PATH": os.environ.get("PATH", "")}
    else:
        run_env = {**os.environ, **env, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
    status, took, _ = run_limited(argv, cwd=folder, env=run_env, log=folder / "fit.log", seconds=seconds,
                                  memory=memory_bytes, stop=stop)
    result_file = folder / "result.json"
    if status in ("timeout", "memory"):
        what = f"took longer than {seconds:.0f} s" if status == "timeout" else \
            f"needed more than {memory_bytes / 2**30:.1f} GB of memory"
        return TrustedFit(name, problem=f"refitting your model {what}, so it could not be graded", seconds=took)
    if status == "stopped":
        return TrustedFit(name, grader_error="the grading run was stopped", seconds=took)
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        tail = (folder / "fit.log").read_text(errors="replace").strip().splitlines()[-3:]
        return TrustedFit(name, grader_error=f"the trusted fit did not finish ({status}): {' | '.join(tail)}",
                          seconds=took)
    if result.get("status") == "grader-error":
        return TrustedFit(name, grader_error=f"the trusted fit failed: {result.get('problem')}", seconds=took)
    fitted = TrustedFit(name, seconds=took)
    if result.get("status") == "ok" and (folder / "posterior.nc").exists():
        target = cache / f"{name}.nc"
        os.replace(folder / "posterior.nc", target)
        fitted.posterior = str(target)
    else:
        fitted.problem = str(result.get("problem") or "the grader could not refit your model")
    tmp = cache / f"{name}.json.tmp"
    tmp.write_text(json.dumps({k: v for k, v in fitted.as_dict().items() if k != "reused"}))
    tmp.replace(cache / f"{name}.json")
    shutil.rmtree(folder, ignore_errors=True)
    return fitted


def main(folder: str) -> None:
    """Inside the sandbox: fit the specification in ``folder`` and write the posterior."""
    folder_path = Path(folder)
    result: dict
    started = time.monotonic()
    try:
        spec = json.loads((folder_path / "spec.json").read_text())
        data = json.loads((folder_path / "data.json").read_text())
        problem = validate(spec, data)
        if problem:
            raise ValueError(problem)
        from course_utils.fitting import fit_bambi

        name = key(spec, data, settings())
        _, idata = fit_bambi(
            "trusted", spec["formula"], read_data(data), family=spec["family"], link=spec["link"],
            priors=build_priors(spec), noncentered=spec["noncentered"], seed=int(name[:8], 16) % (2**31),
            log_likelihood=False, cache=folder_path / "fits", **SETTINGS,
        )
        posterior = parameters_only(idata.posterior)
        posterior.attrs = {"trusted_key": name, "seconds": time.monotonic() - started}
        posterior.to_netcdf(folder_path / "posterior.nc", engine="h5netcdf")
        result = {"status": "ok"}
    except (OSError, ImportError, MemoryError) as error:  # the grader's machine, not the model
        result = {"status": "grader-error", "problem": f"{type(error).__name__}: {str(error)[:300]}"}
    except Exception as error:  # the student's model: the reason is theirs to read
        result = {"status": "model-error",
                  "problem": f"the grader could not refit your model: {type(error).__name__}: {str(error)[:300]}"}
    (folder_path / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
