"""Progress of long fits: shown in the terminal, never in the notebook (and so the book)."""

from __future__ import annotations

import io
import os
import re
import sys
from types import SimpleNamespace

import nbformat
import numpy as np
import pymc as pm
import pytest
from nbclient import NotebookClient


from course_utils import progress
from course_utils.cache import cached_idata
from course_utils.progress import FitProgress, _terminal, hooks, reporting

from conftest import machine_seconds


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_status_line_counts_chains_and_estimates_time_left():
    clock, out = Clock(), io.StringIO()
    fit = FitProgress("m2", out, clock=clock, log_interval=10)
    fit.begin("PyMC", 2, 100, 100)
    assert out.getvalue() == "[m2] fitting with PyMC: 2 chains x (100 warm-up + 100 draws)\n"
    clock.now += 10  # compiling and starting the chains
    fit.advance(0)
    assert fit.line() == "[m2] 0% | chain 1 1/200 | chain 2 0/200 | 0:10 elapsed, time left: estimating"
    clock.now += 20
    fit.advance(0, 150)
    fit.advance(1, 50)
    # 199 iterations in the 20 s since the first: 200 more take about 20 s.
    assert fit.line() == "[m2] 50% | chain 1 150/200 | chain 2 50/200 | 0:30 elapsed, ~0:20 left"
    clock.now += 12
    fit.end(ok=True)
    assert out.getvalue().splitlines()[-1] == "[m2] done in 0:42"


