"""Command line: ``python -m autograder reference [--check]`` and ``python -m autograder grade``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .cluster import ENV_ADDRESS
from .limits import Limits

COURSE = Path(__file__).resolve().parent.parent / "exercises"
DEFAULT = Limits()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ref = sub.add_parser("reference", help="build the reference posterior summary (or --check it)")
    ref.add_argument("--check", action="store_true", help="compare a fresh summary with the committed file")
    grade = sub.add_parser("grade", help="grade every submission of an assignment")
    grade.add_argument("assignment", nargs="?", default="trolley")
    grade.add_argument("--course", type=Path, default=COURSE, help="nbgrader course directory (default: exercises/)")
    grade.add_argument("--scheduler", default=os.environ.get(ENV_ADDRESS),
                       help=f"address of a running Dask scheduler, e.g. tcp://host:8786 (default: ${ENV_ADDRESS}, "
                            "else a local cluster)")
    grade.add_argument("--insecure-scheduler", action="store_true",
                       help="allow a scheduler address that is not tls:// (only on a network no one else can reach: "
                            "whoever reaches the scheduler can run code on the workers)")
    grade.add_argument("--workers", type=int, default=os.cpu_count(),
                       help="local cluster only: submissions graded at once (default: cores)")
    grade.add_argument("--timeout", type=float, default=None,
                       help="seconds for a submission's notebooks (default: derived from the canary's time on this "
                            "machine, see autograder/limits.py)")
    grade.add_argument("--cell-timeout", type=float, default=None,
                       help="seconds per cell (default: derived from the canary's slowest cell on this machine)")
    grade.add_argument("--memory-gb", type=float, default=DEFAULT.memory_bytes / 2**30,
                       help=f"memory per submission in GB (default {DEFAULT.memory_bytes / 2**30:g})")
    grade.add_argument("--regrade", action="store_true", help="grade again submissions already graded")
    grade.add_argument("--retry-ungradable", action="store_true",
                       help="grade again the submissions recorded as ungradable (the grader failed on them in "
                            "several runs in a row)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run students' notebooks without the bubblewrap sandbox (unsafe; the report says so)")
    args = parser.parse_args(argv)

    if args.command == "reference":
        from course_utils.diagnostics import ConvergenceError

        from .reference import REFERENCE_FILE, build, compare_references, load_reference, save

        try:
            fresh = build()
        except ConvergenceError as error:
            print(f"The reference posterior was not built: {error}. Change the model's settings in "
                  "course_utils/models/ (the chapter's), check them with make bench-seeds, and run again.")
            return 1
        if args.check:
            problems = compare_references(fresh, load_reference())
            print("\n".join(problems) if problems else f"{REFERENCE_FILE} agrees with a fresh fit.")
            return 1 if problems else 0
        print(f"wrote {save(fresh)}")
        return 0

    from .grade import grade_class

    # Ctrl-C, or SIGTERM from a scheduler, stops the run cleanly (running submissions are
    # killed, recorded grades kept), even where the shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    limits = Limits(submission_seconds=args.timeout, cell_seconds=args.cell_timeout,
                    memory_bytes=int(args.memory_gb * 2**30))
    grade_class(args.course, args.assignment, workers=args.workers, limits=limits, regrade=args.regrade,
                sandboxed=not args.no_sandbox, scheduler=args.scheduler, retry_ungradable=args.retry_ungradable,
                insecure_scheduler=args.insecure_scheduler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
