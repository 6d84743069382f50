"""The autograder's parts on small synthetic data: the rule, the recomputed quantities,
the payload's integrity, the checks' feedback, the limits and the gradebook."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import psutil
import pytest
import xarray as xr
from scipy.special import expit

from autograder import checks as C
from autograder import summaries as S
from autograder.export import MARKER, export_draws, export_fit, export_table
from autograder.payload import verify
from course_utils.loo import loo
from conftest import machine_seconds, needs_data

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "exercises" / "source" / "trolley"
IDS = [f"p{i}" for i in range(12)]


def posterior(rng, n_chain=2, n_draw=500, shift=0.0, with_id=True, terms=S.COEFFICIENTS, gaussian=False):
    """A cumulative-logit posterior shaped like Bambi's (iid draws around fixed values)."""
    def draws(mean, sd, *shape):
        return mean + sd * rng.standard_normal((n_chain, n_draw, *shape))

    data = {}
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw)}
    if gaussian:
        data["Intercept"] = (("chain", "draw"), draws(4.0, 0.05))
        data["sigma"] = (("chain", "draw"), draws(1.5, 0.02))
    else:
        cut = np.sort(draws(0, 0.03, 6) + np.linspace(-2.5, 2.0, 6), axis=-1)
        data["threshold"] = (("chain", "draw", "threshold_dim"), cut)
        coords["threshold_dim"] = np.arange(6)
    for k, term in enumerate(terms):
        data[term] = (("chain", "draw"), draws(-0.7 - 0.2 * k + (shift if term == "action" else 0), 0.04))
    if with_id:
        data["1|id"] = (("chain", "draw", "id__factor_dim"), draws(0, 0.05, len(IDS)) + np.linspace(-1, 1, len(IDS)))
        data["1|id_sigma"] = (("chain", "draw"), draws(0.7, 0.05))
        coords["id__factor_dim"] = IDS
    return xr.Dataset(data, coords=coords)


