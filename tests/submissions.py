"""Synthetic submissions, for testing the grader and measuring it (tests and benchmarks).

A submission starts from the released notebooks (what a student downloads), with each
answer cell filled in from the source notebook's solution, and then changes what a
student might change: the seed (:func:`correct`), the libraries' own calls in place of the
course's helpers (:func:`plain`), or one of the common mistakes the
checks recognise (:data:`MISTAKES`), a crash, an endless loop, a memory hog, a file that
is not a notebook, or tampering with the grading (:func:`tampering`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import nbformat

from autograder.checks import CHECKS
from autograder.release import EXERCISES, release_course  # noqa: F401  (release_course: for the callers)

__all__ = ["release_course", "solutions", "write_submission", "correct", "plain", "PLAIN", "MISTAKES", "VARIANTS",
           "tampering", "hostile", "fabricated", "HOSTILE_MARK", "hostile_folders", "FORMULA_STUDENT", "HTML_ERROR"]

NOTEBOOKS = ("1-varying-intercepts.ipynb", "2-predictions.ipynb")
_SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION\n?", re.S)


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


_VARYING_CALL = '''m_varying = bmb.Model(
    {formula!r}, {data}, family={family!r},{priors}
    noncentered=False,
)
m_varying_idata = fit(m_varying, "m_varying", adaptation="low_rank", **SAMPLING)'''
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
    """m_varying written the same way in both notebooks. m_simple is left out (the mistake is
    in m_varying; leaving m_simple unfitted keeps a class of these quick to grade)."""
    return {"ex1_m_simple_answer": "m_simple = m_simple_idata = None  # this submission is about m_varying\n",
            "ex1_m_varying_answer": code, "ex2_refit": code}


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
            'comparison = az.compare({"m_simple": m_simple_idata, "m_varying": m_varying_idata})\n'
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


#: Right answers written with Bambi's and ArviZ's own calls and none of the course's
#: helpers: ``Model.fit`` (with the cutpoints' ordered transform and a starting point, which
#: the course's ``fit`` would add, and the log-likelihood LOO needs), ``az.compare``, the
#: draws passed from one notebook to the next as NetCDF, and ``model.predict`` for every
#: prediction (``sample_new_groups=True`` for the new participants).
_PLAIN_MODEL = '''import pymc as pm

ORDERED = pm.distributions.transforms.ordered  # Bambi drops it from a prior of one's own
m_varying = bmb.Model(
    "response ~ action + intention + contact + (1 | id)",
    trolley,
    family="cumulative",
    priors={
        "threshold": bmb.Prior("Normal", mu=0, sigma=1.5, transform=ORDERED),
        **{b: bmb.Prior("Normal", mu=0, sigma=0.5) for b in ("action", "intention", "contact")},
        "1|id": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)),
    },
    noncentered=False,
)
'''
_PLAIN_START = 'START = {"threshold": np.linspace(-2, 2, 6)}  # increasing cutpoints to start from\n'
PLAIN: dict[str, str] = {
    "ex1_m_simple_answer": (
        "import pymc as pm\n\n"
        "ORDERED = pm.distributions.transforms.ordered  # Bambi drops it from a prior of one's own\n"
        + _PLAIN_START +
        "m_simple = bmb.Model(\n"
        "    \"response ~ action + intention + contact\",\n"
        "    trolley,\n"
        "    family=\"cumulative\",\n"
        "    priors={\"threshold\": bmb.Prior(\"Normal\", mu=0, sigma=1.5, transform=ORDERED),\n"
        "            **{b: bmb.Prior(\"Flat\") for b in (\"action\", \"intention\", \"contact\")}},\n"
        ")\n"
        "m_simple_idata = m_simple.fit(**SAMPLING, initvals=START, idata_kwargs={\"log_likelihood\": True})\n"
        "az.summary(m_simple_idata, kind=\"stats\")\n"),
    "ex1_m_varying_answer": (
        _PLAIN_MODEL + _PLAIN_START +
        "m_varying_idata = m_varying.fit(**SAMPLING, initvals=START, nuts={\"adaptation\": \"low_rank\"},\n"
        "                                idata_kwargs={\"log_likelihood\": True})\n"
        "m_varying_idata.to_netcdf(\"m_varying.nc\")  # for the second notebook\n"),
    "ex1_loo_answer": "comparison = az.compare({\"m_simple\": m_simple_idata, \"m_varying\": m_varying_idata})\n",
    "ex2_refit": _PLAIN_MODEL + "m_varying.build()\nm_varying_idata = az.from_netcdf(\"m_varying.nc\")\n",
    "ex2_new_answer": (
        "two_new = stories.merge(pd.DataFrame({\"id\": [\"New1\", \"New2\"]}), how=\"cross\")\n"
        "pred_new = m_varying.predict(m_varying_idata, data=two_new, kind=\"response_params\",\n"
        "                             sample_new_groups=True, inplace=False)\n"),
}


def plain(release: Path, source: Path, target: Path, seed: int) -> Path:
    """A correct submission in plain Bambi and ArviZ (:data:`PLAIN`); the predictions for
    participants in the data and the average participant are the solutions' own
    ``model.predict`` calls."""
    return write_submission(release, source, target, seed=seed, answers=PLAIN)


def _insert_after(nb: nbformat.NotebookNode, grade_id: str, code: str) -> None:
    index = next(i for i, c in enumerate(nb.cells) if _grade_id(c) == grade_id)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(code))


def crashing(nbs: dict) -> None:
    """A typo in m_simple's formula: that cell raises; the rest is right."""
    for cell in nbs[NOTEBOOKS[0]].cells:
        if _grade_id(cell) == "ex1_m_simple_answer":
            cell.source = cell.source.replace('"response ~ action', '"respnse ~ action')


