"""What makes a grade trustworthy, on small inputs: the sandbox, the model specification
the grader refits, the checks that the student's draws and predictions come from it,
the installed read-only grader, and the preflight."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import bambi as bmb
import numpy as np
import pandas as pd
import psutil
import pytest
import xarray as xr

from autograder import checks as C
from autograder import sandbox
from autograder import spec as SP
from autograder import summaries as S
from autograder.limits import Limits
from conftest import machine_seconds

ROOT = Path(__file__).resolve().parent.parent
needs_bwrap = pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap is not installed (make test installs it)")


# ------------------------------------------------------------------ the model specification

def _ratings(rng, n=120):
    data = pd.DataFrame({"id": np.repeat([f"p{i}" for i in range(6)], n // 6),
                         "action": rng.integers(0, 2, n), "intention": rng.integers(0, 2, n)})
    data["response"] = pd.Categorical(rng.integers(1, 8, n), categories=range(1, 8), ordered=True)
    return data


def _model(data, sigma=0.5, formula="response ~ action + intention + (1 | id)"):
    return bmb.Model(formula, data, family="cumulative", noncentered=False,
                     priors={"action": bmb.Prior("Normal", mu=0, sigma=sigma),
                             "1|id": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1))})


def test_specification_round_trips_and_names_the_model_not_the_seed(rng):
    data = _ratings(rng)
    model = _model(data)
    spec, recorded = SP.describe(model), SP.describe_data(model)
    assert SP.validate(spec, recorded) == ""
    assert spec["family"] == "cumulative" and spec["link"] == "logit" and spec["noncentered"] is False
    assert spec["priors"]["action"] == {"prior": "Normal", "args": {"mu": 0.0, "sigma": 0.5}}
    assert spec["priors"]["1|id"]["args"]["sigma"] == {"prior": "Exponential", "args": {"lam": 1.0}}
    assert "intention" in spec["priors"]  # Bambi's automatic prior, recorded as the numbers it chose
    # Rebuilt from JSON alone, the model is the same model.
    rebuilt = bmb.Model(spec["formula"], SP.read_data(json.loads(json.dumps(recorded))), family=spec["family"],
                        link=spec["link"], priors=SP.build_priors(json.loads(json.dumps(spec))),
                        noncentered=spec["noncentered"])
    again = SP.describe(rebuilt)
    assert {k: again[k] for k in ("formula", "family", "link", "noncentered", "priors")} == \
        {k: spec[k] for k in ("formula", "family", "link", "noncentered", "priors")}
    settings = {"draws": 500}
    key = SP.key(spec, recorded, settings)
    assert SP.key({**spec, "sampler": {"seed": 1, "chains": 4}}, recorded, settings) == key
    assert SP.key(SP.describe(_model(data, sigma=1.0)), recorded, settings) != key
    changed = json.loads(json.dumps(recorded))
    changed["columns"]["response"]["values"][0] = 7 if changed["columns"]["response"]["values"][0] != 7 else 6
    assert SP.key(spec, changed, settings) != key


def test_specification_of_draws_read_back_from_netcdf_is_plain_json(rng, tmp_path):
    """A fit saved with to_netcdf and read back (how a Model.fit user hands it from one
    notebook to the next) carries NumPy scalars in its attributes."""
    posterior = xr.Dataset({"action": (("chain", "draw"), rng.normal(size=(2, 10)))},
                           attrs={"tuning_steps": 1000, "inference_library": "nutpie"})
    xr.DataTree.from_dict({"posterior": posterior}).to_netcdf(tmp_path / "fit.nc", engine="h5netcdf")
    read = xr.open_datatree(tmp_path / "fit.nc", engine="h5netcdf")
    assert isinstance(read.posterior.attrs["tuning_steps"], np.integer)
    spec = json.loads(json.dumps(SP.describe(_model(_ratings(rng)), read)))
    assert spec["sampler"] == {"via": "Model.fit", "chains": 2, "draws": 10, "tune": 1000, "sampler": "nutpie",
                               "seed": None}


@pytest.mark.parametrize("change, words", [
    ({"formula": "response ~ action + I(__import__('os').system('touch x'))"}, "calls a function"),
    ({"formula": "response ~ action + os"}, "not a column"),
    ({"formula": "response ~ action; import os"}, "uses"),
    ({"family": "evil"}, "not one of Bambi's built-in families"),
    ({"link": "__import__"}, "not one of Bambi's built-in links"),
    ({"priors": {"action": {"prior": "__class__", "args": {}}}}, "not a PyMC distribution"),
    ({"priors": {"action": {"prior": "Normal", "args": {"mu": "os.system"}}}}, "not a number"),
    ({"additional_formulas": ["sigma ~ action"]}, "one formula only"),
])
def test_validation_refuses_what_could_run_code_or_cannot_be_rebuilt(rng, change, words):
    model = _model(_ratings(rng))
    spec, data = {**SP.describe(model), **change}, SP.describe_data(model)
    assert words in SP.validate(spec, data)


def test_validation_refuses_data_that_are_not_plain_values(rng):
    model = _model(_ratings(rng))
    spec, data = SP.describe(model), SP.describe_data(model)
    data["columns"]["action"]["values"][0] = {"__reduce__": "os.system"}
    assert "not plain numbers" in SP.validate(spec, data)


def test_an_invalid_specification_is_the_students_problem_and_fits_nothing(rng, tmp_path):
    from autograder import trusted

    model = _model(_ratings(rng))
    spec = {**SP.describe(model), "formula": "response ~ eval(x)"}
    fitted = trusted.fit(spec, SP.describe_data(model), tmp_path, code=ROOT, memory_bytes=2**30, seconds=600)
    assert fitted.posterior is None and not fitted.grader_error and "could not be refitted" in fitted.problem
    assert not list(tmp_path.glob("*.nc"))


# ------------------------------------------------------------------ the student's draws against the trusted fit

def _correlated(rng, n_chain=2, n_draw=500, ids=("a", "b", "c")):
    """A posterior whose cutpoints move together with a common shift (as Trolley's do)."""
    shift = rng.normal(0, 0.08, (n_chain, n_draw))
    cut = np.linspace(-2.5, 2.0, 6) + shift[..., None] + rng.normal(0, 0.02, (n_chain, n_draw, 6))
    data = {"threshold": (("chain", "draw", "threshold_dim"), cut)}
    for k, term in enumerate(S.COEFFICIENTS):
        data[term] = (("chain", "draw"), -0.7 - 0.2 * k + 0.5 * shift + rng.normal(0, 0.03, (n_chain, n_draw)))
    data["1|id"] = (("chain", "draw", "id__factor_dim"), rng.normal(0, 0.05, (n_chain, n_draw, len(ids))) + np.linspace(-1, 1, len(ids)))
    data["1|id_sigma"] = (("chain", "draw"), rng.normal(0.9, 0.05, (n_chain, n_draw)))
    return xr.Dataset(data, coords={"threshold_dim": np.arange(6), "id__factor_dim": list(ids)})


def _fabricated(rng, like: xr.Dataset) -> xr.Dataset:
    """Normal draws around each parameter's mean and sd, independently: made up, not sampled."""
    out = like.copy(deep=True)
    for name in out.data_vars:
        values = out[name].values
        mean, sd = values.mean(axis=(0, 1)), values.std(axis=(0, 1))
        out[name].values = mean + sd * rng.standard_normal(values.shape)
    return out


def _as_model(mine: xr.Dataset, trusted: xr.Dataset) -> C.Model:
    return C.Model("m_varying", C._fit_of(mine, None, None, "m_varying"), C._fit_of(trusted, None, None, "m_varying"))


def test_draws_from_the_same_model_pass_and_made_up_draws_do_not(rng):
    trusted = _correlated(rng)
    assert C.draws_problem(_as_model(_correlated(np.random.default_rng(3)), trusted)) == ""
    made_up = _fabricated(rng, _correlated(np.random.default_rng(4)))
    problem = C.draws_problem(_as_model(made_up, trusted))
    assert "do not come from the model you wrote" in problem and "correlation of cutpoint" in problem
    moved = _correlated(np.random.default_rng(5))
    moved["action"] = moved["action"] + 0.3
    assert "the posterior mean of the coefficient of action" in C.draws_problem(_as_model(moved, trusted))
    few = _correlated(np.random.default_rng(6), n_draw=100)
    assert "posterior draws; keep the settings in SAMPLING" in C.draws_problem(_as_model(few, trusted))


def test_predictions_must_come_from_the_students_own_draws(rng):
    post = _correlated(rng)
    rows = pd.DataFrame({"id": ["a", "a", "c"], "action": [0, 1, 1], "intention": [0, 0, 1], "contact": [0, 1, 0]})
    probs = C._probabilities(post, rows, True)  # (chain, draw, row, category)
    n_chain, n_draw, n_row, n_cat = probs.shape
    c, d, r, k = np.meshgrid(*map(np.arange, probs.shape), indexing="ij")
    frame = rows.iloc[r.ravel()].reset_index(drop=True)
    frame[".chain"], frame[".iteration"], frame[".category"] = c.ravel() + 1, d.ravel() + 1, k.ravel() + 1
    frame[".epred"] = probs.ravel()
    keys = ["id", *S.STORY_COLUMNS]
    assert C._provenance_problem(frame, post, keys, "pred_participants") == ""
    other = C._probabilities(_correlated(np.random.default_rng(9)), rows, True)
    frame[".epred"] = other.ravel()  # the same model's predictions, but not from these draws
    assert "was not computed from your m_varying's draws" in C._provenance_problem(frame, post, keys, "pred_participants")


# ------------------------------------------------------------------ the grader's own fits must converge

def _sampler(monkeypatch, outcomes: list[str]):
    """Stand in for the sandboxed process that samples a trusted fit: attempt by attempt,
    it writes what ``outcomes`` says ("good", "stuck": one chain elsewhere, "divergent",
    or "timeout"). Returns the command lines it was given."""
    from autograder import runner

    calls = []

    def fake(argv, *, cwd, env, log, seconds, memory, disk=None, stop=None):
        outcome = outcomes[len(calls)]
        calls.append(" ".join(argv))
        if outcome == "timeout":
            return "timeout", seconds, 0
        posterior = _correlated(np.random.default_rng(len(calls)), n_chain=2, n_draw=500)
        if outcome == "stuck":  # chain 1 never left its starting region
            posterior["threshold"][0] = posterior["threshold"][0] + 0.8
        posterior.attrs = {"modeling_interface": "bambi", "divergent": 3 if outcome == "divergent" else 0}
        posterior.to_netcdf(Path(cwd) / "posterior.nc", engine="h5netcdf")
        (Path(cwd) / "result.json").write_text(json.dumps({"status": "ok"}))
        return "ok", 1.0, 0

    monkeypatch.setattr(runner, "run_limited", fake)
    return calls


def _trusted_fit(rng, cache):
    from autograder import trusted

    model = _model(_ratings(rng))
    spec, data = SP.describe(model), SP.describe_data(model)
    name = SP.key(spec, data, trusted.settings())
    return name, lambda: trusted.fit(spec, data, cache, code=ROOT, memory_bytes=2**30, seconds=600,
                                     sandboxed=False)


def test_a_trusted_fit_with_a_stuck_chain_is_made_again_with_another_seed(rng, tmp_path, monkeypatch):
    from autograder import trusted

    calls = _sampler(monkeypatch, ["stuck", "good"])
    name, fit = _trusted_fit(rng, tmp_path)
    fitted = fit()
    assert not fitted.grader_error and not fitted.problem and len(calls) == 2
    assert f"main({str(tmp_path / 'work' / name)!r}, 0)" in calls[0] and calls[1].endswith(", 1)")
    first, second = fitted.diagnostics
    assert first["max_rhat"] > 1.1 and "Rhat above 1.01" in " ".join(first["problems"])
    assert second["max_rhat"] <= 1.01 and second["problems"] == [] and second["seed"] != first["seed"]
    assert second["seed"] == trusted.seed(name, 1)
    kept = xr.open_dataset(fitted.posterior, engine="h5netcdf")
    assert abs(float(kept["threshold"][0].mean() - kept["threshold"][1].mean())) < 0.05  # not the stuck draws
    again = fit()  # from the cache: the converged fit, and no more sampling
    assert again.reused and again.posterior == fitted.posterior and len(calls) == 2


def _recorded_spec(rng, tmp_path: Path) -> tuple[Path, list[Path]]:
    """A payload with m_simple's specification, as its test cell recorded it: (the
    payload folder in a sandbox's folder, [the autograded notebook with the digest line])."""
    import nbformat

    from autograder.export import MARKER, digest

    payload = tmp_path / "sandbox" / "payload"
    payload.mkdir(parents=True)
    model = _model(_ratings(rng))
    (payload / "m_simple.spec.json").write_text(json.dumps(SP.describe(model)))
    (payload / "m_simple.data.json").write_text(json.dumps(SP.describe_data(model)))
    cell = nbformat.v4.new_code_cell("")
    cell.metadata["nbgrader"] = {"grade_id": C.ITEMS["m_simple"], "grade": True}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text=f"{MARKER} m_simple {digest(payload, 'm_simple')}\n")]
    notebook = tmp_path / "autograded.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), notebook)
    return payload, [notebook]