def test_log_gets_a_line_per_interval_not_per_draw():
    clock, out = Clock(), io.StringIO()
    fit = FitProgress("m1", out, clock=clock, log_interval=10)
    fit.begin("PyMC", 1, 500, 500)
    for i in range(1000):
        clock.now += 0.05  # 50 s in all
        fit.advance(0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 5, lines  # the header, then one line at 0, 10, 20, 30 and 40 s
    assert re.fullmatch(r"\[m1\] 80% \| chain 1 80\d/1000 \| 0:40 elapsed, ~0:10 left", lines[-1]), lines[-1]


def test_a_terminal_gets_one_line_rewritten_in_place():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    clock, out = Clock(), Tty()
    fit = FitProgress("m3", out, clock=clock, interval=0.5)
    fit.begin("nutpie", 2, 10, 10)
    fit.nutpie_callback([SimpleNamespace(finished_draws=12), SimpleNamespace(finished_draws=8)])
    clock.now += 1
    fit.end(ok=False)
    text = out.getvalue()
    assert text.count("\n") == 2  # the header and the final line; progress overwrote itself
    assert "\r\033[K[m3] 50% | chain 1 12/20 | chain 2 8/20 | 0:00 elapsed, time left: estimating" in text
    assert text.endswith("\r\033[K[m3] failed after 0:01\n")


def test_switched_off_or_sent_to_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv(progress.ENV_PROGRESS, "off")
    assert _terminal() is None
    log = tmp_path / "progress.log"
    monkeypatch.setenv(progress.ENV_PROGRESS, str(log))
    with reporting("toy") as fit:
        fit.begin("PyMC", 1, 1, 1)
    assert log.read_text().splitlines()[0] == "[toy] fitting with PyMC: 1 chains x (1 warm-up + 1 draws)"
    assert log.read_text().splitlines()[-1].startswith("[toy] done in ")


def test_a_kernel_without_its_terminal_reports_nothing(monkeypatch):
    """Under pytest ipykernel keeps no copy of the terminal: report nothing rather than
    write into the notebook."""

    class OutStream(io.StringIO):
        __module__ = "ipykernel.iostream"

        def fileno(self):
            raise io.UnsupportedOperation("fileno")

    monkeypatch.delenv(progress.ENV_PROGRESS, raising=False)
    monkeypatch.setattr(sys, "stderr", OutStream())
    assert _terminal() is None
    with reporting("quiet") as fit:
        assert fit is None
    assert sys.stderr.getvalue() == ""


def test_in_a_jupyter_kernel_progress_reaches_the_terminal_not_the_notebook(capfd):
    """The chapters run in a kernel: what ``reporting`` writes must go to the terminal the
    kernel was started from (here pytest's captured standard error), not into a cell's
    output, which would end up in the HTML."""
    code = (
        "from course_utils.progress import reporting\n"
        "with reporting('demo') as fit:\n"
        "    fit.begin('PyMC', 2, 5, 5)\n"
        "    for i in range(10):\n"
        "        fit.advance(0)\n"
        "print('cell ran')\n"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", progress.ENV_PROGRESS)}
    NotebookClient(nb, timeout=round(machine_seconds(120)), kernel_name="python3").execute(env=env)
    outputs = nb.cells[0].outputs
    assert [o.get("text") for o in outputs] == ["cell ran\n"], outputs
    err = capfd.readouterr().err
    assert "[demo] fitting with PyMC: 2 chains x (5 warm-up + 5 draws)" in err
    assert re.search(r"\[demo\] done in 0:\d\d\n", err), err


def _tiny_model():
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 1)
        pm.Normal("y", mu, 1, observed=np.array([0.3, -0.2, 0.9, 0.4]))
    return model


def test_pymc_fit_reports_every_chain_and_keeps_its_draws(tmp_path, monkeypatch):
    log = tmp_path / "progress.log"
    monkeypatch.setenv(progress.ENV_PROGRESS, str(log))
    monkeypatch.setattr(FitProgress, "__init__", _every_update(FitProgress.__init__))

    def sample():
        with _tiny_model():
            return pm.sample(draws=30, tune=20, chains=2, cores=1, random_seed=7, progressbar=False,
                             compute_convergence_checks=False, nuts_sampler="pymc",
                             **hooks("pymc", chains=2, tune=20, draws=30))

    idata = cached_idata("tiny_progress", {"seed": 7}, sample, folder=tmp_path)
    assert hooks("pymc", chains=2, tune=20, draws=30) == {}  # only while a fit is reported
    lines = log.read_text().splitlines()
    assert lines[0] == "[tiny_progress] fitting with PyMC: 2 chains x (20 warm-up + 30 draws)"
    assert "[tiny_progress] 100% | chain 1 50/50 | chain 2 50/50 |" in lines[-2]
    assert lines[-1].startswith("[tiny_progress] done in ")

    monkeypatch.setenv(progress.ENV_PROGRESS, "off")
    again = cached_idata("tiny_progress", {"seed": 7}, sample, folder=tmp_path, refit=True)
    np.testing.assert_array_equal(idata.posterior["mu"], again.posterior["mu"])  # the same draws


def test_nutpie_fit_reports_its_own_status(tmp_path, monkeypatch):
    nutpie = pytest.importorskip("nutpie")
    log = tmp_path / "progress.log"
    monkeypatch.setenv(progress.ENV_PROGRESS, str(log))
    monkeypatch.setattr(FitProgress, "__init__", _every_update(FitProgress.__init__))
    compiled = nutpie.compile_pymc_model(_tiny_model())

    def sample():
        return nutpie.sample(compiled, draws=3000, tune=3000, chains=2, cores=1, seed=7, progress_bar=False,
                             **hooks("nutpie", chains=2, tune=3000, draws=3000))

    idata = cached_idata("tiny_nutpie", {"seed": 7}, sample, folder=tmp_path)
    lines = log.read_text().splitlines()
    assert lines[0] == "[tiny_nutpie] fitting with nutpie: 2 chains x (3000 warm-up + 3000 draws)"
    assert any(line.startswith("[tiny_nutpie] 100% | chain 1 6000/6000 | chain 2 6000/6000 |")
               for line in lines), lines
    assert lines[-1].startswith("[tiny_nutpie] done in ")
    assert idata.posterior.sizes["draw"] == 3000

    monkeypatch.setenv(progress.ENV_PROGRESS, "off")
    plain = nutpie.sample(compiled, draws=3000, tune=3000, chains=2, cores=1, seed=7, progress_bar=False)
    np.testing.assert_array_equal(idata.posterior["mu"], plain.posterior["mu"])


def _every_update(init):
    """Show every update (no throttling), so a short fit's progress is all in the log."""

    def __init__(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "log_interval": 0.0, "interval": 0.0})

    return __init__
