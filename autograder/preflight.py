"""Before grading anyone: is the grader itself sound? Otherwise no student gets a score.

:func:`preflight` checks, in order, and stops at the first problem with a message
that says what is wrong and what to do:

1. the course data load and match their pinned SHA-256;
2. the reference posterior is readable, complete, and was built from these data;
3. the grader's installed copy (:mod:`autograder.install`) is intact;
4. the sandbox starts and holds (the course's code imports from the grader's copy, that
   copy is read-only inside, there is no network), unless grading without it;
5. the canary: the solution notebooks, graded through the whole path (sandboxed kernel,
   trusted fits, checks), get full marks.

What the canary's kernel compiled (PyTensor's compile cache, written by the course's own
solution) becomes the warm cache every student's kernel gets a private copy of, and what
it took (its slowest cell, its notebooks, its checks) is what the time limits of the
class are derived from (:mod:`autograder.limits`). The canary costs a submission's time
(a few minutes), so its pass and its times are remembered under a fingerprint of
everything it depends on (the grader's code, the reference, the solution notebooks, the
library versions, the data, the sandbox setting) in the grader's cache, with the
machine's :func:`~autograder.limits.speed` at the time, and run again whenever any of
these changed.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from .checks import CHECKS, COEF_NAMES, CUTPOINT_NAMES
from .limits import SUBMISSION_THREADS, CanaryTimes, speed
from .trusted import SETTINGS

__all__ = ["PreflightError", "canary_fingerprint", "preflight"]


class PreflightError(SystemExit):
    """The grader's own set-up is broken: the run stops before grading anyone."""

    def __init__(self, message: str):
        self.reason = message
        super().__init__(f"Grading stopped before any student was graded: {message}")


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_data() -> Path:
    """The folder of the verified Trolley data file."""
    from course_utils.data import path

    try:
        return path("trolley").resolve().parent
    except Exception as error:
        raise PreflightError(f"the course data could not be loaded ({type(error).__name__}: {error}). Set "
                             "COURSE_DATA_DIR to a folder with the original CSV files, or run 'make data' where "
                             "the data can be downloaded.") from None


def check_reference(reference: Path) -> dict:
    from course_utils.data import DATASETS

    from .reference import load_reference

    try:
        ref = load_reference(reference)
    except Exception as error:
        raise PreflightError(f"the reference posterior {reference.name} cannot be read ({error}); rebuild it with "
                             "'make reference'") from None
    recorded = ref.get("provenance", {}).get("data", {}).get("trolley.csv")
    if recorded != DATASETS["trolley"].sha256:
        raise PreflightError(f"the reference posterior was built from other data (SHA-256 {recorded}) than the "
                             f"course's {DATASETS['trolley'].filename} ({DATASETS['trolley'].sha256}); rebuild it "
                             "with 'make reference'")
    try:
        for model, names in (("m_simple", CUTPOINT_NAMES + COEF_NAMES),
                             ("m_varying", CUTPOINT_NAMES + COEF_NAMES + ["sd_id__Intercept"])):
            for name in names:
                float(ref["models"][model]["parameters"][name]["mean"])
            float(ref["models"][model]["loo"]["elpd_loo"])
        float(ref["comparison"]["elpd_diff"])
        for part in ("participants", "average"):
            assert ref["predictions"][part]
        assert ref["predictions"]["new"]["gaussian"] and ref["predictions"]["new"]["uncertainty"]
    except (KeyError, TypeError, ValueError, AssertionError) as error:
        raise PreflightError(f"the reference posterior is incomplete (no {error}); rebuild it with "
                             "'make reference'") from None
    return ref


def canary_fingerprint(setup, source: Path) -> str:
    from course_utils.cache import library_versions

    h = hashlib.sha256()
    h.update(Path(setup.code).name.encode())
    h.update(_sha(setup.reference).encode())
    for notebook in sorted(Path(source).glob("*.ipynb")):
        h.update(notebook.name.encode() + _sha(notebook).encode())
    h.update(json.dumps(library_versions(), sort_keys=True).encode())
    h.update(str(setup.data_dir).encode() + str(setup.sandboxed).encode())
    return h.hexdigest()