def memory_hog(nbs: dict) -> None:
    """Exercise 1 starts a child process, in a session of its own, that keeps allocating
    memory until something stops it (the kernel itself stays small)."""
    _insert_after(nbs[NOTEBOOKS[0]], "ex1_part_a", (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import numpy as np\\nhoard = []\\nwhile True: "
        "hoard.append(np.ones(50_000_000))'], start_new_session=True)\n"
        "time.sleep(600)\n"))


def kernel_exit(nbs: dict) -> None:
    """Right after m_simple's test cell, a line that ends the kernel: the notebook is graded
    as far as it ran (m_simple keeps its points), the rest scores 0, the second notebook runs."""
    _insert_after(nbs[NOTEBOOKS[0]], "ex1_m_simple", "import os\nos._exit(0)  # ends the kernel\n")


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
        **{cell: code for cell, code in MISTAKES["no_varying_intercept"].items() if cell != "ex1_m_simple_answer"},
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


#: Answers that fit nothing (quick to grade), for submissions about something else.
NOTHING = {"ex1_m_simple_answer": "m_simple = m_simple_idata = None\n",
           "ex1_m_varying_answer": "m_varying = m_varying_idata = None\n", "ex1_loo_answer": "comparison = None\n",
           "ex2_refit": "m_varying = m_varying_idata = None\n", "ex2_participants_answer": "pred_participants = None\n",
           "ex2_average_answer": "pred_average = None\n", "ex2_new_answer": "pred_new = None\n"}

#: The synthetic class of the end-to-end test: name -> (answers, edit). Submissions that
#: fit models cost minutes each, so each of those shows several things at once.
VARIANTS: dict[str, tuple[dict[str, str], Edit | None]] = {
    "no_varying_intercept": (MISTAKES["no_varying_intercept"], None),
    # Three slips that the checks each name, and a cell that never finishes (stopped at the
    # cell's time limit; the rest is graded).
    "slips_and_endless_loop": ({**MISTAKES["sign_scale_and_average"],
                                "ex2_average_answer": "while True:  # never finishes\n    pass\n"}, None),
    # A typo that crashes m_simple: the error is reported, the rest of the notebook runs.
    "crash": ({k: v for k, v in NOTHING.items() if k != "ex1_m_simple_answer"}, crashing),
    "memory_hog": (NOTHING, memory_hog),
    # m_simple right, then the kernel ends itself: graded as far as it ran, with the reason.
    "kernel_exit": ({k: v for k, v in NOTHING.items() if k != "ex1_m_simple_answer"}, kernel_exit),
}


