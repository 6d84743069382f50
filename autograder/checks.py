"""The graded checks of the Trolley exercises, and the rule that compares with the reference.

The rule
--------
A student's estimate ``s`` (with Monte Carlo standard error ``mcse_s``, from their own
draws) agrees with the reference ``r`` (``mcse_r``) when

    |s - r| <= Z * sqrt(mcse_s**2 + mcse_r**2) + floor

with ``Z = 4`` and a floor per kind of quantity (:data:`FLOORS`): 0.01 on the logit scale
for cutpoints, coefficients and sd(id) (posterior means and sds), 0.005 for a
probability, 8 units of elpd. Two correct fits differ only by Monte Carlo error, so
``(s - r) / sqrt(mcse_s**2 + mcse_r**2)`` is close to standard normal; a single
comparison then fails with probability at most 2 * (1 - Phi(4)) = 6.3e-5 and a check
that compares 126 numbers at most 0.8% (less, as the floor adds room and neighbouring
categories are correlated). Measured on 20 correct submissions with different seeds
(``make bench-grading``): over 5,800 parameter and probability comparisons, z had mean
-0.01 and sd 0.98, and no |z| reached 4 (the largest was 3.6).

elpd_loo is the exception, and its floor is set from that measurement: PSIS-LOO from a
student's 1,000 draws comes out lower than from the reference's 4,000 (for m_varying by
2.2 units on average, sd 1.2, at most 4.6; importance sampling with fewer draws
underestimates each held-out density a little, and 9,930 small biases add up), which
the MCSE does not capture. A floor of 8 units covers that with room to spare and is
0.3% of the 2,876-unit gap between the two models, so a wrong model still fails.

A check passes when every number it compares agrees; its points are all or nothing,
and the points of the assignment are spread over eight checks, so a submission earns
partial credit check by check.

Trusted fits
------------
The graded numbers come from the grader's own fit of the model each student wrote
(:mod:`autograder.trusted`), never from the draws the student's kernel produced, which
their code could have made up: parameters and LOO from the trusted fit of their
specification, predictions against predictions recomputed from the trusted fit of the
``m_varying`` their second notebook used. The student's own draws still have to be
what their model gives (:func:`draws_problem`): at least :data:`MIN_DRAWS` of them with
:data:`MIN_ESS` effective draws per parameter, means and sds that agree with the trusted
fit under the rule above, and correlations between the parameters that agree too
(Fisher's z, same Z, floor :data:`CORRELATION_FLOOR`). The cutpoints of these models
are strongly correlated with each other, so draws made up from the public reference's
means and sds fail that, and earn nothing ("your draws do not come from the model you
wrote"). Predictions must be computed from the student's own draws (for a participant
in the data and for the average participant they are recomputed draw by draw), and
the LOO table the student reports must be the one their draws give.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from . import summaries as S
from .payload import Item, read_draws, read_posterior, read_table

__all__ = ["Z", "FLOORS", "CHECKS", "ITEMS", "COMMENT_CELL", "CheckResult", "agrees", "grade_items"]

Z = 4.0
FLOORS = {"parameter": 0.01, "probability": 0.005, "elpd": 8.0}
#: Fewer draws would widen the tolerance (through the MCSE) past what tells models apart:
#: the exercises sample 2 chains x 500 draws, and fits or predictions with fewer are not graded.
MIN_DRAWS = 1000
MIN_ESS = 100
#: Room for correlations between parameters (Fisher z) beyond Z combined standard errors.
CORRELATION_FLOOR = 0.15
#: A prediction recomputed from the student's own draws must equal theirs to this.
SAME_DRAW_TOLERANCE = 1e-6

#: Test cell (nbgrader grade_id) -> points. The source notebooks carry the same points.
CHECKS = {
    "ex1_m_simple": 2,
    "ex1_m_varying_cutpoints": 2,
    "ex1_m_varying_coefficients": 2,
    "ex1_m_varying_sd": 2,
    "ex1_loo": 2,
    "ex2_participants": 4,
    "ex2_average": 3,
    "ex2_new": 3,
}
#: Payload item -> the test cell whose hidden part exports it.
ITEMS = {
    "m_simple": "ex1_m_simple",
    "m_varying": "ex1_m_varying_cutpoints",
    "comparison": "ex1_loo",
    "m_varying_2": "ex2_participants",  # the m_varying of the second notebook, which the predictions use
    "pred_participants": "ex2_participants",
    "pred_average": "ex2_average",
    "pred_new": "ex2_new",
}
#: The answer (solution) cell whose comment carries each check's feedback.
COMMENT_CELL = {
    "ex1_m_simple": "ex1_m_simple_answer",
    "ex1_m_varying_cutpoints": "ex1_m_varying_answer",
    "ex1_m_varying_coefficients": "ex1_m_varying_answer",
    "ex1_m_varying_sd": "ex1_m_varying_answer",
    "ex1_loo": "ex1_loo_answer",
    "ex2_participants": "ex2_participants_answer",
    "ex2_average": "ex2_average_answer",
    "ex2_new": "ex2_new_answer",
}
#: The notebook each test cell is in.
NOTEBOOK_OF = {cell: ("1-varying-intercepts" if cell.startswith("ex1") else "2-predictions") for cell in CHECKS}
#: Payload items that hold a fitted model (posterior draws and specification).
MODEL_ITEMS = ("m_simple", "m_varying", "m_varying_2")
#: How many participants each prediction exercise asks for.
N_PARTICIPANTS = 3
N_NEW_PARTICIPANTS = 2
CUTPOINT_NAMES = [f"b_Intercept[{k}]" for k in range(1, S.N_CATEGORIES)]
COEF_NAMES = [f"b_{c}" for c in S.COEFFICIENTS]
LABELS = {**{name: f"cutpoint {k}" for k, name in enumerate(CUTPOINT_NAMES, start=1)},
          **{f"b_{c}": f"the coefficient of {c}" for c in S.COEFFICIENTS}, "sd_id__Intercept": "sd(id)"}


@dataclass
class CheckResult:
    check: str
    points: float
    score: float
    message: str
    numbers: list = field(default_factory=list)  # what was compared, for the feedback's forest plot

    def as_dict(self) -> dict:
        return asdict(self)


def agrees(s: float, mcse_s: float, r: float, mcse_r: float, floor: float, z: float = Z) -> bool:
    """The grading rule for one number (module docs)."""
    if not (np.isfinite(s) and np.isfinite(mcse_s)):
        return False
    return abs(s - r) <= z * math.hypot(mcse_s, mcse_r) + floor


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.1f}"


# ----------------------------------------------------------------------------- fits

@dataclass
class Fit:
    """One set of posterior draws of a model: the student's, or the grader's trusted fit."""

    item: Item | None
    posterior: object = None
    family: str | None = None
    terms: tuple = ()
    has_id: bool = False
    problem: str = ""  # why it cannot be graded as a cumulative model, for the student


def _fit_of(posterior, family: str | None, item: Item | None, name: str) -> Fit:
    family = family or ("cumulative" if S.CUTPOINTS in posterior else "gaussian" if "sigma" in posterior else None)
    scalar = [v for v in posterior.data_vars if set(posterior[v].dims) == {"chain", "draw"}]
    terms = tuple(sorted(v for v in scalar if not v.endswith("_sigma") and v not in ("sigma", "Intercept")))
    fit = Fit(item, posterior, family, terms, S.INTERCEPTS in posterior)
    if family != "cumulative" or S.CUTPOINTS not in posterior:
        fit.problem = (f"{name} was fitted with the {family} family and has no cutpoints; the ratings 1 to 7 are "
                       "ordered categories: use family=\"cumulative\"")
    return fit


def load_fit(item: Item, name: str) -> Fit:
    """The student's own draws of a model, from the payload."""
    if not item.ok:
        return Fit(item, problem=f"{name} could not be graded: {item.reason}")
    try:
        posterior = read_posterior(item)
    except Exception as error:
        return Fit(item, problem=f"{name}'s posterior could not be read: {error}")
    return _fit_of(posterior, item.meta.get("family"), item, name)


