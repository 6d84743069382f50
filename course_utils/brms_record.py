"""brms's own output for the lecture's models, as ``make parity`` recorded it.

The chapters show, beside each Python step, what brms printed for the same step: the
brms lens for readers with the R lecture open. ``parity/fit_brms.R`` fits the lecture's
models in R and writes ``parity/brms_results.json``; this module reads that file back
into brms's layouts. No library reads it: it is the course's own record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from .summary import BrmsSummary, _blocked

__all__ = ["PARITY_FILE", "recorded_loo", "recorded_loo_compare", "recorded_summary"]

#: Written by ``make parity`` (``parity/fit_brms.R``).
PARITY_FILE = Path(__file__).resolve().parents[1] / "parity" / "brms_results.json"

_FIELDS = {"estimate": "Estimate", "est_error": "Est.Error", "l95": "l-95% CI", "u95": "u-95% CI",
           "rhat": "Rhat", "ess_bulk": "Bulk_ESS", "ess_tail": "Tail_ESS"}
_LOO = ["elpd_loo", "se_elpd_loo", "p_loo", "se_p_loo", "looic", "se_looic"]


def _read(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())


def recorded_summary(model: str, *, rows: list[str] | None = None,
                     path: str | os.PathLike = PARITY_FILE) -> BrmsSummary:
    """brms's ``summary()`` of one of the lecture's models (``"m1"``, ..., ``"m_varying"``).

    ``rows``: only these parameters (brms's names), e.g. to shorten a model with one
    coefficient per person. The table also holds ``MCSE``, the Monte Carlo standard
    error of each posterior mean (brms does not print it; the posterior package computed it).
    """
    record = _read(path)["models"][model]
    fields = {**_FIELDS, "mcse_mean": "MCSE"}
    table = pd.DataFrame({name: {fields[f]: row[f] for f in fields}
                          for name, row in record["parameters"].items()}).T.astype(float)
    if rows is not None:
        table = table.loc[rows]
    draws = record["chains"] * (record["iter"] - record["warmup"])
    header = [
        f" Family: {record['family']}",
        f"Formula: {record['formula']}",
        f"   Data: {record['nobs']} observations",
        f"  Draws: {record['chains']} chains, each with iter = {record['iter']}; warmup = {record['warmup']}; thin = 1;",
        f"         total post-warmup draws = {draws}",
    ]
    return BrmsSummary(header=header, table=_blocked(table), levels=record.get("levels", {}))


def recorded_loo(model: str, path: str | os.PathLike = PARITY_FILE) -> dict:
    """brms's PSIS-LOO of one model: ``elpd_loo``, ``p_loo``, ``looic``, their standard
    errors, and ``pareto_k`` (counts of ``good``, ``bad`` and ``very_bad`` and the ``max``)."""
    return _read(path)["models"][model]["loo"]


def recorded_loo_compare(comparison: str, path: str | os.PathLike = PARITY_FILE) -> pd.DataFrame:
    """brms's ``loo_compare(..., simplify = FALSE)`` table for one of the lecture's two
    comparisons, ``"mlm"`` (m1, m2) or ``"trolley"`` (m_simple, m_varying)."""
    recorded = _read(path)
    rows = recorded["loo_compare"][comparison]["rows"]
    return pd.DataFrame({
        name: {"elpd_diff": row["elpd_diff"], "se_diff": row["se_diff"],
               **{c: recorded["models"][name]["loo"][c] for c in _LOO}}
        for name, row in rows.items()
    }).T