def test_only_a_specification_its_test_cell_recorded_is_refitted(rng, tmp_path, monkeypatch):
    """Verify, then fit: a specification written after its test cell ran, or never
    recorded by it, costs the grader no fit."""
    from autograder import runner

    calls = _sampler(monkeypatch, ["good"] * 3)
    payload, notebooks = _recorded_spec(rng, tmp_path)
    setup = runner.Setup(code=ROOT, reference=ROOT, data_dir=None, trusted_cache=tmp_path / "trusted",
                         sandboxed=False, limits=Limits(fit_seconds=600))
    spec = json.loads((payload / "m_simple.spec.json").read_text())
    (payload / "m_simple.spec.json").write_text(json.dumps({**spec, "formula": "response ~ action + (1 | id)"}))
    records, error = runner._trusted_fits(payload, setup, runner.Outcome("ann", "retry"), notebooks)
    assert not error and not calls
    assert records["m_simple"] == {"posterior": None,
                                   "problem": "the files for m_simple were changed after its test cell ran"}
    assert "did not run to the export" in records["m_varying"]["problem"]  # never recorded: no fit either


def test_a_submissions_refits_share_its_time_for_refits(rng, tmp_path, monkeypatch):
    """Each fit is made or waited for within what is left of the submission's time for
    refits (one fit's limit per graded model); a model asked for after it is spent is not
    refitted, and says why."""
    from autograder import runner, trusted

    payload, notebooks = _recorded_spec(rng, tmp_path)
    limits = Limits(fit_seconds=0.2)
    budget = runner.refit_budget(limits)
    assert budget == pytest.approx(len(C.MODEL_ITEMS) * 0.2)
    asked = []

    def slow_fit(spec, data, cache, *, seconds, wait, **kwargs):  # the cluster's or this machine's: it waits
        asked.append((seconds, wait))
        time.sleep(wait + 0.05)  # used all that was left
        return trusted.TrustedFit("k", problem=trusted.out_of_budget(wait), seconds=wait)

    setup = runner.Setup(code=ROOT, reference=ROOT, data_dir=None, trusted_cache=tmp_path / "trusted",
                         sandboxed=False, limits=limits, fit=slow_fit)
    records, error = runner._trusted_fits(payload, setup, runner.Outcome("ann", "retry"), notebooks)
    assert not error and len(asked) == 1  # m_simple's (the only one its test cell recorded)
    assert asked[0][0] == 0.2 and 0 < asked[0][1] <= budget  # per seed the fit's limit; in all the budget
    assert records["m_simple"]["problem"].startswith("refitting your model took longer than what was left")
    for name in ("m_varying", "m_varying_2"):  # recorded too: now there is no time left for them
        shutil.copy(payload / "m_simple.spec.json", payload / f"{name}.spec.json")
        shutil.copy(payload / "m_simple.data.json", payload / f"{name}.data.json")
    from autograder import payload as P

    monkeypatch.setattr(P, "verify", lambda *args: {item: P.Item(item, "ok") for item in C.MODEL_ITEMS})
    asked.clear()
    records, error = runner._trusted_fits(payload, setup, runner.Outcome("ann", "retry"), notebooks)
    assert not error and len(asked) == 1  # the first used the whole budget: the others were not asked for
    for name in ("m_varying", "m_varying_2"):
        assert records[name] == {"posterior": None, "problem": "it was not refitted: refitting this submission's "
                                 f"other models took all of its time for refits ({budget:.0f} s)"}


