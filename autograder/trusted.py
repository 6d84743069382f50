"""Trusted fits: each student's model specification refitted by the grader, once.

The checks grade these fits, not the draws a student's kernel produced (which the
student's code could have made up): parameters and LOO come from the trusted fit of the
model the student wrote, and the student's own draws must agree with it. A trusted fit
is made from a validated specification (:mod:`autograder.spec`) in a sandbox of its own
(:mod:`autograder.sandbox`; the specification is the student's input too), with the
grader's sampler settings (:data:`SETTINGS`, the reference's: 4 chains of 1000 draws
after 1000 warm-up iterations, nutpie with its low-rank mass matrix; the exercises ask
students for 2 chains of 500) and a seed derived from the specification.

A trusted fit is used only if it meets the course's convergence policy
(:data:`course_utils.diagnostics.POLICY`, the book's: Rhat, ESS, no divergence), judged
by the grader from the draws the fit wrote. One that does not (a chain stuck in its
warm-up, say) is made again with the next seed derived from the specification, up to
:data:`ATTEMPTS` times; if none converges, that is the grader's failure: nothing is
cached, no student is graded against it, the submission is retried in the next run,
and the report gives each attempt's diagnostics.

Fits are cached by :func:`autograder.spec.key`: the model and its data, without the
student's seed or sampler settings, so every student who wrote the same model shares
one fit (most of a class shares the right one). Requests for the same key wait for
each other (a lock per key, in this process and across processes), so a fit is never
made twice. A fit that failed because of the model (it cannot be built, or sampling
fails) is cached as that failure with its reason, which the student reads; a failure
of the grader's own (the sandbox did not start, the process vanished) is not cached and
is reported as the grader's, so the submission is graded again later.

``python -I -m autograder.trusted FOLDER [ATTEMPT]`` is what runs inside the sandbox: it
reads ``spec.json`` and ``data.json`` from ``FOLDER`` and writes ``posterior.nc`` (the
parameters' draws, with the seed and the number of divergent transitions as attributes)
and ``result.json`` there.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from course_utils.models.m_varying import M_VARYING_FIT

from .export import parameters_only
from .spec import build_priors, key, read_data, validate

__all__ = ["ATTEMPTS", "SETTINGS", "TrustedFit", "cached", "convergence", "fit", "main", "out_of_budget", "seed",
           "settings", "store"]

#: The grader's sampler settings for every trusted fit: those the Trolley chapter fits the
#: reference's m_varying with (and m_simple, with the same), without its seed. Smaller fits
#: cannot meet the convergence policy for every seed: over m_varying's 341 parameters the
#: largest Rhat was above 1.01 for every seed tried with 2 chains of 500 or of 1000 draws
#: (1.012 to 1.022), and with 4 chains of 500 (1.013 to 1.015): noise, not a stuck chain.
SETTINGS = {"chains": M_VARYING_FIT["chains"], "tune": M_VARYING_FIT["tune"], "draws": M_VARYING_FIT["draws"],
            "sampler": M_VARYING_FIT["inference_method"], "adaptation": M_VARYING_FIT["adaptation"]}
#: Seeds tried for a fit that does not converge before it is the grader's failure.
ATTEMPTS = 2
#: How the problems of a fit that ran out of time, or of memory, begin.
TIMED_OUT = "refitting your model took longer than"
OUT_OF_MEMORY = "refitting your model needed more than"

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

    #: The convergence figures of each attempt (course_utils.diagnostics.Diagnostics.as_dict).
    diagnostics: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def settings() -> dict:
    """Everything of the grader's that a trusted fit depends on (part of its key)."""
    from course_utils.cache import library_versions
    from course_utils.diagnostics import POLICY
    from course_utils.fitting import SAMPLING_VERSION

    return {**SETTINGS, "versions": library_versions(), "sampling": SAMPLING_VERSION,
            "convergence": asdict(POLICY)}


def seed(name: str, attempt: int = 0) -> int:
    """The seed of attempt ``attempt`` (0, 1, ...) at the fit with key ``name``."""
    if attempt == 0:
        return int(name[:8], 16) % (2**31)
    return int(hashlib.sha256(f"{name}/{attempt}".encode()).hexdigest()[:8], 16) % (2**31)