def not_a_notebook(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    (target / NOTEBOOKS[0]).write_text("I could not get Jupyter to work, so here is my answer as text.\n")
    return target


#: A student id a spreadsheet would run as a formula, and an error message that a page would run.
FORMULA_STUDENT = "=1+1"
HTML_ERROR = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def hostile_folders(course: Path, assignment: str = "trolley") -> dict[str, str]:
    """Submissions that are not what a grader expects, in ``course/submitted``, next to
    whatever is there; returns student -> what each one is. None of them fits a model.

    - ``folder_link``: the assignment folder is a link to the course's source notebooks
      (the solutions); ``student_link``: the student's folder is a link to another
      student's; ``pipe_folder``: a named pipe where the assignment folder should be;
    - ``copier``: real copies of the source notebooks (with the solution markers);
    - ``links_inside``: one notebook a link to the source notebook, the other a named
      pipe, ``timestamp.txt`` a link to ``/dev/zero``;
    - :data:`FORMULA_STUDENT`: the released notebooks, unanswered, with :data:`HTML_ERROR`
      as an error's message, in a Markdown cell and as a cell's HTML output; beside them a link to ``/dev/zero``,
      a named pipe, a folder and a link to the solutions.
    """
    import os

    root, source, release = course / "submitted", course / "source" / assignment, course / "release" / assignment
    (root / "folder_link").mkdir(parents=True)
    (root / "folder_link" / assignment).symlink_to(source, target_is_directory=True)
    first = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name != "folder_link")
    (root / "student_link").symlink_to(first[0] if first else source, target_is_directory=True)
    (root / "pipe_folder").mkdir()
    os.mkfifo(root / "pipe_folder" / assignment)
    (root / "copier" / assignment).mkdir(parents=True)
    for name in NOTEBOOKS:
        (root / "copier" / assignment / name).write_bytes((source / name).read_bytes())
    inside = root / "links_inside" / assignment
    inside.mkdir(parents=True)
    (inside / NOTEBOOKS[0]).symlink_to(source / NOTEBOOKS[0])
    os.mkfifo(inside / NOTEBOOKS[1])
    (inside / "timestamp.txt").symlink_to("/dev/zero")

    def html_error(nbs):
        _insert_after(nbs[NOTEBOOKS[0]], "ex1_m_simple_answer", f"raise ValueError({HTML_ERROR!r})")
        nbs[NOTEBOOKS[1]].cells.insert(0, nbformat.v4.new_markdown_cell(f"My answer {HTML_ERROR}"))
        nbs[NOTEBOOKS[1]].cells.insert(1, nbformat.v4.new_code_cell(
            f"from IPython.display import HTML, display\ndisplay(HTML({HTML_ERROR!r}))"))

    target = write_submission(release, source, root / FORMULA_STUDENT / assignment, answers=NOTHING,
                              edit=html_error)
    (target / "data.csv").symlink_to("/dev/zero")
    os.mkfifo(target / "fifo")
    (target / "folder").mkdir()
    (target / "solutions").symlink_to(source, target_is_directory=True)
    return {"folder_link": "refused", "student_link": "refused", "pipe_folder": "refused",
            "copier": "not-a-notebook", "links_inside": "not-a-notebook", FORMULA_STUDENT: "graded"}


#: Printed by :func:`hostile`'s attempts, and in the command line of the process it leaves behind.
HOSTILE_MARK = "hostile-attempt"


def hostile(targets: dict[str, str], port: int) -> tuple[dict[str, str], Edit]:
    """A submission that fits nothing and attacks the grading from its first answer cell.

    ``targets`` maps names to absolute paths a student could guess (the checkout's grader
    and reference, the course's gradebook, solutions, another student's notebooks and
    state, the feedback folder, the virtual environment); ``port`` is a TCP port on the
    grader's loopback. It tries to overwrite each target, to read each, to connect to the
    port, to plant modules where the grader might import them, and to leave a process
    behind that rewrites the targets later. Each attempt prints one line starting with
    :data:`HOSTILE_MARK`; whatever it manages to read lands in its own outputs.
    """
    code = f"""import glob, json, os, socket, subprocess, sys
TARGETS = {json.dumps(targets)}
MARK = {HOSTILE_MARK!r}
for name, path in TARGETS.items():
    for found in glob.glob(path) or [path]:
        try:
            with open(found, "rb") as fh:
                print(MARK, "read", name, fh.read()[:2000])
        except OSError as error:
            print(MARK, "could not read", name, type(error).__name__)
        try:
            with open(found, "ab") as fh:
                fh.write(b"\\n# rewritten by a student\\n")
            print(MARK, "WROTE", name)
        except OSError as error:
            print(MARK, "could not write", name, type(error).__name__)
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"the answers, please")
    print(MARK, "CONNECTED")
except OSError as error:
    print(MARK, "no network", type(error).__name__)
for planted in ("autograder/__init__.py", "autograder/checks.py", "sitecustomize.py", "usercustomize.py",
                "../../../autograder/check_submission.py"):
    try:
        os.makedirs(os.path.dirname(planted) or ".", exist_ok=True)
        with open(planted, "w") as fh:
            fh.write("CHECKS = {{}}\\nagrees = lambda *a, **k: True\\n")
        print(MARK, "planted", planted)
    except OSError as error:
        print(MARK, "could not plant", planted, type(error).__name__)
later = ("import time, json\\ntime.sleep(20)\\n"
         "for p in " + repr(list(TARGETS.values())) + ":\\n"
         "    try:\\n        open(p, 'a').write('late')\\n    except OSError:\\n        pass\\n")
subprocess.Popen([sys.executable, "-c", later, MARK], start_new_session=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
print(MARK, "left a process behind")
"""
    answers = {
        "ex1_m_simple_answer": code,
        "ex1_m_varying_answer": "m_varying = m_varying_idata = None\n",
        "ex1_loo_answer": "comparison = None\n",
        "ex2_refit": "m_varying = m_varying_idata = None\n",
        "ex2_participants_answer": "pred_participants = None\n",
        "ex2_average_answer": "pred_average = None\n",
        "ex2_new_answer": "pred_new = None\n",
    }
    return answers, None