@dataclass
class Model:
    """A model of a submission: the student's draws, and the grader's fit of what they wrote."""

    name: str
    mine: Fit
    trusted: Fit | None = None
    problem: str = ""  # why the model cannot be graded at all (no payload, no specification, no refit)
    _draws_problem: str | None = None


def load_model(item: Item, trusted: dict | None, name: str) -> Model:
    """``trusted`` is the trusted fit's record: ``{"posterior": path or None, "problem": text}``."""
    mine = load_fit(item, name)
    if not item.ok or mine.posterior is None:
        return Model(name, mine, problem=mine.problem)
    if not trusted or not trusted.get("posterior"):
        reason = (trusted or {}).get("problem") or "no model specification was recorded with your fit"
        return Model(name, mine, problem=f"{name} could not be graded: {reason}.")
    try:
        posterior = read_trusted(trusted["posterior"])
    except Exception as error:  # the grader's own file: the runner reports this as its failure
        raise RuntimeError(f"the trusted fit of {name} could not be read: {error}") from error
    return Model(name, mine, _fit_of(posterior, trusted.get("family"), None, name))


def read_trusted(path: str):
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def _terms_problem(fit: Fit, name: str) -> str:
    wanted = set(S.COEFFICIENTS)
    missing, extra = sorted(wanted - set(fit.terms)), sorted(set(fit.terms) - wanted)
    parts = []
    if missing:
        parts.append(f"has no coefficient for {', '.join(missing)}")
    if extra:
        parts.append(f"has extra predictor(s) {', '.join(extra)}")
    if parts:
        return f"{name} {' and '.join(parts)}: the exercise asks for action, intention and contact, coded 0/1."
    return ""


def _n_draws(posterior) -> int:
    return int(posterior.sizes.get("chain", 1) * posterior.sizes.get("draw", 0))