def test_on_the_cluster_a_submission_waits_for_a_shared_fit_within_its_budget(rng, tmp_path, monkeypatch):
    """The fit is the class's: made within its own limit, whoever asked. A submission whose
    time for refits runs out while it waits gets the budget's problem; the fit goes on,
    and the next request gets it."""
    from types import SimpleNamespace

    from distributed import Client, LocalCluster

    from autograder import cluster, trusted

    model = _model(_ratings(rng))
    spec, data = SP.describe(model), SP.describe_data(model)
    name = SP.key(spec, data, trusted.settings())
    made = tmp_path / "made"  # (Dask copies the function, and a list it holds, to run it)

    def slow_fit_task(bundle, spec, data, seconds):
        with open(made, "a") as fh:
            fh.write(f"{seconds}\n")
        time.sleep(2)
        return {"key": name, "problem": "the model's own problem, for the test"}, None

    monkeypatch.setattr(cluster, "_fit_task", slow_fit_task)  # workers are threads here: the patch holds
    bundle = SimpleNamespace(stop_event="grading-stop-test")
    kwargs = {"code": ROOT, "memory_bytes": 2**30, "seconds": 50.0, "sandboxed": False}
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as local, \
            Client(local) as client:
        impatient = client.submit(cluster.shared_fit, bundle, spec, data, tmp_path, wait=0.5, **kwargs).result()
        patient = client.submit(cluster.shared_fit, bundle, spec, data, tmp_path, **kwargs, pure=False).result()
    assert impatient.problem == trusted.out_of_budget(0.5) and not impatient.grader_error
    assert patient.problem == "the model's own problem, for the test"
    assert made.read_text().split() == ["50.0"]  # made once, with the fit's own limit, not the first asker's budget


