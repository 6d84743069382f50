"""brms's names for a posterior's parameters, so tables read like the lecture's.

Bambi and brms name the same quantities differently. This module flattens a posterior
into one column per scalar, named as brms names it:

==========================  ===========================  =============================
Bambi                       brms                         meaning
==========================  ===========================  =============================
``Intercept``               ``b_Intercept``              population-level intercept
``x`` (a number)            ``b_x``                      population-level slope
``id[6]`` (a factor)        ``b_id6``                    one coefficient per level
``1|id_sigma``              ``sd_id__Intercept``         sd of the varying intercepts
``1|id[6]``                 ``r_id[6,Intercept]``        person 6's deviation
``x|id[6]``                 ``r_id[6,x]``                person 6's deviation in slope
``sigma``                   ``sigma``                    residual sd
``threshold[0]``            ``b_Intercept[1]``           first cutpoint (ordinal)
==========================  ===========================  =============================

Bambi's non-centred offsets (``1|id_offset``) and anything with one value per
observation are left out. A variable already named the brms way, as in a hand-written
PyMC model, keeps its name, and brms's indexing is added along its one dimension:
``b_b_treatment`` with dimension ``treatment`` gives ``b_b_treatment1``, ...;
``r_actor__a`` with dimension ``actor`` gives ``r_actor__a[1,Intercept]``, ...
"""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

__all__ = ["brms_draws", "brms_name", "level_name", "parameter_class", "parse_brms_name"]

_GROUP_SD = re.compile(r"^(?P<term>.+)\|(?P<group>[^|]+)_sigma$")
_GROUP_EFFECT = re.compile(r"^(?P<term>.+)\|(?P<group>[^|]+)$")
_THRESHOLDS = {"threshold"}
_AUXILIARY = {"sigma", "alpha", "kappa", "nu", "disc", "phi", "shape"}
_BRMS_PREFIXES = ("b_", "sd_", "r_", "cor_")
_OBS_DIM = "__obs__"


def _term(expr: str) -> str:
    return "Intercept" if expr == "1" else expr


def level_name(value) -> str:
    """A cluster or factor level as text, the same for 1, 1.0, np.int64(1) and "1"."""
    if isinstance(value, (np.floating, float)) and float(value).is_integer():
        value = int(value)
    return str(value)


_level = level_name


def brms_name(var: str, level=None, position: int | None = None, *, bambi: bool = True) -> str | None:
    """brms's name for one scalar of variable ``var``, or None to leave it out.

    ``level`` is the coordinate value along the variable's non-sample dimension, if it
    has one, and ``position`` its 0-based position (used for cutpoints). With
    ``bambi=False`` (a hand-written model) names that start as brms's do are kept; in a
    Bambi posterior they are predictors that happen to be named so (``b_b_x``).
    """
    if var.endswith("_offset"):
        return None
    suffix = "" if level is None else f"[{_level(level)}]"
    if not bambi and var.startswith(_BRMS_PREFIXES):  # already named the brms way
        if level is None:
            return var
        if var.startswith("b_"):  # a coefficient per factor level: b_b_treatment1
            return f"{var}{_level(level)}"
        if var.startswith("r_"):  # a varying intercept per cluster: r_actor__a[1,Intercept]
            return f"{var}[{_level(level)},Intercept]"
        return var + suffix
    if match := _GROUP_SD.match(var):  # one sd per term, or per level of a factor slope
        return f"sd_{match['group']}__{_term(match['term'])}{'' if level is None else _level(level)}"
    if match := _GROUP_EFFECT.match(var):
        return f"r_{match['group']}[{_level(level)},{_term(match['term'])}]"
    if var in _THRESHOLDS:
        return f"b_Intercept[{position + 1}]"
    if var in _AUXILIARY:
        return var + suffix
    if var == "Intercept":
        return "b_Intercept"
    return f"b_{var}" if level is None else f"b_{var}{_level(level)}"