def _too_few(fit: Fit, names: list[str], name: str, stats: dict) -> str:
    """The minimum-draws and minimum-ESS rules, for any draws a check reads."""
    n_draws = _n_draws(fit.posterior)
    if n_draws < MIN_DRAWS:
        return (f"{name} has {n_draws} posterior draws; keep the settings in SAMPLING (2 chains x 500 "
                f"draws, at least {MIN_DRAWS}) so that it can be compared with the reference.")
    slow = [f"{LABELS[p]} ({stats[p]['ess_bulk']:.0f})" for p in names if p in stats and stats[p]["ess_bulk"] < MIN_ESS]
    if slow:
        return (f"in {name}, the sampler mixed poorly: fewer than {MIN_ESS} effective draws for "
                f"{', '.join(slow)}. Use the settings the exercise gives (noncentered=False, "
                "adaptation=\"low_rank\" for m_varying).")
    return ""


def _compare_parameters(fit: Fit, reference: dict, names: list[str], name: str) -> tuple[bool, str, list]:
    """Means and sds of ``names`` against the reference; the message lists what disagrees,
    the records say what was compared (for the feedback's plot)."""
    stats = S.parameter_stats(fit.posterior)
    few = _too_few(fit, names, name, stats)
    if few:
        return False, few, []
    bad, numbers = [], []
    for p in names:
        ref = reference["parameters"][p]
        if p not in stats:
            bad.append(f"{LABELS[p]} is missing (the reference is {_fmt(ref['mean'])})")
            continue
        mine = stats[p]
        for what, mcse in (("mean", "mcse_mean"), ("sd", "mcse_sd")):
            allowed = Z * math.hypot(mine[mcse], ref[mcse]) + FLOORS["parameter"]
            ok = agrees(mine[what], mine[mcse], ref[what], ref[mcse], FLOORS["parameter"])
            numbers.append({"model": name, "label": LABELS[p], "what": what, "mine": mine[what],
                            "reference": ref[what], "allowed": allowed, "ok": ok,
                            "interval": [ref["q2.5"], ref["q97.5"]] if what == "mean" else None})
            if not ok:
                label = f"the posterior {'mean' if what == 'mean' else 'sd'} of {LABELS[p]}"
                bad.append(f"{label} is {_fmt(mine[what])}, the reference is {_fmt(ref[what])} "
                           f"(95% interval {_fmt(ref['q2.5'])} to {_fmt(ref['q97.5'])}; "
                           f"allowed difference {_fmt(allowed)})")
    if bad:
        return False, f"In {name}, " + "; ".join(bad) + ".", numbers
    return True, f"{name}: " + ", ".join(f"{LABELS[p]} {_fmt(stats[p]['mean'])}" for p in names) + \
        (" agree" if len(names) > 1 else " agrees") + " with the reference.", numbers


def _graded_names(stats: dict) -> list[str]:
    return [p for p in (*CUTPOINT_NAMES, *COEF_NAMES, "sd_id__Intercept") if p in stats]


def _correlation_problem(mine, trusted, names: list[str], mine_stats: dict, trusted_stats: dict) -> str:
    """Whether the correlations between parameters agree (Fisher z with ESS-based errors)."""
    if len(names) < 2:
        return ""
    a = np.column_stack([_param_draws(mine, p) for p in names])
    b = np.column_stack([_param_draws(trusted, p) for p in names])
    with np.errstate(invalid="ignore", divide="ignore"):
        ra, rb = np.corrcoef(a, rowvar=False), np.corrcoef(b, rowvar=False)
    worst = None
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            n_a = min(mine_stats[names[i]]["ess_bulk"], mine_stats[names[j]]["ess_bulk"])
            n_b = min(trusted_stats[names[i]]["ess_bulk"], trusted_stats[names[j]]["ess_bulk"])
            if not (np.isfinite(ra[i, j]) and np.isfinite(rb[i, j])):
                continue
            se = math.sqrt(1 / max(n_a - 3, 1) + 1 / max(n_b - 3, 1))
            gap = abs(np.arctanh(np.clip(ra[i, j], -0.999, 0.999)) - np.arctanh(np.clip(rb[i, j], -0.999, 0.999)))
            excess = gap - (Z * se + CORRELATION_FLOOR)
            if excess > 0 and (worst is None or excess > worst[0]):
                worst = (excess, names[i], names[j], ra[i, j], rb[i, j])
    if worst is None:
        return ""
    _, p, q, r_mine, r_trusted = worst
    return (f"the correlation of {LABELS[p]} and {LABELS[q]} is {r_mine:.2f} in your draws but {r_trusted:.2f} in "
            "the grader's fit of your model")


def _param_draws(posterior, p: str) -> np.ndarray:
    """A graded parameter's draws (brms name) as one flat array."""
    if p.startswith("b_Intercept["):
        return S.draws_matrix(posterior, S.CUTPOINTS)[..., int(p[len("b_Intercept["):-1]) - 1].reshape(-1)
    return S.draws_matrix(posterior, S.SD_ID if p == "sd_id__Intercept" else p[2:]).reshape(-1)


