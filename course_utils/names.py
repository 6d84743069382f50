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
observation are left out. A variable already named the brms way (``b_...``, ``sd_...``,
``r_...``), as in a hand-written PyMC model, keeps its name.
"""

from __future__ import annotations

import re

import arviz as az
import numpy as np
import xarray as xr

__all__ = ["brms_draws", "brms_name", "parameter_class"]

_GROUP_SD = re.compile(r"^(?P<term>.+)\|(?P<group>[^|]+)_sigma$")
_GROUP_EFFECT = re.compile(r"^(?P<term>.+)\|(?P<group>[^|]+)$")
_THRESHOLDS = {"threshold"}
_AUXILIARY = {"sigma", "alpha", "kappa", "nu", "disc", "phi", "shape"}
_BRMS_PREFIXES = ("b_", "sd_", "r_", "cor_")
_OBS_DIM = "__obs__"


def _term(expr: str) -> str:
    return "Intercept" if expr == "1" else expr


def _level(value) -> str:
    if isinstance(value, (np.floating, float)) and float(value).is_integer():
        value = int(value)
    return str(value)


def brms_name(var: str, level=None, position: int | None = None) -> str | None:
    """brms's name for one scalar of Bambi variable ``var``, or None to leave it out.

    ``level`` is the coordinate value along the variable's non-sample dimension, if it
    has one, and ``position`` its 0-based position (used for cutpoints).
    """
    if var.endswith("_offset"):
        return None
    suffix = "" if level is None else f"[{_level(level)}]"
    if var.startswith(_BRMS_PREFIXES):  # already named the brms way
        return var + suffix
    if match := _GROUP_SD.match(var):
        return f"sd_{match['group']}__{_term(match['term'])}"
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


def brms_draws(idata: az.InferenceData | xr.Dataset) -> dict[str, np.ndarray]:
    """Every scalar parameter of a posterior as ``{brms name: array (chain, draw)}``.

    Keeps the posterior's variable order; variables with more than one non-sample
    dimension, or with one value per observation, are left out.
    """
    posterior = idata.posterior if isinstance(idata, az.InferenceData) else idata
    columns: dict[str, np.ndarray] = {}
    for var, values in posterior.data_vars.items():
        extra = [dim for dim in values.dims if dim not in ("chain", "draw")]
        if any(_OBS_DIM in dim for dim in extra) or len(extra) > 1:
            continue
        array = values.transpose("chain", "draw", *extra).to_numpy()
        if not extra:
            name = brms_name(str(var))
            if name is not None:
                columns[name] = array
            continue
        for position, level in enumerate(values[extra[0]].to_numpy()):
            name = brms_name(str(var), level, position)
            if name is not None:
                columns[name] = array[:, :, position]
    return columns