def ratings(rng, n=240):
    rows = pd.DataFrame({
        "id": np.repeat(IDS, n // len(IDS)),
        "action": rng.integers(0, 2, n), "intention": rng.integers(0, 2, n), "contact": rng.integers(0, 2, n),
    })
    rows["response"] = rng.integers(1, 8, n)
    return rows


# ------------------------------------------------------------------ the rule and the summaries

def test_rule_allows_z_combined_mcse_plus_floor():
    allowed = C.Z * math.hypot(0.01, 0.02) + 0.01
    assert C.agrees(1.0 + allowed * 0.999, 0.01, 1.0, 0.02, 0.01)
    assert not C.agrees(1.0 + allowed * 1.001, 0.01, 1.0, 0.02, 0.01)
    assert not C.agrees(float("nan"), 0.01, 1.0, 0.02, 0.01)
    assert not C.agrees(1.0, float("inf"), 1.0, 0.02, 0.01)


def test_mean_and_sd_mcse_match_iid_theory(rng):
    x = rng.standard_normal((4, 5000))
    _, mcse = S.mean_mcse(x)
    assert mcse == pytest.approx(1 / math.sqrt(x.size), rel=0.1)
    assert S.mcse_sd(x) == pytest.approx(1 / math.sqrt(2 * x.size), rel=0.1)


def test_category_probabilities_sum_to_one_and_match_the_cdf():
    tau = np.array([-1.0, 0.0, 1.5])[None, None, :]
    eta = np.array([0.3])[None, None, :]
    probs = S.category_probabilities(tau, eta)[0, 0, 0]
    assert probs.sum() == pytest.approx(1)
    assert probs[0] == pytest.approx(expit(-1.3))
    assert probs[-1] == pytest.approx(1 - expit(1.2))


def test_log_lik_is_the_log_of_the_observed_category_probability(rng):
    post, data = posterior(rng, n_draw=20), ratings(rng)
    ll = S.cumulative_log_lik(post, data, chunk=50)
    alpha = S._intercepts_for(post, data["id"])
    probs = S.category_probabilities(S.draws_matrix(post, "threshold"), S.linear_predictor(post, data, alpha))
    expected = np.log(np.take_along_axis(probs, data["response"].to_numpy()[None, None, :, None] - 1, -1)[..., 0])
    np.testing.assert_allclose(ll, expected, rtol=1e-10)


def test_loo_stats_equals_course_loo_and_reports_mcse(rng):
    post, data = posterior(rng), ratings(rng)
    ll = S.cumulative_log_lik(post, data)
    result, mcse = S.loo_stats(ll, post)
    idata = xr.DataTree.from_dict({"posterior": post, "log_likelihood": xr.Dataset({"response": (("chain", "draw", "obs"), ll)})})
    assert result.elpd_loo == pytest.approx(loo(idata).elpd_loo, rel=1e-9)
    assert 0 < mcse < 1


def test_prediction_stats_groups_by_keys(rng):
    frame = pd.DataFrame({"k": np.repeat(["a", "b"], 200), ".chain": np.tile(np.repeat([1, 2], 100), 2),
                          ".draw": np.tile(np.arange(200), 2), ".epred": rng.uniform(size=400)})
    stats = S.prediction_stats(frame, ["k"])
    assert list(stats["k"]) == ["a", "b"] and (stats["n_draws"] == 200).all()
    assert stats["mean"].iloc[0] == pytest.approx(frame[".epred"][:200].mean())


# ------------------------------------------------------------------ payload integrity

def _cell(grade_id, text):
    cell = nbformat.v4.new_code_cell("")
    cell.metadata["nbgrader"] = {"grade_id": grade_id}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return cell


def _exported(tmp_path, monkeypatch, capsys, **namespace):
    monkeypatch.setenv("AUTOGRADER_PAYLOAD_DIR", str(tmp_path / "payload"))
    export_table("comparison", namespace, "comparison")
    return capsys.readouterr().out


def _notebook(tmp_path, cells):
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return [path]


def test_payload_accepted_only_from_its_own_test_cell(tmp_path, monkeypatch, capsys):
    table = pd.DataFrame({"elpd_loo": [-1.0, -2.0]}, index=["a", "b"])
    line = _exported(tmp_path, monkeypatch, capsys, comparison=table)
    assert line.startswith(f"{MARKER} comparison ")
    folder = tmp_path / "payload"
    expected = {"comparison": "ex1_loo"}
    assert verify(_notebook(tmp_path, [_cell("ex1_loo", line)]), folder, expected)["comparison"].ok
    elsewhere = verify(_notebook(tmp_path, [_cell(None, line)]), folder, expected)["comparison"]
    assert elsewhere.status == "tampered" and "outside its test cell" in elsewhere.reason
    twice = verify(_notebook(tmp_path, [_cell("ex1_loo", line), _cell(None, line)]), folder, expected)
    assert twice["comparison"].status == "tampered"
    (folder / "comparison.table.json").write_text('{"index": [], "columns": {}}')
    changed = verify(_notebook(tmp_path, [_cell("ex1_loo", line)]), folder, expected)["comparison"]
    assert changed.status == "tampered" and "changed after" in changed.reason
    assert verify(_notebook(tmp_path, [_cell("ex1_loo", "nothing")]), folder, expected)["comparison"].status == "missing"


def test_unusable_object_is_recorded_not_raised(tmp_path, monkeypatch, capsys):
    line = _exported(tmp_path, monkeypatch, capsys, comparison=[1, 2, 3])
    item = verify(_notebook(tmp_path, [_cell("ex1_loo", line)]), tmp_path / "payload", {"comparison": "ex1_loo"})
    assert item["comparison"].status == "error" and "should be a table" in item["comparison"].reason


# ------------------------------------------------------------------ checks and their feedback

def _reference_for(post, data):
    result, mcse = S.loo_stats(S.cumulative_log_lik(post, data), post)
    model = {"parameters": S.parameter_stats(post),
             "loo": {"elpd_loo": result.elpd_loo, "se_elpd_loo": result.se_elpd_loo, "mcse_elpd_loo": mcse}}
    return {"models": {"m_simple": model, "m_varying": model}}


def _fit(tmp_path, monkeypatch, capsys, post, name="m_varying"):
    monkeypatch.setenv("AUTOGRADER_PAYLOAD_DIR", str(tmp_path / "payload"))
    export_fit(name, {"idata": xr.DataTree.from_dict({"posterior": post})}, "idata")
    line = capsys.readouterr().out
    cell = C.ITEMS[name]
    item = verify(_notebook(tmp_path, [_cell(cell, line)]), tmp_path / "payload", {name: cell})[name]
    return C.load_fit(item, name)


def _model(tmp_path, monkeypatch, capsys, post, trusted=None, name="m_varying"):
    """A model whose draws are ``post`` and whose trusted refit is ``trusted`` (default: the same draws)."""
    mine = _fit(tmp_path, monkeypatch, capsys, post, name)
    return C.Model(name, mine, C._fit_of(post if trusted is None else trusted, None, None, name))


def test_the_same_posterior_passes_every_parameter_check(rng, tmp_path, monkeypatch, capsys):
    post = posterior(rng)
    reference = _reference_for(post, ratings(rng))
    other = posterior(np.random.default_rng(99))
    results = C.check_varying(_model(tmp_path, monkeypatch, capsys, other, posterior(np.random.default_rng(7))), reference)
    assert [r.score for r in results] == [r.points for r in results], [r.message for r in results]


def test_a_moved_coefficient_is_named(rng, tmp_path, monkeypatch, capsys):
    reference = _reference_for(posterior(rng), ratings(rng))
    results = C.check_varying(_model(tmp_path, monkeypatch, capsys, posterior(rng, shift=0.3)), reference)
    coefficients = results[1]
    assert coefficients.score == 0 and "the coefficient of action" in coefficients.message
    assert results[0].score == results[0].points  # cutpoints unaffected


@pytest.mark.parametrize("kwargs, check, words", [
    (dict(gaussian=True), 0, "gaussian family"),
    (dict(with_id=False), 2, "no sd(id)"),
    (dict(terms=("action", "intention")), 1, "has no coefficient for contact"),
    (dict(n_draw=100), 0, "posterior draws; keep the settings in SAMPLING"),
])
def test_common_mistakes_get_actionable_messages(rng, tmp_path, monkeypatch, capsys, kwargs, check, words):
    reference = _reference_for(posterior(rng), ratings(rng))
    results = C.check_varying(_model(tmp_path, monkeypatch, capsys, posterior(rng, **kwargs)), reference)
    assert results[check].score == 0 and words in results[check].message, results[check].message


def test_tiny_sd_id_asks_about_the_varying_intercept(rng, tmp_path, monkeypatch, capsys):
    reference = _reference_for(posterior(rng), ratings(rng))
    small = posterior(rng)
    small["1|id_sigma"] = small["1|id_sigma"] * 0 + 0.02 + 0.001 * rng.standard_normal(small["1|id_sigma"].shape)
    sd = C.check_varying(_model(tmp_path, monkeypatch, capsys, small), reference)[2]
    assert sd.score == 0 and "your sd(id) is 0.02" in sd.message and "varying intercepts per participant" in sd.message


def _draws_item(tmp_path, monkeypatch, capsys, frame, name="pred_average"):
    monkeypatch.setenv("AUTOGRADER_PAYLOAD_DIR", str(tmp_path / "payload"))
    export_draws(name, {"frame": frame}, "frame")
    line = capsys.readouterr().out
    return verify(_notebook(tmp_path, [_cell(C.ITEMS[name], line)]), tmp_path / "payload", {name: C.ITEMS[name]})[name]


def _epred_frame(rng, n_draws=1000, value=".epred"):
    rows = pd.DataFrame({"action": [0, 1], "intention": [0, 0], "contact": [0, 0]})
    probs = rng.dirichlet(np.ones(7), size=(n_draws, len(rows)))
    frame = rows.loc[np.repeat(np.arange(len(rows)), n_draws * 7)].reset_index(drop=True)
    frame[".category"] = np.tile(np.repeat(np.arange(1, 8), n_draws), len(rows))
    frame[value] = probs.transpose(1, 2, 0).reshape(-1)
    frame[".chain"] = np.tile(np.repeat([1, 2], n_draws // 2), len(rows) * 7)
    frame[".draw"] = np.tile(np.arange(1, n_draws + 1), len(rows) * 7)
    return frame


def test_prediction_scale_mistakes(rng, tmp_path, monkeypatch, capsys):
    linpred = _epred_frame(rng, value=".linpred")
    _, message = C._load_draws(_draws_item(tmp_path, monkeypatch, capsys, linpred), "pred_average", False)
    assert "linear predictor on the logit scale" in message
    logits = _epred_frame(rng)
    logits[".epred"] = np.log(logits[".epred"] / (1 - logits[".epred"]))
    _, message = C._load_draws(_draws_item(tmp_path, monkeypatch, capsys, logits), "pred_average", False)
    assert "outside 0 to 1" in message
    partial = _epred_frame(rng)
    partial = partial[partial[".category"] < 7]
    _, message = C._load_draws(_draws_item(tmp_path, monkeypatch, capsys, partial), "pred_average", False)
    assert "do not sum to 1" in message
    few = _epred_frame(rng, n_draws=200)
    _, message = C._load_draws(_draws_item(tmp_path, monkeypatch, capsys, few), "pred_average", False)
    assert "draws per prediction" in message
    frame, message = C._load_draws(_draws_item(tmp_path, monkeypatch, capsys, _epred_frame(rng)), "pred_average", False)
    assert message == "" and len(frame) == 2 * 7 * 1000


def test_model_predict_results_are_exported_with_their_rows(rng, tmp_path, monkeypatch, capsys):
    rows = pd.DataFrame({"action": [0, 1], "intention": [0, 0], "contact": [0, 0]})
    p = rng.dirichlet(np.ones(7), size=(2, 500, len(rows)))
    predicted = xr.DataTree.from_dict({"posterior": xr.Dataset(
        {"p": (("chain", "draw", "__obs__", "response_dim"), p)},
        coords={"response_dim": [str(k) for k in range(1, 8)]})})
    monkeypatch.setenv("AUTOGRADER_PAYLOAD_DIR", str(tmp_path / "payload"))
    export_draws("pred_average", {"pred": predicted, "stories": rows}, "pred", rows="stories")
    line = capsys.readouterr().out
    item = verify(_notebook(tmp_path, [_cell("ex2_average", line)]), tmp_path / "payload",
                  {"pred_average": "ex2_average"})["pred_average"]
    frame, message = C._load_draws(item, "pred_average", False)
    assert message == ""
    second = frame[(frame["action"] == 1) & (frame[".chain"] == 2) & (frame[".iteration"] == 7)]
    np.testing.assert_allclose(second.sort_values(".category")[".epred"], p[1, 6, 1])
    export_draws("pred_average", {"pred": predicted}, "pred", rows="stories")
    line = capsys.readouterr().out
    item = verify(_notebook(tmp_path, [_cell("ex2_average", line)]), tmp_path / "payload",
                  {"pred_average": "ex2_average"})["pred_average"]
    assert item.status == "error" and "a DataFrame named stories" in item.reason


def test_loo_check_reads_az_compare_as_printed_by_default(rng, tmp_path, monkeypatch, capsys):
    """az.compare's table (elpd and dse, rounded to the standard error by default) earns the
    check; the same table with elpd_diff's sign flipped is named."""
    import arviz as az

    data = ratings(rng, n=600)
    posts = {"m_simple": posterior(rng, with_id=False), "m_varying": posterior(rng)}
    trees, reference, loos = {}, {"models": {}}, {}
    for name, post in posts.items():
        log_lik = S.cumulative_log_lik(post, data)
        trees[name] = xr.DataTree.from_dict({"posterior": post, "log_likelihood": xr.Dataset(
            {"response": (("chain", "draw", "__obs__"), log_lik)})})
        loos[name] = S.loo_stats(log_lik, post)
        reference["models"][name] = {"loo": {"elpd_loo": loos[name][0].elpd_loo, "se_elpd_loo": 1.0,
                                             "mcse_elpd_loo": loos[name][1]}}
    diff = loos["m_simple"][0].elpd_loo - loos["m_varying"][0].elpd_loo
    reference["comparison"] = {"elpd_diff": diff, "se_diff": 1.0,
                               "mcse_elpd_diff": math.hypot(loos["m_simple"][1], loos["m_varying"][1])}
    simple, varying = (_model(tmp_path, monkeypatch, capsys, post, name=name) for name, post in posts.items())
    table = az.compare(trees)
    assert {"elpd", "elpd_diff", "dse"} <= set(table.columns)

    def graded(comparison):
        line = _exported(tmp_path, monkeypatch, capsys, comparison=comparison)
        item = verify(_notebook(tmp_path, [_cell("ex1_loo", line)]), tmp_path / "payload",
                      {"comparison": "ex1_loo"})["comparison"]
        return C.check_loo(simple, varying, item, reference, data)

    result = graded(table)
    assert result.score == result.points, result.message
    result = graded(table.assign(elpd_diff=-table["elpd_diff"]))
    assert result.score == 0 and "sign of your elpd_diff is flipped" in result.message


# ------------------------------------------------------------------ limits

def test_run_limited_stops_time_and_memory_hogs(tmp_path):
    from autograder.runner import run_limited

    env = dict(os.environ)
    log = tmp_path / "log"
    status, seconds, _ = run_limited([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path, env=env,
                                     log=log, seconds=1, memory=2**34)
    assert status == "timeout" and seconds < 10
    hog = "import numpy as np\nx = []\nwhile True: x.append(np.ones(10_000_000))"
    status, _, peak = run_limited([sys.executable, "-c", hog], cwd=tmp_path, env=env, log=log, seconds=60,
                                  memory=500 * 2**20)
    assert status == "memory" and peak > 500 * 2**20
    assert run_limited([sys.executable, "-c", "pass"], cwd=tmp_path, env=env, log=log, seconds=60, memory=2**34)[0] == "ok"
    assert run_limited([sys.executable, "-c", "raise SystemExit(3)"], cwd=tmp_path, env=env, log=log, seconds=60,
                       memory=2**34)[0] == "failed"


def test_memory_written_to_a_sandboxs_shm_or_tmp_is_counted(tmp_path):
    """Files in the sandbox's /dev/shm and /tmp hold memory that no process's resident
    size shows: the runner adds them, so hoarding there is stopped at the memory limit."""
    from autograder import sandbox
    from autograder.runner import run_limited

    folder = tmp_path / "box"
    folder.mkdir()
    for place in ("/dev/shm", "/tmp"):
        hoard = (f"import time\nwith open('{place}/hoard', 'wb') as fh:\n"
                 "    for _ in range(600):\n        fh.write(b'x' * 2**20); fh.flush()\n"
                 "time.sleep(60)\n")
        cmd = sandbox.command([sys.executable, "-c", hoard], folder=folder, code=ROOT)
        status, seconds, peak = run_limited(cmd, cwd=tmp_path, env=dict(os.environ), log=tmp_path / "log",
                                            seconds=machine_seconds(50), memory=400 * 2**20)
        assert status == "memory" and peak > 400 * 2**20, (place, status, peak)
    # Nothing written: nothing counted but the process (not the machine's own /tmp or /dev/shm).
    cmd = sandbox.command([sys.executable, "-c", "import time; time.sleep(3)"], folder=folder, code=ROOT)
    status, _, peak = run_limited(cmd, cwd=tmp_path, env=dict(os.environ), log=tmp_path / "log",
                                  seconds=machine_seconds(50), memory=400 * 2**20)
    assert status == "ok" and peak < 200 * 2**20, (status, peak)


def test_run_limited_stops_when_asked(tmp_path):
    from autograder.runner import STOP_POLL_SECONDS, run_limited

    asked = []

    def stop():
        asked.append(time.monotonic())
        return len(asked) >= 2

    status, seconds, _ = run_limited([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path,
                                     env=dict(os.environ), log=tmp_path / "log", seconds=60, memory=2**34, stop=stop)
    assert status == "stopped" and len(asked) == 2
    assert 2 * STOP_POLL_SECONDS <= seconds < 4 * STOP_POLL_SECONDS + 5  # asked every STOP_POLL_SECONDS, not more


def test_a_killed_grading_process_takes_its_run_along(tmp_path):
    """A Dask worker killed mid-run: the process it started (nbgrader, in a session of its
    own) dies with it instead of running on."""
    pid_file = tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    parent = ("import sys; from pathlib import Path; from autograder.runner import run_limited; "
              f"run_limited([sys.executable, '-c', {child!r}], cwd=Path({str(tmp_path)!r}), env={{}}, "
              f"log=Path({str(tmp_path / 'log')!r}), seconds=120, memory=2**34)")
    worker = subprocess.Popen([sys.executable, "-c", parent], cwd=ROOT)
    started = time.monotonic() + machine_seconds(20)  # (importing the grader takes a while on a busy machine)
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < started:
        time.sleep(0.1)
    grandchild = int(pid_file.read_text())
    worker.kill()
    worker.wait()
    gone = time.monotonic() + machine_seconds(5)
    while time.monotonic() < gone:
        if not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    else:
        os.kill(grandchild, 9)
        raise AssertionError("the process started by the killed worker kept running")


def test_prepare_copies_only_the_assignments_notebooks(tmp_path):
    from autograder.runner import prepare

    course = tmp_path / "course"
    shutil.copytree(ROOT / "exercises" / "source", course / "source")
    shutil.copy2(ROOT / "exercises" / "nbgrader_config.py", course)
    (course / "gradebook.db").write_bytes(b"")
    submission = tmp_path / "sub"
    submission.mkdir()
    shutil.copy2(SOURCE / "1-varying-intercepts.ipynb", submission)
    (submission / "2-predictions.ipynb").write_text("{not json")
    (submission / "autograder").mkdir()
    (submission / "autograder" / "export.py").write_text("print('fake')")
    problems, n = prepare(course, "trolley", "s", submission, tmp_path / "work", course / "gradebook.db")
    copied = sorted(p.name for p in (tmp_path / "work" / "submitted" / "s" / "trolley").iterdir())
    assert copied == ["1-varying-intercepts.ipynb"] and n == 1  # the readable sibling is still graded
    assert problems == ["2-predictions.ipynb is not a readable Jupyter notebook (NotJSONError), so it was not graded"]


# ------------------------------------------------------------------ the exercises and the gradebook

def _source_cells():
    cells = {}
    for path in sorted(SOURCE.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.metadata.get("nbgrader")
            if meta:
                cells[meta["grade_id"]] = (path.stem, meta, cell.source)
    return cells


def test_exercise_points_and_cells_match_the_checks():
    cells = _source_cells()
    graded = {gid: meta["points"] for gid, (_, meta, _) in cells.items() if meta.get("grade")}
    assert graded == C.CHECKS
    for item, cell in C.ITEMS.items():
        assert f'"{item}"' in cells[cell][2], (item, cell)
    for check, answer in C.COMMENT_CELL.items():
        assert cells[answer][1]["solution"] and cells[answer][0] == C.NOTEBOOK_OF[check]


def test_course_id_matches_nbgrader_config():
    from autograder.grade import COURSE_ID

    assert f'course_id = "{COURSE_ID}"' in (ROOT / "exercises" / "nbgrader_config.py").read_text()


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    from autograder.release import release_course

    return release_course(tmp_path_factory.mktemp("course"))


def test_student_version_has_no_solutions_hidden_tests_or_reference(released):
    reference = json.loads((ROOT / "autograder" / "reference" / "trolley.json").read_text())
    numbers = {f"{reference['models']['m_varying']['parameters'][p]['mean']:.2f}" for p in
               ("b_action", "b_contact", "sd_id__Intercept")}
    for path in (released / "release" / "trolley").glob("*.ipynb"):
        text = path.read_text()
        for forbidden in ("BEGIN SOLUTION", "HIDDEN TESTS", "autograder.export", "export_fit", "loo_compare({",
                          "clusters=\"new\", seed", *numbers):
            assert forbidden not in text, (path.name, forbidden)
        assert "raise NotImplementedError()" in text
        assert "from autograder.selfcheck import check_my_work" in text  # the one grader import students get


def test_record_updates_in_place_with_scores_and_comments(released):
    from nbgrader.api import Gradebook

    from autograder.grade import COURSE_ID, _db_url, record
    from autograder.runner import Outcome

    checks = [{"check": c, "points": p, "score": p if c.startswith("ex1") else 0.0, "message": f"note on {c}"}
              for c, p in C.CHECKS.items()]
    outcome = Outcome("dana", "graded", checks=checks)
    assert record(released, "trolley", outcome) == 10
    outcome.checks[0] = {**checks[0], "score": 0.0, "message": "changed"}
    assert record(released, "trolley", outcome) == 8
    with Gradebook(_db_url(released), course_id=COURSE_ID) as gb:
        assert len(gb.find_assignment("trolley").submissions) == 1
        grade = gb.find_grade("ex1_m_simple", "1-varying-intercepts", "trolley", "dana")
        assert grade.score == 0 and grade.auto_score == 0
        comment = gb.find_comment("ex1_m_varying_answer", "1-varying-intercepts", "trolley", "dana")
        assert "note on ex1_m_varying_cutpoints" in comment.comment and "note on ex1_m_varying_sd" in comment.comment


def test_a_submission_the_grader_keeps_failing_on_is_graded_the_third_time(released, tmp_path):
    """Bounded retry: the same submission needing a retry run after run is recorded the
    third time (0, with a reason), a stopped run does not count, and a changed submission
    starts again."""
    from autograder.cluster import Graded
    from autograder.grade import MAX_RETRIES, _record_result
    from autograder.runner import STOPPED, Outcome

    states, lines = {}, []

    def run(detail="nbgrader autograde failed (failed): a kernel the grader could not start", fingerprint="f1"):
        previous = json.loads((tmp_path / "erin.json").read_text()) if (tmp_path / "erin.json").exists() else {}
        retries = previous.get("retries", 0) if previous.get("fingerprint") == fingerprint else 0
        outcome = Outcome("erin", "retry", reason="the grader could not finish grading it", detail=detail)
        _record_result(released, "trolley", "erin", (fingerprint, retries), "", Graded(outcome), states, tmp_path,
                       1, lines.append)
        return states["erin"]

    assert MAX_RETRIES == 3
    assert [run()["outcome"]["status"], run(STOPPED)["outcome"]["status"], run()["outcome"]["status"]] == ["retry"] * 3
    assert states["erin"]["retries"] == 2  # the stopped run did not count
    last = run()
    assert last["outcome"]["status"] == "ungradable" and last["score"] == 0 and last["retries"] == 0
    assert "could not grade this submission in 3 runs" in last["outcome"]["reason"]
    assert "a kernel the grader could not start" in last["outcome"]["detail"]  # the instructor's reason
    assert run(fingerprint="f2")["outcome"]["status"] == "retry"  # changed: it starts again


def test_reference_file_is_small_and_documented():
    from course_utils.data import DATASETS

    path = ROOT / "autograder" / "reference" / "trolley.json"
    assert path.stat().st_size < 5_000_000
    reference = json.loads(path.read_text())
    provenance = reference["provenance"]
    assert provenance["data"]["trolley.csv"] == DATASETS["trolley"].sha256
    assert provenance["fits"]["m_varying"]["seed"] == 71 and provenance["fits"]["m_varying"]["sampler"] == "nutpie"
    assert {"bambi", "pymc", "arviz"} <= provenance["libraries"].keys()
    assert len(reference["predictions"]["participants"]) == 331 * 6 * 7
    assert set(reference["predictions"]["new"]) == {"gaussian", "uncertainty"}


@pytest.mark.slow
@needs_data
def test_committed_reference_agrees_with_a_fresh_fit():
    """A dependency upgrade that moves the posterior makes this fail (the fits' cache
    key includes the library versions, so an upgrade refits)."""
    from autograder.reference import build, compare_references, load_reference

    assert compare_references(build(), load_reference()) == []


def test_the_reference_is_never_built_from_a_fit_that_did_not_converge(rng, monkeypatch, capsys):
    from autograder import __main__ as cli
    from autograder import reference
    from conftest import bambi_like_idata

    stuck = bambi_like_idata(rng)
    stuck.posterior["x"][0] += 1.0  # chain 1 elsewhere
    stuck["sample_stats"] = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((4, 500), dtype=bool))})
    monkeypatch.setattr(reference, "fit_model", lambda name, data, **options: (None, stuck))
    monkeypatch.setattr(reference, "trolley_data", pd.DataFrame)
    monkeypatch.setattr(reference, "save", lambda *args: pytest.fail("a reference was written"))
    with pytest.raises(AssertionError, match=r"the reference's m_simple: Rhat above 1.01 for \['b_x'\]"):
        reference.fit_reference(pd.DataFrame())
    assert cli.main(["reference"]) == 1
    assert "The reference posterior was not built: the reference's m_simple: Rhat above 1.01" in capsys.readouterr().out


def test_student_view_keeps_messages_and_hides_hidden_tests():
    from autograder.grade import student_view

    cell = nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS\nexport_fit(...)\n### END HIDDEN TESTS\nassert False, 'why'")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "ex1_m_simple"}
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"{MARKER} m_simple {'0' * 64}\nm_simple: structure OK\n"),
        nbformat.v4.new_output("error", ename="AssertionError", evalue="why",
                               traceback=["----", "1 ### BEGIN HIDDEN TESTS", "2 export_fit(...)"]),
    ]
    mine = nbformat.v4.new_code_cell("1/0")
    mine.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                           traceback=["frame 1", "frame 2"])]
    nb = student_view(nbformat.v4.new_notebook(cells=[cell, mine]))
    test_out, error = nb.cells[0].outputs
    assert test_out["text"] == "m_simple: structure OK\n"
    assert error["traceback"] == ["AssertionError: why"]
    assert nb.cells[1].outputs[0]["traceback"] == ["frame 1", "frame 2"]  # the student's own cells keep theirs


@needs_data
def test_check_my_work_prints_the_graders_verdict_for_this_notebook(rng, capsys, monkeypatch):
    from autograder.selfcheck import check_my_work

    monkeypatch.delenv("AUTOGRADER_PAYLOAD_DIR", raising=False)
    namespace = {"m_simple_idata": xr.DataTree.from_dict({"posterior": posterior(rng, with_id=False)}), "m_simple": None}
    results = check_my_work(namespace)
    out = capsys.readouterr().out
    assert [r.check for r in results] == [c for c in C.CHECKS if c.startswith("ex1")]
    assert "What the grader would say about 1-varying-intercepts (0 of 10 points)" in out
    assert "✗ ex1_m_simple (0/2): In m_simple, the posterior mean of cutpoint 1" in out  # made-up draws, far off
    assert "there is no m_varying_idata in this notebook yet" in out
    monkeypatch.setenv("AUTOGRADER_PAYLOAD_DIR", "/nowhere")  # while grading: nothing
    assert check_my_work(namespace) == [] and "does nothing while grading" in capsys.readouterr().out
