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
partial credit check by check. Every quantity is recomputed here from the student's
draws (the LOO from their posterior and the data), so a student's own summaries are
only compared with the recomputation, never trusted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

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
CUTPOINT_NAMES = [f"b_Intercept[{k}]" for k in range(1, 7)]
COEF_NAMES = [f"b_{c}" for c in S.COEFFICIENTS]
LABELS = {**{f"b_Intercept[{k}]": f"cutpoint {k}" for k in range(1, 7)},
          **{f"b_{c}": f"the coefficient of {c}" for c in S.COEFFICIENTS}, "sd_id__Intercept": "sd(id)"}


@dataclass
class CheckResult:
    check: str
    points: float
    score: float
    message: str

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
    """What a payload says about one fitted model."""

    item: Item
    posterior: object = None
    family: str | None = None
    terms: tuple = ()
    has_id: bool = False
    problem: str = ""  # why it cannot be graded as a cumulative model, for the student


def load_fit(item: Item, name: str) -> Fit:
    if not item.ok:
        return Fit(item, problem=f"{name} could not be graded: {item.reason}")
    try:
        posterior = read_posterior(item)
    except Exception as error:
        return Fit(item, problem=f"{name}'s posterior could not be read: {error}")
    family = item.meta.get("family") or (
        "cumulative" if S.CUTPOINTS in posterior else "gaussian" if "sigma" in posterior else None)
    scalar = [v for v in posterior.data_vars if set(posterior[v].dims) == {"chain", "draw"}]
    terms = tuple(sorted(v for v in scalar if not v.endswith("_sigma") and v not in ("sigma", "Intercept")))
    fit = Fit(item, posterior, family, terms, S.INTERCEPTS in posterior)
    if family != "cumulative" or S.CUTPOINTS not in posterior:
        fit.problem = (f"{name} was fitted with the {family} family and has no cutpoints; the ratings 1 to 7 are "
                       "ordered categories: use family=\"cumulative\"")
    return fit


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


def _compare_parameters(fit: Fit, reference: dict, names: list[str], name: str) -> tuple[bool, str]:
    """Means and sds of ``names`` against the reference; the message lists what disagrees."""
    stats = S.parameter_stats(fit.posterior)
    n_draws = fit.posterior.sizes.get("chain", 1) * fit.posterior.sizes.get("draw", 0)
    if n_draws < MIN_DRAWS:
        return False, (f"{name} has {n_draws} posterior draws; keep the settings in SAMPLING (2 chains x 500 "
                       f"draws, at least {MIN_DRAWS}) so that it can be compared with the reference.")
    slow = [f"{LABELS[p]} ({stats[p]['ess_bulk']:.0f})" for p in names if p in stats and stats[p]["ess_bulk"] < MIN_ESS]
    if slow:
        return False, (f"in {name}, the sampler mixed poorly: fewer than {MIN_ESS} effective draws for "
                       f"{', '.join(slow)}. Use the settings the exercise gives (noncentered=False, "
                       "low_rank_modified_mass_matrix=True for m_varying).")
    bad = []
    for p in names:
        ref = reference["parameters"][p]
        if p not in stats:
            bad.append(f"{LABELS[p]} is missing (the reference is {_fmt(ref['mean'])})")
            continue
        mine = stats[p]
        for what, mcse in (("mean", "mcse_mean"), ("sd", "mcse_sd")):
            if not agrees(mine[what], mine[mcse], ref[what], ref[mcse], FLOORS["parameter"]):
                label = f"the posterior {'mean' if what == 'mean' else 'sd'} of {LABELS[p]}"
                bad.append(f"{label} is {_fmt(mine[what])}, the reference is {_fmt(ref[what])} "
                           f"(95% interval {_fmt(ref['q2.5'])} to {_fmt(ref['q97.5'])}; "
                           f"allowed difference {_fmt(Z * math.hypot(mine[mcse], ref[mcse]) + FLOORS['parameter'])})")
    if bad:
        return False, f"In {name}, " + "; ".join(bad) + "."
    return True, f"{name}: " + ", ".join(f"{LABELS[p]} {_fmt(stats[p]['mean'])}" for p in names) + \
        (" agree" if len(names) > 1 else " agrees") + " with the reference."


def _result(check: str, ok: bool, message: str) -> CheckResult:
    points = CHECKS[check]
    return CheckResult(check, points, float(points if ok else 0), message)