def parameter_class(name: str) -> str:
    """Which block of a brms summary a brms-named parameter belongs to.

    One of ``"sd"`` (multilevel hyperparameters), ``"cor"``, ``"b"`` (regression
    coefficients), ``"r"`` (varying effects, not in the summary) or ``"dpar"`` (further
    distributional parameters).
    """
    for prefix, kind in (("sd_", "sd"), ("cor_", "cor"), ("b_", "b"), ("r_", "r")):
        if name.startswith(prefix):
            return kind
    return "dpar"


_SD_NAME = re.compile(r"^sd_(?P<group>.+?)__(?P<term>.+)$")
# r_id[6,Intercept] (Bambi) or r_actor__a[1,Intercept] (brms non-linear): group id / actor.
_R_NAME = re.compile(r"^r_(?P<group>[^\[]+?)(?:__[^\[]*)?\[(?P<level>.*),(?P<term>[^,]*)\]$")


def parse_brms_name(name: str) -> dict:
    """Read a brms name back: its class and, where it has them, group, level and term.

    >>> parse_brms_name("r_actor__a[1,Intercept]")
    {'class': 'r', 'group': 'actor', 'level': '1', 'term': 'Intercept'}
    >>> parse_brms_name("sd_id__Intercept")
    {'class': 'sd', 'group': 'id', 'term': 'Intercept'}
    """
    kind = parameter_class(name)
    if kind == "sd" and (match := _SD_NAME.match(name)):
        return {"class": kind, **match.groupdict()}
    if kind == "r" and (match := _R_NAME.match(name)):
        return {"class": kind, **match.groupdict()}
    if kind == "cor":
        group, _, terms = name[len("cor_"):].partition("__")
        return {"class": kind, "group": group, "term": terms.replace("__", ",")}
    return {"class": kind}


# brms's order: coefficients, hyperparameters, distributional parameters, cluster effects.
_ORDER = {"b": 0, "sd": 1, "cor": 2, "dpar": 3, "r": 4}


def brms_draws(idata: xr.DataTree | xr.Dataset) -> dict[str, np.ndarray]:
    """Every scalar parameter of a posterior as ``{brms name: array (chain, draw)}``.

    In brms's order (``b_``, ``sd_``, ``cor_``, other parameters such as ``sigma``, then
    ``r_``); within each class, the posterior's order. Bambi's factor-valued varying
    slopes, with two dimensions (cluster and level), become ``r_g[1,x2]``. Variables with
    one value per observation are left out; any other variable with more than one
    dimension is an error, not silently dropped.
    """
    posterior = idata.posterior.to_dataset() if isinstance(idata, xr.DataTree) else idata
    bambi = posterior.attrs.get("modeling_interface") == "bambi"
    columns: dict[str, np.ndarray] = {}
    for var, values in posterior.data_vars.items():
        var = str(var)
        extra = [dim for dim in values.dims if dim not in ("chain", "draw")]
        if any(_OBS_DIM in dim for dim in extra) or var.endswith("_offset"):
            continue
        array = values.transpose("chain", "draw", *extra).to_numpy()
        if not extra:
            name = brms_name(var, bambi=bambi)
            if name is not None:
                columns[name] = array
        elif len(extra) == 1:
            for position, level in enumerate(values[extra[0]].to_numpy()):
                columns[brms_name(var, level, position, bambi=bambi)] = array[:, :, position]
        elif len(extra) == 2 and bambi and (match := _GROUP_EFFECT.match(var)):
            factor_dim = next((d for d in extra if d.endswith("__factor_dim")), extra[0])
            array = values.transpose("chain", "draw", factor_dim, *[d for d in extra if d != factor_dim]).to_numpy()
            term_dim = next(d for d in extra if d != factor_dim)
            for i, level in enumerate(values[factor_dim].to_numpy()):
                for j, term_level in enumerate(values[term_dim].to_numpy()):
                    name = f"r_{match['group']}[{_level(level)},{_term(match['term'])}{_level(term_level)}]"
                    columns[name] = array[:, :, i, j]
        else:
            raise ValueError(f"{var} has dimensions {extra}; the course's tables cannot name its values")
    return dict(sorted(columns.items(), key=lambda item: _ORDER[parameter_class(item[0])]))