def draws_problem(model: Model) -> str:
    """'' when the student's own draws are what the model they wrote gives, else why not.

    Computed once per model: at least :data:`MIN_DRAWS` draws and :data:`MIN_ESS`
    effective draws, the same parameters as the trusted fit, means and sds that agree
    with it under the rule, and correlations between parameters that agree too.
    """
    if model._draws_problem is not None:
        return model._draws_problem
    mine, trusted = model.mine, model.trusted
    problem = ""
    if mine.posterior is None or trusted is None:
        problem = model.problem or mine.problem
    else:
        mine_stats, trusted_stats = S.parameter_stats(mine.posterior), S.parameter_stats(trusted.posterior)
        names = _graded_names(trusted_stats)
        few = _too_few(mine, _graded_names(mine_stats), model.name, mine_stats)
        differ = sorted(set(_graded_names(mine_stats)) ^ set(names))
        if few:
            problem = few
        elif differ or mine.has_id != trusted.has_id:
            problem = (f"your {model.name}'s draws do not come from the model you wrote: they have "
                       f"{'different parameters (' + ', '.join(LABELS[p] for p in differ) + ')' if differ else 'other varying intercepts'} "
                       "than the model you specified.")
        else:
            bad = []
            for p in names:
                m, t = mine_stats[p], trusted_stats[p]
                for what, mcse in (("mean", "mcse_mean"), ("sd", "mcse_sd")):
                    if not agrees(m[what], m[mcse], t[what], t[mcse], FLOORS["parameter"]):
                        bad.append(f"the posterior {what} of {LABELS[p]} is {_fmt(m[what])} in your draws but "
                                   f"{_fmt(t[what])} in the grader's fit of your model")
            correlation = _correlation_problem(mine.posterior, trusted.posterior, names, mine_stats, trusted_stats)
            bad += [correlation] if correlation else []
            if bad:
                problem = (f"your {model.name}'s draws do not come from the model you wrote: {'; '.join(bad[:3])}. "
                           "Keep the posterior exactly as fit_bambi, fit or Model.fit returns it.")
    model._draws_problem = problem
    return problem


def _result(check: str, ok: bool, message: str, numbers: list | None = None) -> CheckResult:
    points = CHECKS[check]
    return CheckResult(check, points, float(points if ok else 0), message, list(numbers or []))


def check_simple(model: Model, reference: dict) -> CheckResult:
    check = "ex1_m_simple"
    if model.problem:
        return _result(check, False, model.problem)
    fit = model.trusted
    if fit.problem:
        return _result(check, False, fit.problem)
    problem = _terms_problem(fit, "m_simple")
    if fit.has_id:
        problem += " m_simple should ignore participants: leave out (1 | id)."
    if problem:
        return _result(check, False, problem.strip())
    ok, message, numbers = _compare_parameters(fit, reference["models"]["m_simple"], CUTPOINT_NAMES + COEF_NAMES,
                                               "m_simple")
    if ok and draws_problem(model):
        return _result(check, False, draws_problem(model), numbers)
    return _result(check, ok, message, numbers)


def _varying_problem(fit: Fit) -> str:
    if fit.problem:
        return fit.problem
    problem = _terms_problem(fit, "m_varying")
    if not fit.has_id:
        problem += (" m_varying has no varying intercept per participant (no sd(id)): add (1 | id) to the formula, "
                    "so that responses are clustered within participants.")
    return problem.strip()


def check_varying(model: Model, reference: dict) -> list[CheckResult]:
    ref = reference["models"]["m_varying"]
    names = ("ex1_m_varying_cutpoints", "ex1_m_varying_coefficients", "ex1_m_varying_sd")
    if model.problem:
        return [_result(c, False, model.problem) for c in names]
    fit = model.trusted
    problem = _varying_problem(fit)
    if problem:
        results = [_result(c, False, problem) for c in names[:2]]
        sd_ref = ref["parameters"]["sd_id__Intercept"]
        if not fit.problem and not fit.has_id:
            problem = (f"your m_varying has no sd(id) (the reference is {_fmt(sd_ref['mean'])}, 95% interval "
                       f"{_fmt(sd_ref['q2.5'])} to {_fmt(sd_ref['q97.5'])}): does it have a varying intercept per "
                       "participant, (1 | id)?")
        return results + [_result(names[2], False, problem)]
    compared = [_compare_parameters(fit, ref, CUTPOINT_NAMES, "m_varying"),
                _compare_parameters(fit, ref, COEF_NAMES, "m_varying")]
    ok, message, numbers = _compare_parameters(fit, ref, ["sd_id__Intercept"], "m_varying")
    mine = S.parameter_stats(fit.posterior).get("sd_id__Intercept", {}).get("mean", float("nan"))
    if not ok and mine < 0.5 * ref["parameters"]["sd_id__Intercept"]["mean"]:
        message = (f"your sd(id) is {_fmt(mine)}, the reference is {_fmt(ref['parameters']['sd_id__Intercept']['mean'])}: "
                   "does your model have varying intercepts per participant, grouped by id? " + message)
    compared.append((ok, message, numbers))
    results = []
    for check, (ok, message, numbers) in zip(names, compared):
        if ok and draws_problem(model):
            ok, message = False, draws_problem(model)
        results.append(_result(check, ok, message, numbers))
    return results


# ----------------------------------------------------------------------------- LOO

def _loo(posterior, data: pd.DataFrame):
    return S.loo_stats(S.cumulative_log_lik(posterior, data), posterior)


