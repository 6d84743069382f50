"""Grade a class of correct Trolley submissions and measure the grader.

    python benchmarks/grading_class.py [--students 20] [--workers 2] [--keep DIR]

Every submission is the reference solution with its own seed (1, 2, ...). The script
releases the assignment in a temporary course directory, grades the class with
``autograder.grade.grade_class`` (as ``make grade`` does) and reports

- the wall time of the whole class and each submission's time and peak memory;
- the false-fail rate: correct submissions that lost any point;
- the trusted fits: how many were computed and how many reused (a class that wrote the
  same two models shares two fits, made by the canary);
- how much of its allowance each compared number used: for every number the checks
  compare, ``z = (student - reference) / sqrt(mcse_s^2 + mcse_r^2)``, and for the
  student's draws against the trusted fit of their model (the consistency check, which
  is now where a correct student's luck matters: the trusted fit is shared). If the
  MCSEs are right, z is close to standard normal; the share of |z| above Z = 4
  estimates the per-number false-fail probability before the floor is added.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from autograder import summaries as S
from autograder.checks import CHECKS, ITEMS, Z, read_trusted
from autograder.grade import grade_class, grader_cache
from autograder.payload import read_draws, read_posterior, verify
from autograder.reference import load_reference, trolley_data
from autograder.limits import Limits

# The synthetic submissions live with the tests (tests/submissions.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import submissions  # noqa: E402


def z_scores(work: Path, reference: dict, data: pd.DataFrame, fits: list[dict]) -> list[tuple[str, float]]:
    """(kind, standardised difference) of every compared number of one graded submission."""
    notebooks = sorted((work / "autograded").rglob("*.ipynb"))
    items = verify(notebooks, work / "sandbox" / "payload", ITEMS)
    trusted = {f["item"]: grader_cache() / "trusted" / f"{f['key']}.nc" for f in fits if f.get("key")}
    zs = []
    for name in ("m_simple", "m_varying"):
        post = read_posterior(items[name])
        mine = S.parameter_stats(post)
        if name in trusted and trusted[name].exists():
            fitted = S.parameter_stats(read_trusted(str(trusted[name])))
            for p, t in fitted.items():
                for what, mcse in (("mean", "mcse_mean"), ("sd", "mcse_sd")):
                    zs.append((f"{name} {what}s vs the trusted fit",
                               (mine[p][what] - t[what]) / math.hypot(mine[p][mcse], t[mcse])))
        for p, ref in reference["models"][name]["parameters"].items():
            for what, mcse in (("mean", "mcse_mean"), ("sd", "mcse_sd")):
                zs.append((f"{name} {what}s", (mine[p][what] - ref[what]) / math.hypot(mine[p][mcse], ref[mcse])))
        result, mcse = S.loo_stats(S.cumulative_log_lik(post, data), post)
        ref = reference["models"][name]["loo"]
        zs.append((f"{name} elpd_loo", (result.elpd_loo - ref["elpd_loo"]) / math.hypot(mcse, ref["mcse_elpd_loo"])))
        zs.append((f"{name} elpd_loo, difference", result.elpd_loo - ref["elpd_loo"]))
    keys = [*S.STORY_COLUMNS, ".category"]
    tables = {
        "pred_participants": (["id", *keys], S.from_records(reference["predictions"]["participants"])),
        "pred_average": (keys, S.from_records(reference["predictions"]["average"])),
        "pred_new": (keys, S.from_records(reference["predictions"]["new"]["gaussian"])),
    }
    for item, (by, ref) in tables.items():
        frame = read_draws(items[item])
        group = ["id", *keys] if "id" in frame else keys
        mine = S.prediction_stats(frame, group)
        joined = mine.merge(ref, on=by, suffixes=("", "_ref"))
        zs += [(item, z) for z in (joined["mean"] - joined["mean_ref"]) / np.hypot(joined["mcse"], joined["mcse_ref"])]
    return zs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="course directory to keep (default: a temporary one)")
    parser.add_argument("--reuse", type=Path, help="analyse a class already graded by this script in DIR")
    args = parser.parse_args()

    folder = args.reuse or args.keep or Path(tempfile.mkdtemp(prefix="grading-bench-"))
    if args.reuse:
        course = folder
        states = {p.stem: json.loads(p.read_text()) for p in (course / ".grading" / "trolley").glob("*.json")}
        wall = float("nan")
    else:
        course = submissions.release_course(folder)
        release, source = course / "release" / "trolley", course / "source" / "trolley"
        for seed in range(1, args.students + 1):
            submissions.correct(release, source, course / "submitted" / f"student{seed:02d}" / "trolley", seed=seed)
        started = time.monotonic()
        states = grade_class(course, "trolley", workers=args.workers, limits=Limits())
        wall = time.monotonic() - started

    reference, data = load_reference(), trolley_data()
    rows, labelled = [], []
    for student, state in sorted(states.items()):
        outcome = state["outcome"]
        pairs = z_scores(course / ".grading" / "trolley" / "work" / student, reference, data, outcome["fits"])
        labelled += [(student, kind, z) for kind, z in pairs]
        zs = [z for kind, z in pairs if not kind.endswith("difference")]
        rows.append({"student": student, "score": state["score"], "seconds": round(outcome["seconds"]),
                     "peak MB": round(outcome["peak_memory_mb"]), "max |z|": round(float(np.max(np.abs(zs))), 2)})
    table = pd.DataFrame(rows)
    frame = pd.DataFrame(labelled, columns=["student", "kind", "z"])
    differences = frame[frame["kind"].str.endswith("difference")]
    frame = frame[~frame["kind"].str.endswith("difference")]
    all_z = frame["z"].to_numpy()
    z = np.abs(all_z)
    total = sum(CHECKS.values())
    print(table.to_string(index=False))
    print(f"\n{len(states)} correct submissions graded in {wall:.0f} s wall "
          f"({wall / len(states):.0f} s per submission) with {args.workers or 'all'} workers")
    print(f"per submission: median {table['seconds'].median():.0f} s, max {table['seconds'].max():.0f} s; "
          f"peak memory max {table['peak MB'].max():.0f} MB")
    print(f"false fails: {(table['score'] < total).sum()} of {len(table)}")
    fits = [f for state in states.values() for f in state["outcome"]["fits"] if f.get("key")]
    print(f"trusted fits: {len({f['key'] for f in fits})} distinct, used {len(fits)} times, "
          f"{sum(not f['reused'] for f in fits)} computed during the class run (the rest reused: the canary's)")
    print(f"{z.size} compared numbers: sd of z {np.std(all_z):.2f}, |z| > 2: {np.mean(z > 2):.3%}, "
          f"|z| > 3: {np.mean(z > 3):.3%}, |z| > {Z:g}: {np.mean(z > Z):.4%}, max {z.max():.2f}")
    by_kind = frame.groupby("kind")["z"].agg(n="size", mean="mean", sd="std", max_abs=lambda v: v.abs().max())
    print("\nz by kind of number:\n" + by_kind.round(2).to_string())
    print("\nelpd_loo, student minus reference:\n"
          + differences.groupby("kind")["z"].describe().round(2).to_string())
    if not (args.keep or args.reuse):
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