def test_the_seeds_of_one_fit_stop_at_the_submissions_budget(rng, tmp_path, monkeypatch):
    """A stuck first seed uses the time; the second gets only what is left, and when that
    runs out no third is tried; the fit is not kept (another run may have more)."""
    from autograder import runner, trusted

    given = []

    def timing_out(argv, *, cwd, env, log, seconds, memory, disk=None, stop=None):
        given.append(seconds)
        time.sleep(seconds)
        return "timeout", seconds, 0

    monkeypatch.setattr(runner, "run_limited", timing_out)
    monkeypatch.setenv("PYTENSOR_COMPILEDIR_BASE", str(tmp_path / "no-compile-cache"))  # nothing to copy first
    model = _model(_ratings(rng))
    spec, data = SP.describe(model), SP.describe_data(model)
    cache = tmp_path / "trusted"
    fitted = trusted.fit(spec, data, cache, code=ROOT, memory_bytes=2**30, seconds=1.0, sandboxed=False, wait=1.6)
    assert len(given) == 2 and given[0] == 1.0 and 0 < given[1] < 0.61  # the first seed's limit; what was left
    assert fitted.problem.startswith("refitting your model took longer than what was left of this submission's time")
    assert not list(cache.glob("*.json"))
    given.clear()
    fitted = trusted.fit(spec, data, cache, code=ROOT, memory_bytes=2**30, seconds=0.3, sandboxed=False, wait=5)
    assert given == [0.3, 0.3]  # a budget with room: every seed gets its own limit, as without one
    assert fitted.problem.startswith(trusted.TIMED_OUT) and "what was left" not in fitted.problem