def check_simple(fit: Fit, reference: dict) -> CheckResult:
    if fit.problem:
        return _result("ex1_m_simple", False, fit.problem)
    problem = _terms_problem(fit, "m_simple")
    if fit.has_id:
        problem += " m_simple should ignore participants: leave out (1 | id)."
    if problem:
        return _result("ex1_m_simple", False, problem.strip())
    return _result("ex1_m_simple", *_compare_parameters(fit, reference["models"]["m_simple"],
                                                      CUTPOINT_NAMES + COEF_NAMES, "m_simple"))


def _varying_problem(fit: Fit) -> str:
    if fit.problem:
        return fit.problem
    problem = _terms_problem(fit, "m_varying")
    if not fit.has_id:
        problem += (" m_varying has no varying intercept per participant (no sd(id)): add (1 | id) to the formula, "
                    "so that responses are clustered within participants.")
    return problem.strip()


def check_varying(fit: Fit, reference: dict) -> list[CheckResult]:
    ref = reference["models"]["m_varying"]
    problem = _varying_problem(fit)
    if problem:
        results = [_result(c, False, problem) for c in ("ex1_m_varying_cutpoints", "ex1_m_varying_coefficients")]
        sd_ref = ref["parameters"]["sd_id__Intercept"]
        if not fit.problem and not fit.has_id:
            problem = (f"your m_varying has no sd(id) (the reference is {_fmt(sd_ref['mean'])}, 95% interval "
                       f"{_fmt(sd_ref['q2.5'])} to {_fmt(sd_ref['q97.5'])}): does it have a varying intercept per "
                       "participant, (1 | id)?")
        return results + [_result("ex1_m_varying_sd", False, problem)]
    results = [
        _result("ex1_m_varying_cutpoints", *_compare_parameters(fit, ref, CUTPOINT_NAMES, "m_varying")),
        _result("ex1_m_varying_coefficients", *_compare_parameters(fit, ref, COEF_NAMES, "m_varying")),
    ]
    ok, message = _compare_parameters(fit, ref, ["sd_id__Intercept"], "m_varying")
    mine = S.parameter_stats(fit.posterior).get("sd_id__Intercept", {}).get("mean", float("nan"))
    if not ok and mine < 0.5 * ref["parameters"]["sd_id__Intercept"]["mean"]:
        message = (f"your sd(id) is {_fmt(mine)}, the reference is {_fmt(ref['parameters']['sd_id__Intercept']['mean'])}: "
                   "does your model have varying intercepts per participant, grouped by id? " + message)
    return results + [_result("ex1_m_varying_sd", ok, message)]


# ----------------------------------------------------------------------------- LOO