def run_canary(course: Path, assignment: str, setup, gradebook: Path, work: Path, cache: Path, log) -> CanaryTimes:
    """Grade the solution notebooks through the whole path; full marks (and what it took)
    or PreflightError."""
    from . import runner

    source = course / "source" / assignment
    fingerprint = canary_fingerprint(setup, source)
    record = cache / f"canary-{fingerprint[:32]}.json"
    try:
        times = CanaryTimes(**{**json.loads(record.read_text())["times"], "reused": True})
    except (OSError, ValueError, KeyError, TypeError):
        times = None
    if times is not None:
        log("preflight: canary passed before with this grader, reference, solutions and libraries (reused)")
        return times
    log("preflight: grading the solution notebooks (the canary) through the whole path ...")
    started = time.monotonic()
    machine = speed()
    outcome = runner.grade_submission(course, assignment, "canary", source, work, gradebook, setup,
                                      keep_compile_cache=setup.compile_cache)
    total = sum(CHECKS.values())
    score = sum(c["score"] for c in outcome.checks)
    if outcome.status != "graded" or score != total:
        failed = [f"{c['check']}: {c['message']}" for c in outcome.checks if c["score"] != c["points"]]
        raise PreflightError(
            f"the solution notebooks (the canary) got {score:g}/{total:g} ({outcome.status}"
            f"{': ' + outcome.reason if outcome.reason else ''}{'; ' + outcome.detail if outcome.detail else ''})"
            + (". Failed checks: " + " | ".join(failed) if failed else "")
            + f". The canary's files are in {work}.")
    # Without nbclient's timing of the cells, the notebooks' time bounds the slowest cell's;
    # without a record of the trusted fits' time, their chains against the notebooks' do.
    slowest = outcome.slowest_cell or outcome.phases["notebooks"]
    fitted = max((f["seconds"] for f in outcome.fits), default=0.0) \
        or slowest * SETTINGS["chains"] / SUBMISSION_THREADS
    times = CanaryTimes(notebooks=outcome.phases["notebooks"], slowest_cell=slowest, checks=outcome.phases["checks"],
                        fit=fitted, speed=machine)
    cache.mkdir(parents=True, exist_ok=True)
    kept = {k: v for k, v in times.as_dict().items() if k != "reused"}
    record.write_text(json.dumps({"fingerprint": fingerprint, "score": score, "seconds": time.monotonic() - started,
                                  "times": kept, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
    log(f"preflight: canary {score:g}/{total:g} in {time.monotonic() - started:.0f} s (slowest cell "
        f"{times.slowest_cell:.0f} s)")
    return times


def preflight(course: Path, assignment: str, setup, gradebook: Path, state_dir: Path, cache: Path,
              canary: bool = True, log=print) -> CanaryTimes | None:
    """Every check of the module docs, in order; raises :class:`PreflightError`. Returns
    what the canary took (None without the canary)."""
    from . import install, sandbox

    check_reference(setup.reference)
    if not install.verify(setup.code):
        raise PreflightError(f"the grader's installed copy in {setup.code} was changed after it was made; delete "
                             "that folder and run again")
    if setup.sandboxed:
        try:
            sandbox.bwrap()
        except sandbox.SandboxUnavailable as error:
            raise PreflightError(str(error)) from None
        problem = sandbox.probe(state_dir / "probe", setup.code, setup.data_dir)
        if problem:
            raise PreflightError(f"{problem}. Grade without the sandbox only if you must: --no-sandbox "
                                 "(the report then says so on every row)")
    if canary:
        return run_canary(course, assignment, setup, gradebook, state_dir / "canary", cache, log)
    return None