def convergence(posterior_file: Path) -> tuple[list[str], dict]:
    """Whether the draws in ``posterior_file`` (written by :func:`main`) meet the course's
    convergence policy: (the problems, empty if they do; the diagnostics)."""
    import xarray as xr

    from course_utils.diagnostics import diagnose

    with xr.open_dataset(posterior_file, engine="h5netcdf") as posterior:
        posterior = posterior.load()
    divergent = posterior.attrs.get("divergent")
    found = diagnose(posterior, divergent=None if divergent is None else int(divergent))
    return found.problems(), found.as_dict()


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


def fit(spec, data, cache: Path, *, code: Path, memory_bytes: int, seconds: float, sandboxed: bool = True,
        stop=None, wait: float | None = None) -> TrustedFit:
    """The trusted fit of ``spec`` on ``data`` (from the cache, or made now, each seed
    within ``seconds`` and ``memory_bytes``, and all seeds within ``wait``: what is left of
    the submission's time for refits, if given); never raises for a student's input."""
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
                        seconds=seconds, stop=stop, wait=wait)


def out_of_budget(left: float) -> str:
    """The problem of a fit stopped because the submission's time for refits ran out."""
    return (f"{TIMED_OUT} what was left of this submission's time for refitting its models ({max(0, left):.0f} s), "
            "so it could not be graded")


def _fit_now(name: str, spec, data, cache: Path, *, code: Path, memory_bytes: int, sandboxed: bool,
             seconds: float, stop=None, wait: float | None = None) -> TrustedFit:
    """Make the fit; while it does not converge (or runs out of time, which a stuck chain
    can cause too), again with the next derived seed, :data:`ATTEMPTS` times in all.

    Kept in the cache: a fit that converged, or the model's own failure (it cannot be
    built or sampled). A fit that never converged is the grader's failure and is not kept;
    one that ran out of time with every seed, or out of memory, is the student's (their
    model is too slow or too large) and is not kept either: another run may allow more.
    With ``wait``, the seeds together take at most that long (what is left of the
    submission's time for refits); a seed stopped by it is the last one tried.
    """
    fitted = TrustedFit(name)
    unconverged = False
    deadline = None if wait is None else time.monotonic() + wait
    for attempt in range(ATTEMPTS):
        left = seconds if deadline is None else deadline - time.monotonic()
        if left <= 0:  # the submission's time for refits is spent: no further seed
            fitted.problem = out_of_budget(left)
            break
        made, problems = _attempt(name, spec, data, cache, attempt=attempt, code=code, memory_bytes=memory_bytes,
                                  sandboxed=sandboxed, seconds=min(seconds, left), stop=stop)
        fitted.seconds += made.seconds
        fitted.diagnostics += made.diagnostics
        if made.grader_error:
            return replace(made, seconds=fitted.seconds, diagnostics=fitted.diagnostics)
        if made.posterior and not problems:
            fitted.posterior, fitted.problem = made.posterior, ""  # (an earlier seed may have run out of time)
            break
        if made.posterior:  # sampled, but not converged: never used
            unconverged = True
            Path(made.posterior).unlink(missing_ok=True)
            continue
        fitted.problem = made.problem
        if made.problem.startswith(TIMED_OUT) and left < seconds:  # stopped by the submission's budget
            fitted.problem = out_of_budget(left)
            break
        if not made.problem.startswith(TIMED_OUT):  # the model itself, or its memory: the same with any seed
            break
    if fitted.posterior is None and unconverged:
        tried = "; ".join(f"seed {d['seed']}: {', '.join(d['problems'])}" for d in fitted.diagnostics)
        return TrustedFit(name, seconds=fitted.seconds, diagnostics=fitted.diagnostics,
                          grader_error=f"the trusted fit did not converge with {ATTEMPTS} seeds ({tried})")
    if fitted.posterior is not None:
        target = cache / f"{name}.nc"
        os.replace(fitted.posterior, target)
        fitted.posterior = str(target)
    if fitted.posterior is not None or not fitted.problem.startswith((TIMED_OUT, OUT_OF_MEMORY)):
        _write_record(cache, fitted)  # (a limit's failure is not kept: another run may have more)
    shutil.rmtree(cache / "work" / name, ignore_errors=True)
    return fitted


