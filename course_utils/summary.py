"""A model summary laid out like brms's ``summary()``: header, then blocks of parameters.

Columns: Estimate (posterior mean), Est.Error (posterior sd), l-95% CI and u-95% CI
(2.5% and 97.5% quantiles), Rhat, Bulk_ESS and Tail_ESS (rank-normalised split-Rhat and
ESS, as brms and ArviZ compute them). Blocks: multilevel hyperparameters (one per
grouping factor), regression coefficients, further distributional parameters.

Example (not run here: it needs a fit)::

    print(brms_summary(m2_idata))
    #  Family: gaussian
    #   Links: mu = identity; sigma = identity
    # Formula: con ~ 1 + (1 | id)
    #    Data: 225 observations
    #   Draws: 4 chains, each with iter = 2000; warmup = 1000; thin = 1;
    #          total post-warmup draws = 4000
    # ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from .fitting import fit_spec
from .names import brms_draws, parameter_class, parse_brms_name

__all__ = ["BrmsSummary", "brms_summary", "posterior_summary"]

COLUMNS = ["Estimate", "Est.Error", "l-95% CI", "u-95% CI", "Rhat", "Bulk_ESS", "Tail_ESS"]


def _statistics(columns: dict[str, np.ndarray], prob: float = 0.95, mcse: bool = False) -> pd.DataFrame:
    """Estimate, error, interval, Rhat and ESS (and MCSE) for each ``(chain, draw)`` array."""
    dataset = az.convert_to_dataset(columns)
    rhat = az.rhat(dataset)
    bulk = az.ess(dataset, method="bulk")
    tail = az.ess(dataset, method="tail")
    rows = {}
    for name, values in columns.items():
        flat = values.reshape(-1)
        lo, hi = np.quantile(flat, [(1 - prob) / 2, (1 + prob) / 2])
        rows[name] = [
            flat.mean(), flat.std(ddof=1), lo, hi,
            float(rhat[name]), float(bulk[name]), float(tail[name]),
        ]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)
    if mcse:
        errors = az.mcse(dataset, method="mean")
        table["MCSE"] = [float(errors[name]) for name in table.index]
    return table


def posterior_summary(idata: xr.DataTree, prob: float = 0.95, mcse: bool = False) -> pd.DataFrame:
    """Every parameter (brms names, varying effects included) with the summary columns.

    Like brms's ``posterior_summary()`` with Rhat and ESS added; ``mcse=True`` adds the
    Monte Carlo standard error of each posterior mean (column ``MCSE``).
    """
    return _statistics(brms_draws(idata), prob, mcse)


@dataclass
class BrmsSummary:
    """A brms-style summary. ``str()`` prints it as brms does; ``table`` has every row.

    ``table`` is indexed by brms parameter name, with columns :data:`COLUMNS` plus
    ``block`` (``"sd"``, ``"cor"``, ``"b"`` or ``"dpar"``), ``group`` (the grouping factor
    of a hyperparameter) and ``label`` (the row label brms prints).
    """

    header: list[str]
    table: pd.DataFrame
    levels: dict[str, int] = field(default_factory=dict)

    def block(self, kind: str, group: str | None = None) -> pd.DataFrame:
        """The rows of one block, labelled as brms labels them."""
        rows = self.table[self.table["block"] == kind]
        if group is not None:
            rows = rows[rows["group"] == group]
        return rows.set_index("label").rename_axis(None)[COLUMNS]

    def _blocks(self):
        groups = list(dict.fromkeys(self.table.loc[self.table["block"].isin(["sd", "cor"]), "group"]))
        if groups:
            yield "Multilevel Hyperparameters:", [
                (f"~{g} (Number of levels: {self.levels[g]})" if g in self.levels else f"~{g}",
                 pd.concat([self.block("sd", g), self.block("cor", g)])) for g in groups
            ]
        for kind, title in (("b", "Regression Coefficients:"), ("dpar", "Further Distributional Parameters:")):
            if (self.table["block"] == kind).any():
                yield title, [(None, self.block(kind))]

    @staticmethod
    def _format(frame: pd.DataFrame) -> pd.DataFrame:
        shown = frame.copy().astype(object)
        for col in COLUMNS[:4]:
            shown[col] = frame[col].map(lambda v: f"{v:.2f}")
        shown["Rhat"] = frame["Rhat"].map(lambda v: f"{v:.2f}")
        for col in ("Bulk_ESS", "Tail_ESS"):
            shown[col] = frame[col].map(lambda v: f"{v:.0f}")
        return shown

    def __str__(self) -> str:
        lines = list(self.header)
        for title, parts in self._blocks():
            lines += ["", title]
            for subtitle, frame in parts:
                if subtitle:
                    lines.append(subtitle)
                lines.append(self._format(frame).to_string())
        lines += [
            "",
            "Bulk_ESS and Tail_ESS are effective sample sizes; Rhat is the potential scale",
            "reduction factor on split chains (at convergence, Rhat = 1).",
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        html = ["<pre>" + "\n".join(self.header) + "</pre>"]
        for title, parts in self._blocks():
            html.append(f"<p><strong>{title}</strong></p>")
            for subtitle, frame in parts:
                if subtitle:
                    html.append(f"<p><code>{subtitle}</code></p>")
                html.append(self._format(frame).to_html())
        return "\n".join(html)

    __repr__ = __str__


def _label(name: str) -> tuple[str, str | None]:
    """The row label brms prints and the grouping factor, for a brms-named parameter."""
    parsed = parse_brms_name(name)
    if parsed["class"] in ("sd", "cor") and "group" in parsed:
        return f"{parsed['class']}({parsed['term']})", parsed["group"]
    if parsed["class"] == "b":
        return name[len("b_"):], None
    return name, None


def brms_summary(idata: xr.DataTree, prob: float = 0.95) -> BrmsSummary:
    """Summarise a fit as brms's ``summary()`` does.

    Works on any posterior whose parameters :mod:`course_utils.names` can name: Bambi fits
    and hand-written models that use brms's names. The header comes from what
    :func:`course_utils.fitting.fit` stored with the fit (formula, family, data
    size, draws); a posterior without it gets the draws line only.
    """
    columns = brms_draws(idata)
    levels: dict[str, set] = {}
    for name in columns:
        parsed = parse_brms_name(name)
        if parsed["class"] == "r" and "level" in parsed:
            levels.setdefault(parsed["group"], set()).add(parsed["level"])

    kept = {n: v for n, v in columns.items() if parameter_class(n) != "r"}
    table = _blocked(_statistics(kept, prob))

    posterior = idata.posterior.to_dataset()
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    spec = fit_spec(idata)
    header = []
    if spec:
        links = "; ".join(f"{k} = {v}" for k, v in spec.get("links", {}).items())
        header += [
            f" Family: {spec['family']}",
            f"  Links: {links}",
            f"Formula: {spec['formula']}",
            f"   Data: {spec['nobs']} observations",
        ]
    tune = spec.get("tune", posterior.attrs.get("tuning_steps", 0))
    header += [
        f"  Draws: {n_chain} chains, each with iter = {int(tune) + n_draw}; warmup = {tune}; thin = 1;",
        f"         total post-warmup draws = {n_chain * n_draw}",
    ]
    return BrmsSummary(header=header, table=table, levels={g: len(v) for g, v in levels.items()})


def _blocked(table: pd.DataFrame) -> pd.DataFrame:
    """Add the columns :class:`BrmsSummary` lays its blocks out by."""
    labels = [_label(n) for n in table.index]
    return table.assign(block=[parameter_class(n) for n in table.index], label=[lab for lab, _ in labels],
                        group=[grp for _, grp in labels])