def _rounding(table: pd.DataFrame, name: str) -> float:
    """How far az.compare's default rounding (``round_to="auto"``) may move a model's elpd:
    to the decimal place of the first significant digit of twice its standard error."""
    if "se" not in table.columns:
        return 0.0
    se = float(table.loc[name, "se"])
    return 10.0 ** math.floor(math.log10(2 * se)) if np.isfinite(se) and se > 0 else 0.0


def check_loo(simple: Model, varying: Model, table_item: Item, reference: dict, data: pd.DataFrame) -> CheckResult:
    """The student's comparison table must be what their own draws give; the graded
    elpd_loo and elpd_diff are those of the trusted fits of their two models."""
    check = "ex1_loo"
    if not table_item.ok:
        return _result(check, False, f"comparison could not be graded: {table_item.reason}")
    try:
        table = read_table(table_item)
    except Exception as error:
        return _result(check, False, f"comparison could not be read: {error}")
    missing = [m for m in ("m_simple", "m_varying") if m not in table.index]
    # az.compare's column, or brms's layout (the course's loo_compare).
    elpd = "elpd" if "elpd" in table.columns and "elpd_loo" not in table.columns else "elpd_loo"
    needed = [c for c in (elpd, "elpd_diff") if c not in table.columns]
    if missing or needed:
        return _result(check, False, (
            "comparison should be the table az.compare({'m_simple': ..., 'm_varying': ...}) (or the course's "
            "loo_compare) returns, with rows m_simple and m_varying and columns elpd (elpd_loo) and elpd_diff; it "
            f"lacks {', '.join(missing + needed)}."))
    for model in (simple, varying):
        problem = model.problem or model.trusted.problem or _terms_problem(model.trusted, model.name)
        if problem:
            return _result(check, False, f"LOO cannot be checked: {problem}")
        own = draws_problem(model)
        if own:
            return _result(check, False, f"LOO cannot be credited: {own}")
    mine, trusted = {}, {}
    for model in (simple, varying):
        try:
            mine[model.name] = _loo(model.mine.posterior, data)
            trusted[model.name] = _loo(model.trusted.posterior, data)
        except (KeyError, ValueError) as error:  # e.g. a model fitted to part of the data only
            return _result(check, False, f"the LOO of {model.name} could not be computed on the Trolley data: "
                                         f"{error}. Fit it to the whole data set.")
    problems = []
    reported = {m: float(table.loc[m, elpd]) for m in ("m_simple", "m_varying")}
    for name in ("m_simple", "m_varying"):
        own, _ = mine[name]
        if reported[name] > 0 and own.elpd_loo < 0:
            problems.append(f"Your elpd_loo for {name} is {_fmt(reported[name])}, positive: elpd_loo is a log "
                            "predictive density (negative here), not a deviance or LOOIC (-2 elpd_loo).")
        elif abs(reported[name] - own.elpd_loo) > max(1.0, 1e-4 * abs(own.elpd_loo), _rounding(table, name)):
            problems.append(f"Your elpd_loo for {name} is {_fmt(reported[name])}, but your own draws give "
                            f"{_fmt(own.elpd_loo)}: compute it with az.compare (or loo()) on that model's fit.")
        result, mcse = trusted[name]
        ref = reference["models"][name]["loo"]
        if not agrees(result.elpd_loo, mcse, ref["elpd_loo"], ref["mcse_elpd_loo"], FLOORS["elpd"]):
            problems.append(f"The elpd_loo of your {name} (from the grader's fit of it) is {_fmt(result.elpd_loo)}, "
                            f"the reference is {_fmt(ref['elpd_loo'])} (se {_fmt(ref['se_elpd_loo'])}): "
                            "is the model the one the exercise describes?")
    own_diff = float(mine["m_simple"][0].pointwise["elpd_loo"].sum() - mine["m_varying"][0].pointwise["elpd_loo"].sum())
    reported_diff = float(table.loc["m_simple", "elpd_diff"]) - float(table.loc["m_varying", "elpd_diff"])
    if np.sign(reported_diff) != np.sign(own_diff) and abs(own_diff) > 1:
        problems.append(f"The sign of your elpd_diff is flipped: your table says m_simple minus m_varying is "
                        f"{_fmt(reported_diff)}, but m_simple predicts worse ({_fmt(own_diff)}). In the convention "
                        "of brms's loo_compare (and of az.compare since ArviZ 1.0) the better model has elpd_diff 0 "
                        "and the worse a negative one.")
    diff = float(trusted["m_simple"][0].pointwise["elpd_loo"].sum() - trusted["m_varying"][0].pointwise["elpd_loo"].sum())
    ref_cmp = reference["comparison"]
    mcse_diff = math.hypot(trusted["m_simple"][1], trusted["m_varying"][1])
    if not agrees(diff, mcse_diff, ref_cmp["elpd_diff"], ref_cmp["mcse_elpd_diff"], FLOORS["elpd"]):
        problems.append(f"Your elpd_diff (m_simple minus m_varying, from the grader's fits of your models) is "
                        f"{_fmt(diff)}, the reference is {_fmt(ref_cmp['elpd_diff'])} (se {_fmt(ref_cmp['se_diff'])}).")
    if problems:
        return _result(check, False, " ".join(problems))
    return _result(check, True, (
        f"elpd_loo {_fmt(trusted['m_varying'][0].elpd_loo)} (m_varying) and "
        f"{_fmt(trusted['m_simple'][0].elpd_loo)} (m_simple), elpd_diff {_fmt(diff)}: "
        "agree with the reference."))


