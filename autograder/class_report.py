"""The class report: what an instructor opens after ``make grade``.

Two files in the course folder, written from the grading states (``.grading/``) after
every run, so they always describe the whole class:

``grading-report.csv``
    One row per student: score, status, sandbox, seconds (in all and by phase), peak
    memory, the worker that graded it, the trusted fits used (reused or fitted), the
    reason and the grader's detail, every check's score, and why the submission is
    worth a human look.
``class-report.html``
    One page, readable offline (figures embedded): the score distribution, each check's
    pass rate, the most frequent mistakes by feedback category (a failed check's
    message with its numbers blanked out), the distinct model specifications and how
    many students wrote each, time per submission (and by phase: notebooks, trusted
    fits, checks) and memory, and the submissions worth
    a human look: identical notebooks, identical draws, a model nobody else wrote, and
    every submission that was not graded in full.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from . import spreadsheet  # noqa: E402
from .checks import CHECKS  # noqa: E402

__all__ = ["CSV_NAME", "HTML_NAME", "category", "to_look_at", "write_class_report", "write_csv"]

CSV_NAME = "grading-report.csv"
HTML_NAME = "class-report.html"
TOTAL = sum(CHECKS.values())
#: Feedback categories listed in the page (the most frequent first).
MISTAKES_SHOWN = 25


def category(check: str, message: str) -> str:
    """A failed check's feedback category: its first sentence with the numbers blanked
    out, so the same mistake with other numbers falls in one category."""
    first = re.split(r"(?<=[.;])\s", message.strip(), maxsplit=1)[0]
    first = re.sub(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", "#", first)
    return f"{check}: {first[:160].rstrip('.;:, ')}"


def _groups(states: dict[str, dict], field: str) -> dict[str, list[str]]:
    """digest -> students, for digests that more than one student share."""
    found = defaultdict(list)
    for student, state in sorted(states.items()):
        value = state.get(field)
        if isinstance(value, dict):
            for name, digest in sorted(value.items()):
                found[f"{name} {digest}"].append(student)
        elif value:
            found[value].append(student)
    return {k: v for k, v in found.items() if len(v) > 1}


def _models(states: dict[str, dict]) -> dict[tuple[str, str], list[str]]:
    """(item, model) -> students who wrote it (one entry per trusted-fit key)."""
    found = defaultdict(list)
    for student, state in sorted(states.items()):
        for fit in state["outcome"].get("fits", []):
            if fit.get("key"):
                found[(fit["item"], fit["key"], fit.get("model", ""))].append(student)
    return found


def to_look_at(states: dict[str, dict]) -> dict[str, list[str]]:
    """student -> the reasons a person should look at the submission."""
    reasons = defaultdict(list)
    for students in _groups(states, "notebooks").values():
        for student in students:
            others = ", ".join(s for s in students if s != student)
            reasons[student].append(f"identical notebooks to {others}")
    for what, students in _groups(states, "draws").items():
        for student in students:
            others = ", ".join(s for s in students if s != student)
            reasons[student].append(f"identical draws ({what.split()[0]}) to {others}")
    if len(states) > 1:
        for (item, _, model), students in _models(states).items():
            if len(students) == 1:
                reasons[students[0]].append(f"a model nobody else wrote for {item}: {model}")
    for student, state in states.items():
        outcome = state["outcome"]
        if outcome["status"] != "graded":
            reasons[student].append(f"not graded in full ({outcome['status']})")
        if not outcome.get("sandboxed", True):
            reasons[student].append("graded without the sandbox")
    return {s: list(dict.fromkeys(r)) for s, r in sorted(reasons.items())}


def _fit_text(fit: dict) -> str:
    """One trusted fit, as the report lists it: reused or fitted, its key and convergence."""
    text = f"{fit['item']} {'reused' if fit['reused'] else 'fitted'} {fit['key'][:8]}"
    if fit.get("max_rhat") is not None:
        text += f" (Rhat {fit['max_rhat']:.3f}, ESS {fit['min_ess']:.0f}"
        text += f", {fit['attempts']} seeds tried)" if fit.get("attempts", 1) > 1 else ")"
    return text


def write_csv(course: Path, states: dict[str, dict], look: dict[str, list[str]] | None = None) -> Path:
    look = to_look_at(states) if look is None else look
    path = Path(course) / CSV_NAME
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "score", "max_score", "status", "sandbox", "seconds", "notebooks_seconds",
                         "fits_seconds", "checks_seconds", "peak_memory_mb", "worker", "fits", "reason", "detail",
                         "feedback", "look", *CHECKS])
        for student, state in sorted(states.items()):
            outcome = state["outcome"]
            scores = {c["check"]: c["score"] for c in outcome["checks"]}
            fits = "; ".join(_fit_text(f) for f in outcome.get("fits", []) if f.get("key"))
            sandbox = "yes" if outcome.get("sandboxed", True) else "NO: graded with --no-sandbox"
            score = "" if outcome["status"] == "retry" else f"{state['score']:g}"
            phases = outcome.get("phases", {})
            writer.writerow(spreadsheet.row([
                student, score, f"{TOTAL:g}", outcome["status"], sandbox, f"{outcome['seconds']:.0f}",
                *[f"{phases[p]:.0f}" if p in phases else "" for p in ("notebooks", "fits", "checks")],
                f"{outcome.get('peak_memory_mb', 0):.0f}", state.get("worker", ""), fits, outcome["reason"],
                outcome.get("detail", ""),
                "grader's page (nbgrader failed)" if state.get("feedback_failed") else "nbgrader",
                "; ".join(look.get(student, [])), *[f"{scores.get(c, 0):g}" for c in CHECKS]]))
    return path


def _figure(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _frames(states: dict[str, dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    students = pd.DataFrame([
        {"student": s, "score": st["score"] if st["outcome"]["status"] != "retry" else None,
         "status": st["outcome"]["status"], "seconds": st["outcome"]["seconds"],
         "fit seconds": sum(f.get("seconds", 0) for f in st["outcome"].get("fits", []) if not f.get("reused")),
         "peak memory (MB)": st["outcome"].get("peak_memory_mb", 0.0)}
        for s, st in sorted(states.items())])
    checks = pd.DataFrame([
        {"student": s, "check": c["check"], "passed": c["score"] == c["points"], "message": c["message"]}
        for s, st in sorted(states.items()) if st["outcome"]["status"] != "retry" for c in st["outcome"]["checks"]],
        columns=["student", "check", "passed", "message"])
    return students, checks


def write_class_report(course: Path, assignment: str, states: dict[str, dict]) -> Path:
    """Write ``grading-report.csv`` and ``class-report.html``; returns the page's path."""
    course = Path(course)
    look = to_look_at(states)
    write_csv(course, states, look)
    if states:
        with sns.axes_style("whitegrid"):  # for these figures only: the feedback's plots keep their style
            parts = _sections(assignment, states, look)
    else:
        parts = [f"<h1>{html.escape(assignment)}: the class</h1>", "<p>No submission has been graded yet.</p>"]
    page = course / HTML_NAME
    page.write_text("<!doctype html><html><head><meta charset='utf-8'>"
                    f"<title>{html.escape(assignment)}: class report</title><style>"
                    "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
                    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;"
                    "text-align:left;vertical-align:top}img{max-width:100%}</style></head><body>"
                    + "\n".join(parts) + "</body></html>\n")
    return page


