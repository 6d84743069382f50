"""Grade a realistic class on Dask and on the former thread pool, and model the cost of a larger one.

    python benchmarks/grading_cluster.py [--correct 2] [--workers 2] [--keep DIR]

The class: ``--correct`` correct submissions (the solution, each with its own seed), the
common mistakes the checks name (no varying intercept, wrong predictors, three slips in
LOO and predictions), a crash, a file that is not a notebook and a submission that
fabricates its posteriors. It is graded twice, in one run, each time from an empty
grader cache (so each engine makes its own trusted fits) and without the canary:

- ``threads``: a LocalCluster whose workers are threads of this process, where the
  grader's former thread pool ran submissions (one per core; the same tasks otherwise);
- ``processes``: the default, a LocalCluster of worker processes, one per core.

For each: wall time, submissions per hour, seconds per submission by phase (notebooks,
trusted fits, checks), trusted fits computed and reused, peak memory of a submission's
notebooks per worker, and whether the two engines gave the same grades.

Then the cost model, fitted to the ``processes`` run:

    wall ≈ distinct specifications × fit time + submissions × run time / workers

(run time: notebooks and checks of one submission, measured with ``workers`` side by
side; fit time: one trusted fit). It is checked against the measured wall time and
used to predict classes of 20, 100 and 1,000 submissions on 2, 16 and 64 workers: a
class where most students wrote one of a few models costs a few fits and the rest is
per-submission work that divides by the number of workers. (A simulation: a class of
1,000 does not fit in an hour on this machine.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from autograder.grade import grade_class
from autograder.reference import load_reference
from autograder.limits import Limits

# The synthetic submissions live with the tests (tests/submissions.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import submissions  # noqa: E402

#: Share of students who write a model nobody else wrote (a new trusted fit each); the
#: common models are the right two and one per common mistake.
UNIQUE_SHARE = 0.05


def write_class(course: Path, correct: int) -> None:
    release, source = course / "release" / "trolley", course / "source" / "trolley"

    def target(student):
        return course / "submitted" / student / "trolley"

    for seed in range(1, correct + 1):
        submissions.correct(release, source, target(f"correct_{seed}"), seed=seed)
    for name in ("no_varying_intercept", "wrong_predictors", "sign_scale_and_average"):
        submissions.write_submission(release, source, target(name), answers=submissions.MISTAKES[name])
    answers, edit = submissions.VARIANTS["crash"]
    submissions.write_submission(release, source, target("crash"), answers=answers, edit=edit)
    submissions.not_a_notebook(target("not_a_notebook"))
    submissions.write_submission(release, source, target("fabricated"), answers=submissions.fabricated(load_reference()))


def grade(engine: str, course: Path, cache: Path, workers: int) -> tuple[dict, float]:
    os.environ["AUTOGRADER_CACHE"] = str(cache)
    started = time.monotonic()
    states = grade_class(course, "trolley", workers=workers, limits=Limits(), canary=False,
                         processes=engine == "processes")
    return states, time.monotonic() - started


def summary(engine: str, states: dict, wall: float, workers: int) -> dict:
    outcomes = [st["outcome"] for st in states.values()]
    fits = [f for o in outcomes for f in o["fits"]]
    made = {f["key"]: f["seconds"] for f in fits if not f["reused"]}
    phases = {p: [o["phases"][p] for o in outcomes if p in o.get("phases", {})]
              for p in ("notebooks", "fits", "checks")}
    per_worker: dict[str, float] = {}
    for st in states.values():
        per_worker[st.get("worker", "")] = max(per_worker.get(st.get("worker", ""), 0.0),
                                               st["outcome"].get("peak_memory_mb", 0.0))
    run = [o["phases"].get("notebooks", 0) + o["phases"].get("checks", 0) for o in outcomes]
    return {"engine": engine, "n": len(states), "wall": wall, "per_hour": 3600 * len(states) / wall,
            "phases": {p: statistics.mean(v) if v else 0.0 for p, v in phases.items()},
            "fits_made": len(made), "fits_reused": sum(f["reused"] for f in fits),
            "fit_seconds": statistics.mean(made.values()) if made else 0.0, "run_seconds": statistics.mean(run),
            "peak_mb": per_worker, "workers": workers,
            "grades": {s: (st["score"], st["outcome"]["status"]) for s, st in states.items()}}


def predict(n: int, workers: int, fit_seconds: float, run_seconds: float, common_specs: int) -> float:
    specs = common_specs + UNIQUE_SHARE * n
    return specs * fit_seconds + n * run_seconds / workers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--correct", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", type=Path, help="keep the courses here")
    args = parser.parse_args(argv)

    root = Path(args.keep or tempfile.mkdtemp(prefix="grading-cluster-"))
    results = []
    for engine in ("threads", "processes"):
        course = submissions.release_course(root / engine / "course")
        write_class(course, args.correct)
        cache = root / engine / "grader-cache"
        shutil.rmtree(cache, ignore_errors=True)
        states, wall = grade(engine, course, cache, args.workers)
        results.append(summary(engine, states, wall, args.workers))

    print(f"\nA class of {results[0]['n']} on {args.workers} workers ({os.cpu_count()} cores), each engine from an "
          "empty grader cache:\n")
    print(f"{'engine':<10} {'wall s':>7} {'subm/h':>7} {'notebooks s':>12} {'fits s':>7} {'checks s':>9} "
          f"{'fits made':>10} {'reused':>7}  peak MB per worker")
    for r in results:
        peaks = ", ".join(f"{v:.0f}" for _, v in sorted(r["peak_mb"].items()))
        print(f"{r['engine']:<10} {r['wall']:>7.0f} {r['per_hour']:>7.1f} {r['phases']['notebooks']:>12.0f} "
              f"{r['phases']['fits']:>7.0f} {r['phases']['checks']:>9.0f} {r['fits_made']:>10} "
              f"{r['fits_reused']:>7}  {peaks}")
    same = results[0]["grades"] == results[1]["grades"]
    print(f"\nSame grades from both engines: {same}")
    if not same:
        for s in sorted(results[0]["grades"]):
            if results[0]["grades"][s] != results[1]["grades"].get(s):
                print(f"  {s}: threads {results[0]['grades'][s]}, processes {results[1]['grades'].get(s)}")
    print(f"Wall time ratio processes / threads: {results[1]['wall'] / results[0]['wall']:.2f}")

    fitted = results[1]
    common = fitted["fits_made"]
    model = common * fitted["fit_seconds"] + fitted["n"] * fitted["run_seconds"] / args.workers
    print(f"\nCost model: wall = specs x {fitted['fit_seconds']:.0f} s + submissions x {fitted['run_seconds']:.0f} s "
          f"/ workers (fits measured, run = notebooks + checks with {args.workers} side by side).")
    print(f"For this class ({fitted['n']} submissions, {common} distinct specifications): predicted {model:.0f} s, "
          f"measured {fitted['wall']:.0f} s.")
    print(f"Predicted for a class with {common} common specifications and {UNIQUE_SHARE:.0%} of students writing a "
          "model of their own (hours):")
    print(f"{'submissions':>12} " + " ".join(f"{w:>10} w" for w in (2, 16, 64)))
    for n in (20, 100, 1000):
        hours = [predict(n, w, fitted["fit_seconds"], fitted["run_seconds"], common) / 3600 for w in (2, 16, 64)]
        print(f"{n:>12} " + " ".join(f"{h:>12.2f}" for h in hours))
    print(f"\nCourses kept in {root}" if args.keep else "")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
