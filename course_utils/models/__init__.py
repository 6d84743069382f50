"""The lecture's models, each defined once.

The gap it fills: the chapters write their models in view, and the parity appendix, the
exercises' reference posterior (:mod:`autograder.reference`), the benchmarks and the
tests need the very same models. Each module here holds one model: a function that
builds it from the data as the chapter prepares them (``m_varying_model(trolley)``,
built, not fitted) and the arguments the chapter fits it with (``M_VARYING_FIT``, for
:func:`course_utils.fitting.fit`, or :func:`~course_utils.fitting.fit_pymc` for the
PyMC model ``m3``). A chapter shows and runs the module's own text (MyST-NB's
``:load:`` option of a code cell), so the code a reader sees is the code everything else
runs.

:data:`LECTURE` lists them (name -> data set), :func:`build` builds one by name,
:func:`prepared` gives a data set as the chapters prepare it, in view, before modelling,
and :func:`fit_model` fits one as its chapter does (for code that loops over the models:
the appendix, the reference posterior, the benchmarks).
"""

from __future__ import annotations

from importlib import import_module

import pandas as pd

from ..data import load

__all__ = ["LECTURE", "build", "fit_model", "prepared", "settings"]

#: The lecture's models in the order the chapters fit them: name -> data set they model.
LECTURE = {"m1": "mlm", "m2": "mlm", "m3": "chimpanzees", "m3_bambi": "chimpanzees",
           "m_simple": "trolley", "m_varying": "trolley"}


def build(name: str, data):
    """The model ``name`` (a key of :data:`LECTURE`) on its prepared data set."""
    return getattr(import_module(f"{__name__}.{name}"), f"{name}_model")(data)


def settings(name: str) -> dict:
    """A copy of the arguments the chapter fits ``name`` with (``M1_FIT``, ...)."""
    return dict(getattr(import_module(f"{__name__}.{name}"), f"{name.upper()}_FIT"))


def prepared(dataset: str) -> pd.DataFrame:
    """A data set (``"mlm"``, ``"chimpanzees"``, ``"trolley"``) as its chapter prepares it:
    the chimpanzees' four treatments as labels ``"1"`` to ``"4"``, Trolley's ratings as an
    ordered category."""
    data = load(dataset)
    if dataset == "chimpanzees":
        data["treatment"] = (1 + data["prosoc_left"] + 2 * data["condition"]).astype(str)
    elif dataset == "trolley":
        data["response"] = pd.Categorical(data["response"], categories=range(1, 8), ordered=True)
    return data


def fit_model(name: str, data: pd.DataFrame, **overrides):
    """``name`` built on ``data`` (its prepared data set) and fitted as its chapter fits
    it: with :func:`settings`, updated by ``overrides`` (another seed, a cache folder).
    ``m3``, written in PyMC, goes through :func:`~course_utils.fitting.fit_pymc` with its
    brms-style description, the others through :func:`~course_utils.fitting.fit`.

    Returns ``(model, idata)``.
    """
    from ..fitting import fit, fit_pymc

    model = build(name, data)
    options = {**settings(name), **overrides}
    if name == "m3":
        from .m3 import M3_DESCRIPTION

        return model, fit_pymc(name, model, description={**M3_DESCRIPTION, "nobs": len(data)}, **options)
    return model, fit(model, name, **options)