@pytest.mark.parametrize("attempts, words", [(["stuck", "stuck"], "Rhat above 1.01"),
                                             (["divergent", "divergent"], "3 divergent transition(s)"),
                                             (["stuck", "timeout"], "Rhat above 1.01")])
def test_a_trusted_fit_that_never_converges_is_the_graders_failure_and_never_kept(rng, tmp_path, monkeypatch,
                                                                                   attempts, words):
    from autograder import runner, trusted

    calls = _sampler(monkeypatch, [*attempts, "good"])
    name, fit = _trusted_fit(rng, tmp_path)
    fitted = fit()
    assert fitted.posterior is None and not fitted.problem and len(calls) == trusted.ATTEMPTS
    assert f"did not converge with {trusted.ATTEMPTS} seeds" in fitted.grader_error and words in fitted.grader_error
    assert not list(tmp_path.glob(f"{name}.*n*"))  # neither its draws nor a record of it
    # No student is graded against it: the submission that asked for it is retried.
    payload, notebooks = _recorded_spec(rng, tmp_path)
    _sampler(monkeypatch, attempts)
    setup = runner.Setup(code=ROOT, reference=ROOT, data_dir=None, trusted_cache=tmp_path / "trusted",
                         sandboxed=False, limits=Limits(fit_seconds=600))
    outcome = runner.Outcome("ann", "retry")
    records, error = runner._trusted_fits(payload, setup, outcome, notebooks)
    assert "the trusted fit of m_simple failed" in error and words in error
    assert "m_simple" not in records
    # The next run tries again, and a converged fit is used and kept.
    _sampler(monkeypatch, ["good"])
    assert fit().posterior is not None and (tmp_path / f"{name}.nc").is_file()