def check_loo(simple: Fit, varying: Fit, table_item: Item, reference: dict, data: pd.DataFrame) -> CheckResult:
    check = "ex1_loo"
    if not table_item.ok:
        return _result(check, False, f"comparison could not be graded: {table_item.reason}")
    try:
        table = read_table(table_item)
    except Exception as error:
        return _result(check, False, f"comparison could not be read: {error}")
    missing = [m for m in ("m_simple", "m_varying") if m not in table.index]
    needed = [c for c in ("elpd_loo", "elpd_diff") if c not in table.columns]
    if missing or needed:
        return _result(check, False, (
            "comparison should be the table loo_compare({'m_simple': ..., 'm_varying': ...}) returns, with rows "
            f"m_simple and m_varying and columns elpd_loo and elpd_diff; it lacks {', '.join(missing + needed)}."))
    for fit, name in ((simple, "m_simple"), (varying, "m_varying")):
        if fit.problem:
            return _result(check, False, f"LOO cannot be checked: {fit.problem}")
    recomputed = {}
    for fit, name in ((simple, "m_simple"), (varying, "m_varying")):
        try:
            result, mcse = S.loo_stats(S.cumulative_log_lik(fit.posterior, data), fit.posterior)
        except Exception as error:
            return _result(check, False, f"the LOO of {name} could not be recomputed from its draws: {error}")
        recomputed[name] = (result, mcse)
    problems = []
    reported = {m: float(table.loc[m, "elpd_loo"]) for m in ("m_simple", "m_varying")}
    for name, (result, mcse) in recomputed.items():
        if reported[name] > 0 and result.elpd_loo < 0:
            problems.append(f"Your elpd_loo for {name} is {_fmt(reported[name])}, positive: elpd_loo is a log "
                            "predictive density (negative here), not a deviance or LOOIC (-2 elpd_loo).")
        elif abs(reported[name] - result.elpd_loo) > max(1.0, 1e-4 * abs(result.elpd_loo)):
            problems.append(f"Your elpd_loo for {name} is {_fmt(reported[name])}, but your own draws give "
                            f"{_fmt(result.elpd_loo)}: compute it with loo() on that model's fit.")
        ref = reference["models"][name]["loo"]
        if not agrees(result.elpd_loo, mcse, ref["elpd_loo"], ref["mcse_elpd_loo"], FLOORS["elpd"]):
            problems.append(f"The elpd_loo of your {name} (recomputed from your draws) is {_fmt(result.elpd_loo)}, "
                            f"the reference is {_fmt(ref['elpd_loo'])} (se {_fmt(ref['se_elpd_loo'])}): "
                            "is the model the one the exercise describes?")
    diff_i = (recomputed["m_simple"][0].pointwise["elpd_loo"].to_numpy()
              - recomputed["m_varying"][0].pointwise["elpd_loo"].to_numpy())
    mine_diff = float(diff_i.sum())
    reported_diff = float(table.loc["m_simple", "elpd_diff"]) - float(table.loc["m_varying", "elpd_diff"])
    if np.sign(reported_diff) != np.sign(mine_diff) and abs(mine_diff) > 1:
        problems.append(f"The sign of your elpd_diff is flipped: your table says m_simple minus m_varying is "
                        f"{_fmt(reported_diff)}, but m_simple predicts worse ({_fmt(mine_diff)}). In brms's and "
                        "loo_compare's convention the better model has elpd_diff 0 and the worse a negative one "
                        "(az.compare reports the positive difference).")
    ref_cmp = reference["comparison"]
    mcse_diff = math.hypot(recomputed["m_simple"][1], recomputed["m_varying"][1])
    if not agrees(mine_diff, mcse_diff, ref_cmp["elpd_diff"], ref_cmp["mcse_elpd_diff"], FLOORS["elpd"]):
        problems.append(f"Your elpd_diff (m_simple minus m_varying, recomputed) is {_fmt(mine_diff)}, "
                        f"the reference is {_fmt(ref_cmp['elpd_diff'])} (se {_fmt(ref_cmp['se_diff'])}).")
    if problems:
        return _result(check, False, " ".join(problems))
    return _result(check, True, (
        f"elpd_loo {_fmt(recomputed['m_varying'][0].elpd_loo)} (m_varying) and "
        f"{_fmt(recomputed['m_simple'][0].elpd_loo)} (m_simple), elpd_diff {_fmt(mine_diff)}: "
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
                          "probabilities of each rating: use epred_draws, which applies the link function")
        return None, f"{name} has no .epred column: make it with epred_draws(...)"
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
                      "Use epred_draws, which applies the link function")
    per_group = frame.groupby([*S.STORY_COLUMNS, ".category"] + (["id"] if need_id else []), observed=True).size()
    if len(per_group) and per_group.min() < MIN_DRAWS:
        return None, (f"{name} has {per_group.min()} draws per prediction; use all of the model's draws "
                      f"(at least {MIN_DRAWS}: keep the settings in SAMPLING)")
    keys = [*S.STORY_COLUMNS, ".chain", ".draw" if ".draw" in frame else ".iteration"] + (["id"] if need_id else [])
    sums = frame.groupby(keys, observed=True)[".epred"].sum()
    if len(sums) and (np.abs(sums - 1) > 1e-6).any():
        return None, (f"{name}'s probabilities of the seven ratings do not sum to 1 for each story and draw: "
                      "keep all seven categories (.category 1 to 7) from epred_draws")
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


def check_participants(item: Item, reference: dict, data: pd.DataFrame) -> CheckResult:
    check = "ex2_participants"
    frame, problem = _load_draws(item, "pred_participants", need_id=True)
    if frame is None:
        return _result(check, False, problem)
    ids = sorted(frame["id"].astype(str).unique())
    known = set(data["id"].astype(str))
    if len(ids) != 3:
        return _result(check, False, f"pred_participants has {len(ids)} participant(s); the exercise asks for 3.")
    unknown = [i for i in ids if i not in known]
    if unknown:
        return _result(check, False, f"participant(s) {', '.join(unknown)} are not in the data: pick 3 ids from "
                                     "trolley['id'].")
    stories = frame[S.STORY_COLUMNS].drop_duplicates()
    if len(stories) != 6:
        return _result(check, False, f"pred_participants covers {len(stories)} kind(s) of story; predict all six "
                                     "combinations of action, intention and contact in the data.")
    mine = S.prediction_stats(frame, ["id", *S.STORY_COLUMNS, ".category"])
    ref = S.from_records(reference["predictions"]["participants"])
    ref = ref[ref["id"].isin(ids)]
    n_bad, joined = _compare_probabilities(mine, ref, ["id", *S.STORY_COLUMNS, ".category"])
    if n_bad:
        average = S.from_records(reference["predictions"]["average"])
        n_avg, _ = _compare_probabilities(mine.drop(columns="id"), average, [*S.STORY_COLUMNS, ".category"])
        hint = (" They match the average participant's: include the participants' own intercepts "
                "(clusters=\"sample\")." if n_avg == 0 else "")
        return _result(check, False, _worst(joined, "participant") + "." + hint)
    return _result(check, True, f"The predictions for participants {', '.join(ids)} agree with the reference.")