def _write_record(cache: Path, fitted: TrustedFit) -> None:
    tmp = cache / f"{fitted.key}.json.tmp"
    tmp.write_text(json.dumps({k: v for k, v in fitted.as_dict().items() if k != "reused"}))
    tmp.replace(cache / f"{fitted.key}.json")


def _attempt(name: str, spec, data, cache: Path, *, attempt: int, code: Path, memory_bytes: int, sandboxed: bool,
             seconds: float, stop=None) -> tuple[TrustedFit, list[str]]:
    """One fit in its sandbox, with the seed of ``attempt``: (the fit, whose ``posterior``
    is left in the work folder and whose ``diagnostics`` hold this attempt's figures; what
    in them breaks the convergence policy)."""
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
            (f"import sys; sys.path.insert(0, {str(code)!r}); from autograder.trusted import main; "
             f"main({str(folder)!r}, {attempt})")]
    if sandboxed:
        try:
            argv = sandbox.command(argv, folder=folder, code=code, env=env, writable=[compiledir])
        except sandbox.SandboxUnavailable as error:
            return TrustedFit(name, grader_error=str(error)), []
        run_env = {"PATH": os.environ.get("PATH", "")}
    else:
        run_env = {**os.environ, **env, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
    status, took, _ = run_limited(argv, cwd=folder, env=run_env, log=folder / "fit.log", seconds=seconds,
                                  memory=memory_bytes, stop=stop)
    if status == "timeout":
        return TrustedFit(name, problem=f"{TIMED_OUT} {seconds:.0f} s, so it could not be graded", seconds=took), []
    if status == "memory":
        return TrustedFit(name, problem=f"{OUT_OF_MEMORY} {memory_bytes / 2**30:.1f} GB of memory, so it could not "
                                        "be graded", seconds=took), []
    if status == "stopped":
        return TrustedFit(name, grader_error="the grading run was stopped", seconds=took), []
    try:
        result = json.loads((folder / "result.json").read_text())
    except (OSError, ValueError):
        tail = (folder / "fit.log").read_text(errors="replace").strip().splitlines()[-3:]
        return TrustedFit(name, grader_error=f"the trusted fit did not finish ({status}): {' | '.join(tail)}",
                          seconds=took), []
    if result.get("status") == "grader-error":
        return TrustedFit(name, grader_error=f"the trusted fit failed: {result.get('problem')}", seconds=took), []
    posterior = folder / "posterior.nc"
    if result.get("status") != "ok" or not posterior.is_file():
        return TrustedFit(name, problem=str(result.get("problem") or "the grader could not refit your model"),
                          seconds=took), []
    try:
        problems, diagnostics = convergence(posterior)
    except Exception as error:  # written by the grader's own code: unreadable is the grader's failure
        return TrustedFit(name, grader_error=f"the trusted fit's draws could not be read: {type(error).__name__}: "
                                             f"{error}", seconds=took), []
    return TrustedFit(name, posterior=str(posterior), seconds=took,
                      diagnostics=[{"seed": seed(name, attempt), **diagnostics, "problems": problems}]), problems


def main(folder: str, attempt: int = 0) -> None:
    """Inside the sandbox: fit the specification in ``folder`` with the seed of
    ``attempt`` and write the posterior (with its divergences) and ``result.json``."""
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
            priors=build_priors(spec), noncentered=spec["noncentered"], seed=seed(name, attempt),
            log_likelihood=False, cache=folder_path / "fits", **SETTINGS,
        )
        posterior = parameters_only(idata.posterior)
        posterior.attrs = {"trusted_key": name, "seconds": time.monotonic() - started, "seed": seed(name, attempt),
                           "modeling_interface": "bambi",
                           "divergent": int(idata.sample_stats["diverging"].sum())}
        posterior.to_netcdf(folder_path / "posterior.nc", engine="h5netcdf")
        result = {"status": "ok"}
    except (OSError, ImportError, MemoryError) as error:  # the grader's machine, not the model
        result = {"status": "grader-error", "problem": f"{type(error).__name__}: {str(error)[:300]}"}
    except Exception as error:  # the student's model: the reason is theirs to read
        result = {"status": "model-error",
                  "problem": f"the grader could not refit your model: {type(error).__name__}: {str(error)[:300]}"}
    (folder_path / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