def test_a_trusted_fit_out_of_time_with_every_seed_is_the_students_slow_model(rng, tmp_path, monkeypatch):
    from autograder import trusted

    calls = _sampler(monkeypatch, ["timeout"] * trusted.ATTEMPTS)
    name, fit = _trusted_fit(rng, tmp_path)
    fitted = fit()
    assert len(calls) == trusted.ATTEMPTS and not fitted.grader_error
    assert fitted.problem.startswith("refitting your model took longer than 600 s")
    assert not (tmp_path / f"{name}.json").exists()  # a busier run may manage it
    # A chain stuck long enough to run out of time is a seed's bad luck: the next seed is used.
    _sampler(monkeypatch, ["timeout", "good"])
    fitted = fit()
    assert fitted.posterior is not None and fitted.problem == "" and not fitted.grader_error


# ------------------------------------------------------------------ the sandbox and the limits

@needs_bwrap
def test_sandbox_holds(tmp_path):
    code = tmp_path / "code"
    shutil.copytree(ROOT / "autograder", code / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "course_utils", code / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    assert sandbox.probe(tmp_path / "probe", code) == ""
    secret = tmp_path / "gradebook.db"
    secret.write_text("scores")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    script = (
        "import os, socket, subprocess, sys\n"
        f"for path in ({str(secret)!r}, {str(ROOT / 'exercises' / 'source')!r}, '/root/.ssh', {str(code / 'autograder' / 'checks.py')!r}):\n"
        "    try:\n"
        "        open(path, 'a').write('#')\n"
        "        print('WROTE', path)\n"
        "    except OSError as e:\n"
        "        print('refused', path, type(e).__name__)\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('CONNECTED')\n"
        "except OSError:\n"
        "    print('no network')\n"
        "open('mine.txt', 'w').write('ok')\n"
        # A daemon that would outlive the run and rewrite the gradebook later.
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30); open(\"late.txt\", \"w\").write(\"x\")'],"
        " start_new_session=True)\n"
        "print('done')\n"
    )
    folder = tmp_path / "student"
    folder.mkdir()
    done = subprocess.run(sandbox.command([sys.executable, "-c", script], folder=folder, code=code),
                          capture_output=True, text=True, timeout=machine_seconds(60))
    assert "done" in done.stdout, done.stderr
    # The code is read-only and the rest is not there (a write under /tmp lands in the sandbox's own /tmp).
    assert f"refused {code / 'autograder' / 'checks.py'} " in done.stdout and "WROTE /root" not in done.stdout
    assert "CONNECTED" not in done.stdout and "no network" in done.stdout
    assert secret.read_text() == "scores" and (folder / "mine.txt").read_text() == "ok"
    assert (code / "autograder" / "checks.py").read_bytes() == (ROOT / "autograder" / "checks.py").read_bytes()
    with pytest.raises(socket.timeout):
        listener.accept()
    time.sleep(1)
    strays = [p for p in psutil.process_iter(["cmdline"]) if "late.txt" in " ".join(p.info["cmdline"] or [])]
    assert not strays  # the sandbox's PID namespace died with its first process


def test_limits_hold_for_a_child_in_its_own_session(tmp_path):
    """A memory bomb in a child process that left the process group is still counted and killed."""
    from autograder.runner import run_limited

    bomb = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import numpy as np\\nx=[]\\nwhile True: x.append(np.ones(10_000_000))'],"
            " start_new_session=True)\n"
            "time.sleep(60)\n")
    status, _, peak = run_limited([sys.executable, "-c", bomb], cwd=tmp_path, env=dict(os.environ),
                                  log=tmp_path / "log", seconds=60, memory=400 * 2**20)
    assert status == "memory" and peak > 400 * 2**20
    time.sleep(0.5)
    assert not [p for p in psutil.process_iter(["cmdline"]) if "np.ones(10_000_000)" in " ".join(p.info["cmdline"] or [])]


