"""A Bambi model's specification as plain JSON: what the grader refits, and how.

A student's posterior draws come from their own kernel, which their code controls, so a
grade cannot rest on them. What the grader needs from the kernel is only the model the
student wrote: formula, family and link, every prior (Bambi's automatic ones included,
as the numbers Bambi chose), the parameterisation, and the data the model was given.
:func:`describe` reads that off a ``bambi.Model`` (fitted through the course's
``fit``/``fit_bambi`` or through ``Model.fit`` directly: the same model either way) and
:func:`describe_data` the model's data. Both run in the student's kernel and produce
inert JSON; nothing in them is ever executed.

On the grader's side, :func:`validate` accepts only what can be rebuilt without running
anything the student wrote: a formula made of the data's column names and the operators
``~ + - * : | ( )`` and the numbers 0 and 1 (no function calls, which formulae would
evaluate), one of Bambi's built-in families and links, priors that are PyMC
distributions with numeric arguments (or nested priors), and data of plain values.
:func:`build_priors` and :func:`read_data` turn a valid specification back into Bambi's
arguments, and :func:`key` names it for the cache of trusted fits: everything that
determines the posterior, without the student's seed or sampler settings.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["describe", "describe_data", "validate", "build_priors", "read_data", "key", "MAX_ROWS"]

MAX_ROWS = 100_000
MAX_COLUMNS = 40
_FORMULA = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>[01])|(?P<op>[~+\-*:|()]))")
_DTYPES = {"int64", "int32", "float64", "float32", "bool", "string", "str", "object", "category"}


# ----------------------------------------------------------------------------- student side

def _value(value, depth: int = 0):
    """A prior argument as JSON: numbers, lists of numbers, nested priors, the ordered transform."""
    if depth > 4:
        raise ValueError("priors nested too deeply")
    if hasattr(value, "name") and hasattr(value, "args") and not isinstance(value, (str, bytes)):
        return {"prior": value.name, "args": {str(k): _value(v, depth + 1) for k, v in value.args.items()}}
    if type(value).__name__ == "Ordered":
        return {"transform": "ordered"}
    array = np.asarray(value)
    if array.dtype.kind in "biuf":
        return array.astype(float).tolist()
    raise ValueError(f"a prior argument of type {type(value).__name__} cannot be recorded")


def describe(model, idata=None) -> dict:
    """The specification of a ``bambi.Model`` (and how its posterior was sampled)."""
    priors = {}
    for component_name, component in model.parameters.items():
        if hasattr(component, "terms"):
            for term_name, term in component.terms.items():
                if term.prior is not None:
                    priors[term_name] = _value(term.prior)
        elif getattr(component, "prior", None) is not None:
            priors[component_name] = _value(component.prior)
    formula = model.formula
    spec = {
        "interface": "bambi",
        "formula": str(getattr(formula, "main", formula)),
        "additional_formulas": [str(f) for f in getattr(formula, "additionals", ())],
        "family": str(model.family.name),
        "link": str(model.family.link[model.family.likelihood.parent].name),
        "noncentered": bool(getattr(model, "noncentered", True)),
        "priors": priors,
    }
    if idata is not None and getattr(idata, "posterior", None) is not None:
        posterior = idata.posterior
        attrs = dict(posterior.attrs)
        course = json.loads(attrs.get("course_spec", "{}") or "{}")
        spec["sampler"] = {
            "via": "the course's fit" if course else "Model.fit",
            "chains": int(posterior.sizes.get("chain", 0)),
            "draws": int(posterior.sizes.get("draw", 0)),
            # Plain values: attributes read back from NetCDF are NumPy scalars.
            "tune": _plain(course.get("tune", attrs.get("tuning_steps"))),
            "sampler": _plain(course.get("sampler", attrs.get("inference_library"))),
            "seed": _plain(course.get("seed")),
        }
    return spec


def _column_names(formula: str) -> list[str]:
    return sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", formula)))


def describe_data(model) -> dict:
    """The columns of the model's data that its formula names, as JSON-ready values."""
    data = model.data
    wanted = [c for c in _column_names(str(getattr(model.formula, "main", model.formula))) if c in data.columns]
    columns = {}
    for name in wanted:
        series = data[name]
        entry: dict = {"dtype": str(series.dtype)}
        if isinstance(series.dtype, pd.CategoricalDtype):
            entry.update(dtype="category", categories=[_plain(c) for c in series.dtype.categories],
                         ordered=bool(series.dtype.ordered))
            values = series.astype(object)
        else:
            values = series
        entry["values"] = [_plain(v) for v in values.tolist()]
        columns[str(name)] = entry
    return {"columns": columns}


