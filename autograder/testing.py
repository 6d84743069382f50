"""Synthetic submissions, for testing the grader and measuring it.

A submission starts from the released notebooks (what a student downloads), with each
answer cell filled in from the source notebook's solution, and then changes what a
student might change: the seed (:func:`correct`), or one of the common mistakes the
checks recognise (:data:`MISTAKES`), a crash, an endless loop, a memory hog, a file that
is not a notebook, or tampering with the grading (:func:`tampering`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat

from .checks import CHECKS

__all__ = ["release_course", "solutions", "write_submission", "correct", "MISTAKES", "VARIANTS", "tampering"]

NOTEBOOKS = ("1-varying-intercepts.ipynb", "2-predictions.ipynb")
_SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION\n?", re.S)


EXERCISES = Path(__file__).resolve().parent.parent / "exercises"


def release_course(folder: Path, assignment: str = "trolley") -> Path:
    """A new course directory in ``folder`` with the assignment released (as ``make release``)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(EXERCISES / "nbgrader_config.py", folder)
    shutil.copytree(EXERCISES / "source", folder / "source", dirs_exist_ok=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"],
                          cwd=folder, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return folder


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solutions(source: Path) -> dict[str, str]:
    """Answer cell id -> the cell's code as a student who solved it would leave it."""
    answers = {}
    for name in NOTEBOOKS:
        for cell in nbformat.read(source / name, as_version=4).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution"):
                answers[meta["grade_id"]] = _SOLUTION.sub(lambda m: m.group(1), cell.source)
    return answers


Edit = Callable[[dict[str, nbformat.NotebookNode]], None]


def write_submission(release: Path, source: Path, target: Path, *, seed: int = 2026,
                     answers: dict[str, str] | None = None, edit: Edit | None = None) -> Path:
    """Write a student's submission into ``target`` (``submitted/<student>/<assignment>``).

    ``answers`` replaces some answer cells' code (by cell id); ``edit`` changes the
    notebooks (name -> notebook) in any other way before they are written.
    """
    filled = {**solutions(source), **(answers or {})}
    notebooks = {}
    for name in NOTEBOOKS:
        nb = nbformat.read(release / name, as_version=4)
        for cell in nb.cells:
            if _grade_id(cell) in filled and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                cell.source = filled[_grade_id(cell)]
            if cell.cell_type == "code" and "SEED = 2026" in cell.source:
                cell.source = cell.source.replace("SEED = 2026", f"SEED = {seed}")
        notebooks[name] = nb
    if edit is not None:
        edit(notebooks)
    target.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, target / name)
    return target


def correct(release: Path, source: Path, target: Path, seed: int) -> Path:
    return write_submission(release, source, target, seed=seed)


_VARYING_CALL = '''m_varying, m_varying_idata = fit_bambi(
    "m_varying", {formula!r}, {data}, family={family!r},{priors}
    noncentered=False, low_rank_modified_mass_matrix=True, **SAMPLING,
)'''
_CUMULATIVE_PRIORS = '''
    priors={
        "threshold": bmb.Prior("Normal", mu=0, sigma=1.5),
        **{b: bmb.Prior("Normal", mu=0, sigma=0.5) for b in ("action", "intention", "contact")},%s
    },'''
_ID_PRIOR = '''
        "1|id": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)),'''


def _varying(formula: str, family: str = "cumulative", data: str = "trolley", id_prior: bool = True) -> str:
    priors = _CUMULATIVE_PRIORS % (_ID_PRIOR if id_prior else "") if family == "cumulative" else ""
    return _VARYING_CALL.format(formula=formula, family=family, data=data, priors=priors)


def _same_in_both(code: str) -> dict[str, str]:
    return {"ex1_m_varying_answer": code, "ex2_refit": code}


_GAUSSIAN = "trolley_numeric = trolley.assign(response=trolley['response'].astype(int))\n" + _varying(
    "response ~ action + intention + contact + (1 | id)", family="gaussian", data="trolley_numeric")

#: The common mistakes: name -> answers that make it (exercise 1 and 2 consistently).
MISTAKES: dict[str, dict[str, str]] = {
    "no_varying_intercept": _same_in_both(_varying("response ~ action + intention + contact", id_prior=False)),
    "gaussian_family": _same_in_both(_GAUSSIAN),
    "wrong_predictors": _same_in_both(_varying("response ~ action + intention + (1 | id)")),
    # One submission, three slips that the checks each name.
    "sign_scale_and_average": {
        "ex1_loo_answer": (
            'comparison = loo_compare({"m_simple": loo(m_simple_idata), "m_varying": loo(m_varying_idata)})\n'
            'comparison["elpd_diff"] = -comparison["elpd_diff"]  # "a positive difference reads better"\n'),
        "ex2_participants_answer": (
            "from course_utils.predictions import linpred_draws\n"
            "rng = np.random.default_rng(SEED)\n"
            "three = rng.choice(trolley['id'].unique(), size=3, replace=False)\n"
            "three_people = stories.merge(pd.DataFrame({'id': three}), how='cross')\n"
            "pred_participants = linpred_draws((m_varying, m_varying_idata), three_people, clusters='sample')\n"),
        "ex2_new_answer": (
            "two_new = stories.merge(pd.DataFrame({'id': ['New1', 'New2']}), how='cross')\n"
            "pred_new = epred_draws((m_varying, m_varying_idata), two_new, clusters='average')\n"),
    },
}