# ----------------------------------------------------------------------------- predictions

def _load_draws(item: Item, name: str, need_id: bool) -> tuple[pd.DataFrame | None, str]:
    if not item.ok:
        return None, f"{name} could not be graded: {item.reason}"
    try:
        frame = read_draws(item)
    except Exception as error:
        return None, f"{name} could not be read: {error}"
    if ".epred" not in frame.columns:
        if ".linpred" in frame.columns:
            return None, (f"{name} holds .linpred, the linear predictor on the logit scale; the exercise asks for "
                          "probabilities of each rating: use model.predict(..., kind=\"response_params\") or "
                          "epred_draws, which apply the link function")
        return None, (f"{name} has no probabilities: make it with model.predict(..., kind=\"response_params\", "
                      "inplace=False) or epred_draws(...)")
    if ".category" not in frame.columns and len(frame) and not frame[".epred"].between(0, 1).all():
        return None, (f"{name} has one value per story and draw (no .category), around "
                      f"{_fmt(float(frame['.epred'].mean()))}: a mean rating, as a gaussian model predicts. The "
                      "cumulative model gives a probability for each of the 7 ratings (use m_varying with "
                      "family=\"cumulative\")")
    wanted = [*S.STORY_COLUMNS, ".category", ".chain"] + (["id"] if need_id else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        return None, (f"{name} lacks the column(s) {', '.join(missing)}: keep the columns epred_draws returns "
                      "(the predictors, .category, .epred, .chain, .draw)")
    values = frame[".epred"].to_numpy(dtype=float)
    if not np.isfinite(values).all() or values.min() < -1e-9 or values.max() > 1 + 1e-9:
        return None, (f"{name}'s .epred values run from {_fmt(np.nanmin(values))} to {_fmt(np.nanmax(values))}, "
                      "outside 0 to 1: these are not probabilities. Are they on the linear (logit) scale? "
                      "Use model.predict(..., kind=\"response_params\") or epred_draws, which apply the link "
                      "function")
    per_group = frame.groupby([*S.STORY_COLUMNS, ".category"] + (["id"] if need_id else []), observed=True).size()
    if len(per_group) and per_group.min() < MIN_DRAWS:
        return None, (f"{name} has {per_group.min()} draws per prediction; use all of the model's draws "
                      f"(at least {MIN_DRAWS}: keep the settings in SAMPLING)")
    keys = [*S.STORY_COLUMNS, ".chain", ".draw" if ".draw" in frame else ".iteration"] + (["id"] if need_id else [])
    sums = frame.groupby(keys, observed=True)[".epred"].sum()
    if len(sums) and (np.abs(sums - 1) > 1e-6).any():
        return None, (f"{name}'s probabilities of the seven ratings do not sum to 1 for each story and draw: "
                      "keep all seven categories (1 to 7)")
    return frame, ""


def _compare_probabilities(mine: pd.DataFrame, ref: pd.DataFrame, keys: list[str]) -> tuple[int, pd.DataFrame]:
    """Join student and reference means by ``keys``; count disagreements."""
    joined = mine.merge(ref, on=keys, suffixes=("", "_ref"), how="left")
    ok = [agrees(r["mean"], r["mcse"], r["mean_ref"], r["mcse_ref"], FLOORS["probability"])
          if np.isfinite(r["mean_ref"]) else False for r in joined.to_dict("records")]
    joined["ok"] = ok
    return int((~joined["ok"]).sum()), joined


def _worst(joined: pd.DataFrame, who: str) -> str:
    bad = joined[~joined["ok"]].copy()
    bad["gap"] = (bad["mean"] - bad["mean_ref"]).abs()
    row = bad.sort_values("gap", ascending=False).iloc[0]
    if "id" in row:
        who = f"{who} {row['id']}"
    story = ", ".join(f"{c}={int(row[c])}" for c in S.STORY_COLUMNS)
    return (f"{len(bad)} of {len(joined)} probabilities differ from the reference; the largest: {who}, {story}, "
            f"rating {int(row['.category'])}: yours {row['mean']:.3f}, reference {row['mean_ref']:.3f}")


def prediction_model_problem(model: Model) -> str:
    """Why predictions made with the second notebook's m_varying cannot be credited, or ''."""
    if model.problem:
        return f"Your predictions cannot be credited: {model.problem}"
    problem = _varying_problem(model.trusted)
    if problem:
        return f"Your predictions come from the m_varying of this notebook, and {problem[0].lower()}{problem[1:]}"
    own = draws_problem(model)
    return f"Your predictions cannot be credited: {own}" if own else ""


def _probabilities(posterior, rows: pd.DataFrame, with_id: bool) -> np.ndarray:
    """(chain, draw, row, category) probabilities of a cumulative model for ``rows``."""
    rows = rows.assign(**{c: rows[c].astype(float) for c in S.STORY_COLUMNS})
    alpha = S._intercepts_for(posterior, rows["id"]) if with_id else None
    return S.category_probabilities(S.draws_matrix(posterior, S.CUTPOINTS), S.linear_predictor(posterior, rows, alpha))


def _provenance_problem(frame: pd.DataFrame, posterior, keys: list[str], name: str) -> str:
    """Whether every predicted probability is the one the student's own draws give (draw by draw)."""
    rows = frame[keys].drop_duplicates().reset_index(drop=True)
    try:
        probs = _probabilities(posterior, rows, "id" in keys)
    except KeyError as error:
        return f"{name} is for participants your m_varying has no intercept for ({error})"
    n_chain, n_draw = probs.shape[:2]
    where = frame[keys].merge(rows.reset_index(names="_row"), on=keys, how="left")["_row"].to_numpy()
    chain = frame[".chain"].to_numpy(dtype=int) - 1
    draw = (frame[".iteration"].to_numpy(dtype=int) - 1 if ".iteration" in frame
            else frame[".draw"].to_numpy(dtype=int) - 1 - chain * n_draw)
    category = frame[".category"].to_numpy(dtype=int) - 1
    if (chain.min() < 0 or chain.max() >= n_chain or draw.min() < 0 or draw.max() >= n_draw
            or category.min() < 0 or category.max() >= probs.shape[-1]):
        return (f"{name}'s .chain, .iteration and .category do not match the draws of your m_varying: make it "
                "with model.predict or epred_draws on that fit")
    gap = float(np.abs(frame[".epred"].to_numpy(dtype=float) - probs[chain, draw, where, category]).max())
    if gap > SAME_DRAW_TOLERANCE:
        return (f"{name} was not computed from your m_varying's draws: a probability differs by {gap:.3g} from the "
                "one that draw gives. Make it with model.predict or epred_draws on the fit of this notebook")
    return ""


def _trusted_problem(mine: pd.DataFrame, table: pd.DataFrame, keys: list[str], who: str) -> str:
    n_bad, joined = _compare_probabilities(mine, table, keys)
    if not n_bad:
        return ""
    return ("Your predictions differ from the ones your model gives when the grader fits it: "
            + _worst(joined, who).replace("reference", "grader's fit") + ".")


def check_participants(item: Item, model: Model, reference: dict, data: pd.DataFrame) -> CheckResult:
    check = "ex2_participants"
    frame, problem = _load_draws(item, "pred_participants", need_id=True)
    if frame is None:
        return _result(check, False, problem)
    ids = sorted(frame["id"].astype(str).unique())
    known = set(data["id"].astype(str))
    if len(ids) != N_PARTICIPANTS:
        return _result(check, False, f"pred_participants has {len(ids)} participant(s); the exercise asks for "
                                     f"{N_PARTICIPANTS}.")
    unknown = [i for i in ids if i not in known]
    if unknown:
        return _result(check, False, f"participant(s) {', '.join(unknown)} are not in the data: pick 3 ids from "
                                     "trolley['id'].")
    stories = frame[S.STORY_COLUMNS].drop_duplicates()
    if len(stories) != S.N_STORIES:
        return _result(check, False, f"pred_participants covers {len(stories)} kind(s) of story; predict all six "
                                     "combinations of action, intention and contact in the data.")
    keys = ["id", *S.STORY_COLUMNS, ".category"]
    mine = S.prediction_stats(frame, keys)
    ref = S.from_records(reference["predictions"]["participants"])
    ref = ref[ref["id"].isin(ids)]
    n_bad, joined = _compare_probabilities(mine, ref, keys)
    if n_bad:
        average = S.from_records(reference["predictions"]["average"])
        n_avg, _ = _compare_probabilities(mine.drop(columns="id"), average, [*S.STORY_COLUMNS, ".category"])
        hint = (" They match the average participant's: include the participants' own intercepts "
                "(model.predict's default, or epred_draws's clusters=\"sample\")." if n_avg == 0 else "")
        return _result(check, False, _worst(joined, "participant") + "." + hint)
    problem = prediction_model_problem(model) or _provenance_problem(frame, model.mine.posterior,
                                                                     ["id", *S.STORY_COLUMNS], "pred_participants")
    if not problem:
        rows = frame[["id", *S.STORY_COLUMNS]].drop_duplicates().reset_index(drop=True)
        try:
            table = S.probability_table(rows, _probabilities(model.trusted.posterior, rows, True),
                                        ["id", *S.STORY_COLUMNS])
            problem = _trusted_problem(mine, table, keys, "participant")
        except KeyError as error:  # the model was fitted without these participants
            problem = f"Your m_varying has no intercept for these participants ({error}): fit it to the whole data set."
    if problem:
        return _result(check, False, problem)
    return _result(check, True, f"The predictions for participants {', '.join(ids)} agree with the reference.")


def check_average(item: Item, model: Model, reference: dict) -> CheckResult:
    check = "ex2_average"
    frame, problem = _load_draws(item, "pred_average", need_id=False)
    if frame is None:
        return _result(check, False, problem)
    if "id" in frame and frame["id"].nunique() > 1:
        return _result(check, False, "pred_average has several ids: the average participant is one prediction per "
                                     "story with the varying intercept left out (model.predict's "
                                     "include_group_specific=False, or clusters=\"average\").")
    keys = [*S.STORY_COLUMNS, ".category"]
    mine = S.prediction_stats(frame, keys)
    ref = S.from_records(reference["predictions"]["average"])
    n_bad, joined = _compare_probabilities(mine, ref, keys)
    if len(mine) != len(ref):
        return _result(check, False, f"pred_average has {len(mine) // S.N_CATEGORIES} kind(s) of story; predict all six.")
    if n_bad:
        new = S.from_records(reference["predictions"]["new"]["gaussian"])
        n_new, _ = _compare_probabilities(mine, new, keys)
        hint = (" They match a new participant's (an intercept drawn from the population); the average participant "
                "has the intercept left out: include_group_specific=False (or clusters=\"average\")."
                if n_new == 0 else "")
        return _result(check, False, _worst(joined, "average participant") + "." + hint)
    problem = prediction_model_problem(model) or _provenance_problem(frame, model.mine.posterior, S.STORY_COLUMNS,
                                                                     "pred_average")
    if not problem:
        rows = S.stories(frame)
        table = S.probability_table(rows, _probabilities(model.trusted.posterior, rows, False), S.STORY_COLUMNS)
        problem = _trusted_problem(mine, table, keys, "average participant")
    if problem:
        return _result(check, False, problem)
    return _result(check, True, "The average participant's predictions agree with the reference.")


def check_new(item: Item, model: Model, reference: dict, data: pd.DataFrame) -> CheckResult:
    check = "ex2_new"
    frame, problem = _load_draws(item, "pred_new", need_id=True)
    if frame is None:
        return _result(check, False, problem)
    ids = sorted(frame["id"].astype(str).unique())
    in_data = sorted(set(ids) & set(data["id"].astype(str)))
    if len(ids) != N_NEW_PARTICIPANTS:
        return _result(check, False, f"pred_new has {len(ids)} participant(s); the exercise asks for "
                                     f"{N_NEW_PARTICIPANTS} new ones.")
    if in_data:
        return _result(check, False, f"{', '.join(in_data)} are participants in the data; new participants need "
                                     "ids that are not, e.g. \"New1\" and \"New2\".")
    mine = S.prediction_stats(frame, ["id", *S.STORY_COLUMNS, ".category"])
    keys = [*S.STORY_COLUMNS, ".category"]
    average = S.from_records(reference["predictions"]["average"])
    messages = []
    for person in ids:
        part = mine[mine["id"] == person].drop(columns="id")
        if len(part) != S.N_STORIES * S.N_CATEGORIES:
            return _result(check, False, f"pred_new has {len(part) // S.N_CATEGORIES} kind(s) of story for {person}; "
                                         "predict all six.")
        fits = {kind: _compare_probabilities(part, S.from_records(reference["predictions"]["new"][kind]), keys)
                for kind in ("gaussian", "uncertainty")}
        if min(n for n, _ in fits.values()) == 0:
            continue
        if _compare_probabilities(part, average, keys)[0] == 0:
            messages.append(f"the predictions for {person} equal the average participant's: a new participant's "
                            "intercept is unknown and must be drawn from the population of participants "
                            "(model.predict(..., sample_new_groups=True) or epred_draws(..., clusters=\"new\", "
                            "seed=...)), not left out")
        else:
            messages.append(_worst(fits["gaussian"][1], f"new participant {person}"))
    if messages:
        return _result(check, False, "; ".join(messages) + ".")
    problem = prediction_model_problem(model)
    if not problem:
        rows = S.stories(frame)
        trusted = {kind: S.probability_table(rows, probs, S.STORY_COLUMNS)
                   for kind, probs in S.new_participant_probabilities(model.trusted.posterior, rows).items()}
        for person in ids:
            part = mine[mine["id"] == person].drop(columns="id")
            found = [_trusted_problem(part, table, keys, f"new participant {person}") for table in trusted.values()]
            if all(found):
                problem = found[0]
                break
    if problem:
        return _result(check, False, problem)
    return _result(check, True, "The two new participants' predictions agree with the reference.")


# ----------------------------------------------------------------------------- all

def grade_items(items: dict[str, Item], reference: dict, data: pd.DataFrame,
                trusted: dict[str, dict] | None = None) -> list[CheckResult]:
    """Every check of the assignment for one submission's verified payload items.

    ``trusted`` maps each model item (:data:`MODEL_ITEMS`) to its trusted fit's record
    (``{"posterior": NetCDF path or None, "problem": why not}``, see
    :mod:`autograder.trusted`).
    """
    trusted = trusted or {}
    simple, varying, second = (load_model(items[name], trusted.get(name), "m_varying" if name == "m_varying_2" else name)
                               for name in MODEL_ITEMS)
    return [check_simple(simple, reference), *check_varying(varying, reference),
            check_loo(simple, varying, items["comparison"], reference, data),
            check_participants(items["pred_participants"], second, reference, data),
            check_average(items["pred_average"], second, reference),
            check_new(items["pred_new"], second, reference, data)]