def _plain(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return str(value)


# ----------------------------------------------------------------------------- grader side

def _check_formula(formula: str, columns: set[str]) -> str:
    if not isinstance(formula, str) or not formula.strip() or len(formula) > 500:
        return "the formula is missing or too long"
    position, previous = 0, None
    while position < len(formula.rstrip()):
        match = _FORMULA.match(formula, position)
        if not match:
            return (f"the formula {formula!r} uses {formula[position:].strip()[:20]!r}: the grader refits formulas made "
                    "of column names, + - * : | ( ) ~ and 1 or 0 only")
        if match.group("name"):
            if formula[match.end():].lstrip().startswith("("):
                return f"the formula {formula!r} calls a function: the grader refits plain formulas only"
            if match.group("name") not in columns:
                return f"the formula names {match.group('name')!r}, which is not a column of the model's data"
            previous = "name"
        elif match.group("op") == "(" and previous == "name":
            return f"the formula {formula!r} calls a function: the grader refits plain formulas only"
        else:
            previous = match.group("op") or "number"
        position = match.end()
    if formula.count("~") != 1:
        return f"the formula {formula!r} should have exactly one ~"
    return ""


def _check_prior(prior, depth: int = 0) -> str:
    import pymc as pm

    if not isinstance(prior, Mapping) or set(prior) != {"prior", "args"} or depth > 4:
        return "a prior was recorded in a form the grader cannot read"
    dist = getattr(pm, str(prior["prior"]), None) if re.fullmatch(r"[A-Z][A-Za-z]*", str(prior["prior"])) else None
    if dist is None or not isinstance(dist, type) or not issubclass(dist, pm.Distribution):
        return f"the prior {prior['prior']!r} is not a PyMC distribution"
    if not isinstance(prior["args"], Mapping):
        return "a prior's arguments were recorded in a form the grader cannot read"
    for name, value in prior["args"].items():
        if not re.fullmatch(r"[a-z_]+", str(name)):
            return f"the prior argument {name!r} is not valid"
        if isinstance(value, Mapping):
            if name == "transform" and value == {"transform": "ordered"}:
                continue
            problem = _check_prior(value, depth + 1)
            if problem:
                return problem
        elif not _numbers(value):
            return f"the prior argument {name} is not a number or a list of numbers"
    return ""


def _numbers(value, limit: int = 10_000) -> bool:
    flat = np.asarray(value, dtype=object).ravel()
    return flat.size <= limit and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat)