_FABRICATE = '''import arviz as az, json, numpy as np
from autograder.reference import load_reference
REF = load_reference()
rng = np.random.default_rng(SEED)

def made_up(name, with_id):
    """Normal draws around the public reference's means and sds: no sampling at all."""
    p = REF["models"][name]["parameters"]
    draw = lambda key, *shape: p[key]["mean"] + p[key]["sd"] * rng.standard_normal((2, 500, *shape))
    post = {"threshold": np.sort(np.stack([draw(f"b_Intercept[{k}]") for k in range(1, 7)], axis=-1), axis=-1)}
    post.update({c: draw(f"b_{c}") for c in ("action", "intention", "contact")})
    coords, dims = {}, {}
    if with_id:
        ids = sorted(trolley["id"].astype(str).unique())
        post["1|id_sigma"] = np.abs(draw("sd_id__Intercept"))
        post["1|id"] = rng.standard_normal((2, 500, len(ids))) * post["1|id_sigma"][..., None]
        coords, dims = {"id__factor_dim": ids}, {"1|id": ["id__factor_dim"]}
    return az.from_dict({"posterior": post}, coords=coords, dims=dims)
'''


def fabricated(reference: dict) -> dict[str, str]:
    """A submission that writes the right models (``bmb.Model``) but fits neither: its
    posteriors, LOO table and predictions are made up from the public reference."""
    solved = solutions(EXERCISES / "source" / "trolley")
    # The solutions' bmb.Model(...) calls, without the fit and the summary after them.
    m_simple, m_varying = (re.sub(r"\n(\w+_idata = fit\(|az\.summary\().*", "\n", solved[cell], flags=re.S)
                           for cell in ("ex1_m_simple_answer", "ex1_m_varying_answer"))
    ref = reference["models"]
    table = (f"comparison = pd.DataFrame({{'elpd_loo': [{ref['m_varying']['loo']['elpd_loo']}, "
             f"{ref['m_simple']['loo']['elpd_loo']}], 'elpd_diff': [0.0, {reference['comparison']['elpd_diff']}], "
             f"'se_diff': [0.0, {reference['comparison']['se_diff']}]}}, index=['m_varying', 'm_simple'])\n")
    predictions = '''
def made_up_predictions(rows, records, key):
    means = pd.DataFrame(records)
    frame = rows.merge(means, on=key)
    frame = frame.loc[frame.index.repeat(1000)].reset_index(drop=True)
    frame[".chain"] = np.tile(np.repeat([1, 2], 500), len(frame) // 1000)
    frame[".iteration"] = np.tile(np.arange(1, 501), len(frame) // 500)
    frame[".draw"] = np.tile(np.arange(1, 1001), len(frame) // 1000)
    frame[".epred"] = frame["mean"] / frame.groupby([*key, ".draw"])["mean"].transform("sum")  # sums to 1
    return frame.drop(columns=["mean", "mcse"])
'''
    return {
        "ex1_m_simple_answer": f"{_FABRICATE}\n{m_simple}\nm_simple_idata = made_up('m_simple', False)\n",
        "ex1_m_varying_answer": f"{m_varying}\nm_varying_idata = made_up('m_varying', True)\n",
        "ex1_loo_answer": table,
        "ex2_refit": f"{_FABRICATE}\n{m_varying}\nm_varying_idata = made_up('m_varying', True)\n{predictions}",
        "ex2_participants_answer": (
            "records = [r for r in REF['predictions']['participants'] if r['id'] in ('96;434', '96;445', '96;451')]\n"
            "pred_participants = made_up_predictions(stories.merge(pd.DataFrame({'id': ['96;434', '96;445', '96;451']}),"
            " how='cross'), records, ['id', 'action', 'intention', 'contact'])\n"),
        "ex2_average_answer": ("pred_average = made_up_predictions(stories, REF['predictions']['average'], "
                               "['action', 'intention', 'contact'])\n"),
        "ex2_new_answer": (
            "two_new = stories.merge(pd.DataFrame({'id': ['New1', 'New2']}), how='cross')\n"
            "pred_new = pd.concat([made_up_predictions(stories, REF['predictions']['new']['gaussian'], "
            "['action', 'intention', 'contact']).assign(id=person) for person in ('New1', 'New2')])\n"),
    }