def _insert_after(nb: nbformat.NotebookNode, grade_id: str, code: str) -> None:
    index = next(i for i, c in enumerate(nb.cells) if _grade_id(c) == grade_id)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(code))


def crashing(nbs: dict) -> None:
    """A typo in m_simple's formula: that cell raises; the rest is right."""
    for cell in nbs[NOTEBOOKS[0]].cells:
        if _grade_id(cell) == "ex1_m_simple_answer":
            cell.source = cell.source.replace('"response ~ action', '"respnse ~ action')


def memory_hog(nbs: dict) -> None:
    """Exercise 1 keeps allocating memory until something stops it."""
    _insert_after(nbs[NOTEBOOKS[0]], "ex1_m_simple", (
        "import numpy as np\nhoard = []\nwhile True:\n    hoard.append(np.ones(50_000_000))\n"))


# What a tampering submission hopes the grader will run instead of its checks: full marks.
_FAKE_CHECKER = ("import json\nfrom pathlib import Path\nPath('checks.json').write_text(json.dumps("
                 + repr([{"check": c, "points": p, "score": p, "message": "ok"} for c, p in CHECKS.items()]) + "))\n")


def tampering(reference: dict) -> tuple[dict[str, str], Edit]:
    """A submission with a wrong m_varying (no varying intercept) that tries to get the
    credit anyway: it edits one test cell, deletes another, redefines the grader's check
    functions in its kernel, patches numpy and ArviZ, writes fake result files and result
    lines, plants a fake ``autograder`` package in the grading folder, and reports the
    reference's LOO table instead of its own."""
    ref = reference["models"]
    fake_table = {
        "index": ["m_varying", "m_simple"],
        "columns": {"elpd_loo": [ref["m_varying"]["loo"]["elpd_loo"], ref["m_simple"]["loo"]["elpd_loo"]],
                    "elpd_diff": [0.0, reference["comparison"]["elpd_diff"]],
                    "se_diff": [0.0, reference["comparison"]["se_diff"]]},
    }
    answers = {
        **MISTAKES["no_varying_intercept"],
        "ex1_loo_answer": (
            "import json, os\n"
            "import arviz as az\n"
            "import autograder.checks, autograder.export\n"
            f"fake = json.loads({json.dumps(json.dumps(fake_table))})\n"
            "comparison = pd.DataFrame(fake['columns'], index=fake['index'])\n"
            "autograder.checks.agrees = lambda *args, **kwargs: True\n"
            "autograder.checks.grade_items = lambda *args, **kwargs: []\n"
            "np.allclose = lambda *args, **kwargs: True\n"
            "az.loo = lambda *args, **kwargs: None\n"
            "folder = os.environ.get('AUTOGRADER_PAYLOAD_DIR', '.')\n"
            "os.makedirs(folder, exist_ok=True)\n"
            "with open(os.path.join(folder, 'comparison.table.json'), 'w') as fh:\n"
            "    json.dump(fake, fh)\n"
            "print('autograder-payload comparison ' + '0' * 64)\n"
            "# A fake grader in the grading folder (three levels up from this notebook), hoping the\n"
            "# checks will import it instead of the real one and write full marks.\n"
            "fake = os.path.join('..', '..', '..', 'autograder')\n"
            "os.makedirs(fake, exist_ok=True)\n"
            "open(os.path.join(fake, '__init__.py'), 'w').close()\n"
            "with open(os.path.join(fake, 'check_submission.py'), 'w') as fh:\n"
            f"    fh.write({_FAKE_CHECKER!r})\n"),
    }

    def edit(nbs: dict) -> None:
        first = nbs[NOTEBOOKS[0]]
        for cell in first.cells:
            if _grade_id(cell) == "ex1_m_varying_sd":
                cell.source = "print('all good')"
        first.cells = [c for c in first.cells if _grade_id(c) != "ex1_m_varying_coefficients"]
        # After every test cell has run: overwrite the results with the reference's.
        first.cells.append(nbformat.v4.new_code_cell(
            "with open(os.path.join(folder, 'm_varying.meta.json'), 'w') as fh:\n"
            "    json.dump({'variables': [], 'family': 'cumulative'}, fh)\n"))

    return answers, edit


#: Every other synthetic submission: name -> (answers, edit).
VARIANTS: dict[str, tuple[dict[str, str], Edit | None]] = {
    **{name: (answers, None) for name, answers in MISTAKES.items()},
    "crash": ({}, crashing),
    "endless_loop": ({"ex2_participants_answer": "while True:  # never finishes\n    pass\n"}, None),
    "memory_hog": ({}, memory_hog),
}


def not_a_notebook(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    (target / NOTEBOOKS[0]).write_text("I could not get Jupyter to work, so here is my answer as text.\n")
    return target