def validate(spec, data) -> str:
    """'' when the specification and data can be refitted safely, else the reason."""
    from bambi.defaults.families import BUILTIN_FAMILIES
    from bambi.families.link import LINKS

    if not isinstance(spec, Mapping) or spec.get("interface") != "bambi":
        return "no Bambi model was recorded"
    if not isinstance(data, Mapping) or not isinstance(data.get("columns"), Mapping):
        return "the model's data were not recorded"
    columns = data["columns"]
    if not columns or len(columns) > MAX_COLUMNS:
        return "the model's data have no columns, or too many"
    lengths = set()
    for name, entry in columns.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)) or not isinstance(entry, Mapping):
            return f"the data column {name!r} cannot be refitted"
        if entry.get("dtype") not in _DTYPES:
            return f"the data column {name} has a type ({entry.get('dtype')}) the grader does not refit"
        values = entry.get("values")
        if not isinstance(values, list) or len(values) > MAX_ROWS:
            return f"the data column {name} is missing or has more than {MAX_ROWS:,} rows"
        if not all(v is None or isinstance(v, (int, float, str, bool)) for v in values):
            return f"the data column {name} holds values that are not plain numbers or text"
        if entry["dtype"] == "category" and not isinstance(entry.get("categories"), list):
            return f"the data column {name} has no categories recorded"
        lengths.add(len(values))
    if len(lengths) != 1:
        return "the model's data columns have different lengths"
    if spec.get("additional_formulas"):
        return "the grader refits models with one formula only (no distributional formulas)"
    problem = _check_formula(spec.get("formula"), set(columns))
    if problem:
        return problem
    if spec.get("family") not in BUILTIN_FAMILIES:
        return f"the family {spec.get('family')!r} is not one of Bambi's built-in families"
    if spec.get("link") not in LINKS:
        return f"the link {spec.get('link')!r} is not one of Bambi's built-in links"
    if not isinstance(spec.get("noncentered"), bool):
        return "the model's parameterisation (noncentered) was not recorded"
    priors = spec.get("priors")
    if not isinstance(priors, Mapping):
        return "the model's priors were not recorded"
    for term, prior in priors.items():
        if not isinstance(term, str) or len(term) > 100:
            return "a prior was recorded for a term the grader cannot read"
        problem = _check_prior(prior)
        if problem:
            return f"{term}: {problem}"
    return ""


def _prior(record):
    import bambi as bmb
    import pymc as pm

    args = {}
    for name, value in record["args"].items():
        if isinstance(value, Mapping) and value == {"transform": "ordered"}:
            args[name] = pm.distributions.transforms.ordered
        elif isinstance(value, Mapping):
            args[name] = _prior(value)
        else:
            args[name] = np.asarray(value, dtype=float) if isinstance(value, list) else float(value)
    return bmb.Prior(record["prior"], **args)


def build_priors(spec: Mapping) -> dict:
    """``bambi.Prior`` objects for every term of a validated specification."""
    return {term: _prior(record) for term, record in spec["priors"].items()}


def read_data(data: Mapping) -> pd.DataFrame:
    """The model's data as a DataFrame, with the recorded types and categories."""
    frame = {}
    for name, entry in data["columns"].items():
        values = entry["values"]
        if entry["dtype"] == "category":
            frame[name] = pd.Categorical(values, categories=entry["categories"], ordered=bool(entry.get("ordered")))
        elif entry["dtype"] in ("string", "str", "object"):
            frame[name] = pd.Series(values, dtype="string")
        elif entry["dtype"] == "bool":
            frame[name] = pd.Series(values, dtype=bool)
        else:
            frame[name] = pd.Series(values, dtype="float64" if entry["dtype"].startswith("float") else "int64")
    return pd.DataFrame(frame)


def key(spec: Mapping, data: Mapping, settings: Mapping) -> str:
    """SHA-256 naming a trusted fit: the model (not the student's seed or sampler), its
    data, and the grader's own ``settings`` (sampler, library versions, code)."""
    from course_utils.fitting import data_hash

    model = json.loads(json.dumps({k: spec[k] for k in ("formula", "family", "link", "noncentered", "priors")}))
    threshold = model["priors"].get("threshold") if spec["family"] == "cumulative" else None
    if threshold and threshold["args"].get("transform") == {"transform": "ordered"}:
        # How the course's fit keeps Bambi's cutpoints ordered (and how every trusted
        # fit is made), not a different model: Model.fit with the same priors gets one key.
        del threshold["args"]["transform"]
    text = json.dumps({"model": model, "data": data_hash(read_data(data)), "settings": settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