def _sections(assignment: str, states: dict[str, dict], look: dict[str, list[str]]) -> list[str]:
    students, checks = _frames(states)
    phases = pd.DataFrame([{"phase": phase, "seconds": seconds} for st in states.values()
                           for phase, seconds in st["outcome"].get("phases", {}).items()],
                          columns=["phase", "seconds"])
    graded = students.dropna(subset=["score"])
    parts = [f"<h1>{html.escape(assignment)}: the class</h1>",
             f"<p>{len(states)} submissions: " + ", ".join(f"{n} {html.escape(k)}" for k, n in
                                                         Counter(students["status"]).most_common()) +
             (f". Scores out of {TOTAL:g}: mean {graded['score'].mean():.1f}, median {graded['score'].median():g}."
              if len(graded) else ".") + f" Every row is in <a href='{CSV_NAME}'>{CSV_NAME}</a>.</p>"]
    if len(graded):
        fig, ax = plt.subplots(figsize=(6, 3))
        sns.histplot(graded, x="score", binwidth=1, binrange=(-0.5, TOTAL + 0.5), ax=ax)
        ax.set(xlabel=f"score (out of {TOTAL:g})", ylabel="students", title="Scores")
        parts += ["<h2>Scores</h2>", _figure(fig)]
    if len(checks):
        rates = checks.groupby("check", sort=False)["passed"].mean().reindex(list(CHECKS)).fillna(0).reset_index()
        fig, ax = plt.subplots(figsize=(6, 3.2))
        sns.barplot(rates, x="passed", y="check", color="C0", ax=ax)
        ax.set(xlim=(0, 1), xlabel="share of graded submissions that passed", ylabel="", title="Pass rate per check")
        parts += ["<h2>Each check</h2>", _figure(fig),
                  _table(["check", "points", "passed", "of"],
                         [[c, f"{CHECKS[c]:g}", int(checks[checks["check"] == c]["passed"].sum()),
                           int((checks["check"] == c).sum())] for c in CHECKS])]
        failed = checks[~checks["passed"]]
        mistakes = Counter(category(c, m) for c, m in zip(failed["check"], failed["message"]))
        shown = [[n, k] for k, n in mistakes.most_common(MISTAKES_SHOWN)]
        parts += ["<h2>Most frequent mistakes</h2>",
                  _table(["students", "feedback category"], shown) if shown else "<p>No check failed.</p>"]
    models = _models(states)
    if models:
        rows = sorted(([item, model, key[:8], len(names)] for (item, key, model), names in models.items()),
                      key=lambda r: (r[0], -r[3]))
        frame = pd.DataFrame(rows, columns=["item", "model", "key", "students"])
        frame["label"] = frame["item"] + " " + frame["key"]
        fig, ax = plt.subplots(figsize=(6, 0.8 + 0.3 * len(frame)))
        sns.barplot(frame, x="students", y="label", hue="item", dodge=False, ax=ax)
        ax.set(xlabel="students who wrote it", ylabel="", title="Distinct model specifications")
        parts += ["<h2>The models the class wrote</h2>",
                  "<p>One trusted fit per distinct specification (its key), shared by everyone who wrote it.</p>",
                  _figure(fig), _table(["item", "model", "key", "students"], rows)]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    sns.histplot(students, x="seconds", hue="status", multiple="stack", ax=axes[0])
    axes[0].set(xlabel="seconds per submission", ylabel="submissions", title="Time")
    if len(phases):
        sns.boxplot(phases, x="seconds", y="phase", ax=axes[1])
    axes[1].set(ylabel="", title="Time by phase")
    sns.histplot(students, x="peak memory (MB)", ax=axes[2])
    axes[2].set(ylabel="submissions", title="Peak memory of the notebooks' run")
    fitted = students["fit seconds"].sum()
    slowest = ", ".join(f"{r.student} ({r.seconds:.0f} s)" for r in students.nlargest(3, "seconds").itertuples())
    parts += ["<h2>Time and memory</h2>", _figure(fig),
              f"<p>Total {students['seconds'].sum() / 60:.1f} minutes of grading, of which "
              f"{fitted / 60:.1f} minutes of trusted fits made for these submissions (the rest reused fits). "
              f"Slowest: {html.escape(slowest)}.</p>"]
    parts += ["<h2>Worth a human look</h2>",
              _table(["student", "why"], [[s, "; ".join(r)] for s, r in look.items()]) if look else
              "<p>Nothing stands out.</p>"]
    return parts