def check_average(item: Item, reference: dict) -> CheckResult:
    check = "ex2_average"
    frame, problem = _load_draws(item, "pred_average", need_id=False)
    if frame is None:
        return _result(check, False, problem)
    if "id" in frame and frame["id"].nunique() > 1:
        return _result(check, False, "pred_average has several ids: the average participant is one prediction per "
                                     "story with the varying intercept left out (clusters=\"average\").")
    mine = S.prediction_stats(frame, [*S.STORY_COLUMNS, ".category"])
    ref = S.from_records(reference["predictions"]["average"])
    n_bad, joined = _compare_probabilities(mine, ref, [*S.STORY_COLUMNS, ".category"])
    if len(mine) != len(ref):
        return _result(check, False, f"pred_average has {len(mine) // 7} kind(s) of story; predict all six.")
    if n_bad:
        new = S.from_records(reference["predictions"]["new"]["gaussian"])
        n_new, _ = _compare_probabilities(mine, new, [*S.STORY_COLUMNS, ".category"])
        hint = (" They match a new participant's (an intercept drawn from the population); the average participant "
                "has the intercept left out: clusters=\"average\"." if n_new == 0 else "")
        return _result(check, False, _worst(joined, "average participant") + "." + hint)
    return _result(check, True, "The average participant's predictions agree with the reference.")


def check_new(item: Item, reference: dict, data: pd.DataFrame) -> CheckResult:
    check = "ex2_new"
    frame, problem = _load_draws(item, "pred_new", need_id=True)
    if frame is None:
        return _result(check, False, problem)
    ids = sorted(frame["id"].astype(str).unique())
    in_data = sorted(set(ids) & set(data["id"].astype(str)))
    if len(ids) != 2:
        return _result(check, False, f"pred_new has {len(ids)} participant(s); the exercise asks for 2 new ones.")
    if in_data:
        return _result(check, False, f"{', '.join(in_data)} are participants in the data; new participants need "
                                     "ids that are not, e.g. \"New1\" and \"New2\".")
    mine = S.prediction_stats(frame, ["id", *S.STORY_COLUMNS, ".category"])
    keys = [*S.STORY_COLUMNS, ".category"]
    average = S.from_records(reference["predictions"]["average"])
    messages = []
    for person in ids:
        part = mine[mine["id"] == person].drop(columns="id")
        if len(part) != 42:
            return _result(check, False, f"pred_new has {len(part) // 7} kind(s) of story for {person}; predict all six.")
        fits = {kind: _compare_probabilities(part, S.from_records(reference["predictions"]["new"][kind]), keys)
                for kind in ("gaussian", "uncertainty")}
        if min(n for n, _ in fits.values()) == 0:
            continue
        if _compare_probabilities(part, average, keys)[0] == 0:
            messages.append(f"the predictions for {person} equal the average participant's: a new participant's "
                            "intercept is unknown and must be drawn from the population of participants "
                            "(epred_draws(..., clusters=\"new\", seed=...)), not left out")
        else:
            messages.append(_worst(fits["gaussian"][1], f"new participant {person}"))
    if messages:
        return _result(check, False, "; ".join(messages) + ".")
    return _result(check, True, "The two new participants' predictions agree with the reference.")


# ----------------------------------------------------------------------------- all

def grade_items(items: dict[str, Item], reference: dict, data: pd.DataFrame) -> list[CheckResult]:
    """Every check of the assignment for one submission's verified payload items."""
    simple = load_fit(items["m_simple"], "m_simple")
    varying = load_fit(items["m_varying"], "m_varying")
    results = [check_simple(simple, reference), *check_varying(varying, reference),
               check_loo(simple, varying, items["comparison"], reference, data),
               check_participants(items["pred_participants"], reference, data),
               check_average(items["pred_average"], reference),
               check_new(items["pred_new"], reference, data)]
    return results