def test_disk_limit(tmp_path):
    from autograder.runner import run_limited

    fill = "import time\nwith open('big', 'wb') as f:\n    for _ in range(400):\n        f.write(b'x' * 1_000_000); f.flush(); time.sleep(0.05)\n"
    status, _, _ = run_limited([sys.executable, "-c", fill], cwd=tmp_path, env=dict(os.environ), log=tmp_path / "log",
                               seconds=60, memory=2**34, disk=(tmp_path, 50_000_000))
    assert status == "disk"


# ------------------------------------------------------------------ the installed grader and the preflight

def test_installed_copy_is_read_only_and_changes_are_noticed(tmp_path):
    from autograder import install

    target = install.install(tmp_path / "grader")
    assert install.verify(target) and (target / "autograder" / "checks.py").is_file()
    assert not os.access(target / "autograder" / "checks.py", os.W_OK) or os.geteuid() == 0
    assert oct((target / "autograder" / "checks.py").stat().st_mode & 0o777) == "0o444"
    assert install.install(tmp_path / "grader") == target  # made once
    path = target / "autograder" / "checks.py"
    path.chmod(0o644)
    path.write_text(path.read_text() + "\nagrees = lambda *a, **k: True\n")
    assert not install.verify(target)


def test_preflight_refuses_a_reference_built_from_other_data(tmp_path):
    from autograder.preflight import PreflightError, check_reference

    reference = json.loads((ROOT / "autograder" / "reference" / "trolley.json").read_text())
    reference["provenance"]["data"]["trolley.csv"] = "0" * 64
    path = tmp_path / "trolley.json"
    path.write_text(json.dumps(reference))
    with pytest.raises(PreflightError, match="built from other data"):
        check_reference(path)
    del reference["predictions"]["average"]
    reference["provenance"]["data"]["trolley.csv"] = json.loads(
        (ROOT / "autograder" / "reference" / "trolley.json").read_text())["provenance"]["data"]["trolley.csv"]
    path.write_text(json.dumps(reference))
    with pytest.raises(PreflightError, match="incomplete"):
        check_reference(path)


def test_preflight_refuses_when_the_data_cannot_be_loaded(tmp_path, monkeypatch):
    from autograder.preflight import PreflightError, check_data

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PreflightError, match="course data could not be loaded"):
        check_data()
