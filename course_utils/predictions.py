"""Posterior predictions as tidy draws, after tidybayes's ``epred_draws``.

:func:`epred_draws` gives, for each row of new data, the posterior draws of the
expected outcome (the mean of the response distribution: ``mu`` for a gaussian model,
the probability for a bernoulli one), with the clusters' own varying effects included
(brms ``re_formula = NULL``).

Example
-------
>>> people = mlm[["id"]].drop_duplicates()                         # doctest: +SKIP
>>> m2_epred = epred_draws(m2, m2_idata, people)                 # doctest: +SKIP
>>> mean_qi(m2_epred, ".epred", by=["id"])                        # doctest: +SKIP
"""

from __future__ import annotations

import arviz as az
import bambi as bmb
import numpy as np
import pandas as pd

__all__ = ["epred_draws"]


def epred_draws(model: bmb.Model, idata: az.InferenceData, newdata: pd.DataFrame) -> pd.DataFrame:
    """Draws of the expected outcome for each row of ``newdata``, long.

    Returns ``newdata``'s columns, ``.row`` (the row's position in ``newdata``, from 0),
    ``.epred`` and the draw indices, one row per (newdata row, draw).
    """
    newdata = newdata.reset_index(drop=True)
    predicted = model.predict(idata, kind="response_params", data=newdata, inplace=False)
    param = model.family.likelihood.parent
    values = predicted.posterior[param].transpose("chain", "draw", "__obs__").to_numpy()
    n_chain, n_draw, n_obs = values.shape
    frame = newdata.loc[np.repeat(np.arange(n_obs), n_chain * n_draw)].reset_index(drop=True)
    frame[".row"] = np.repeat(np.arange(n_obs), n_chain * n_draw)
    frame[".epred"] = values.transpose(2, 0, 1).reshape(-1)
    frame[".chain"] = np.tile(np.repeat(np.arange(1, n_chain + 1), n_draw), n_obs)
    frame[".iteration"] = np.tile(np.arange(1, n_draw + 1), n_chain * n_obs)
    frame[".draw"] = np.tile(np.arange(1, n_chain * n_draw + 1), n_obs)
    frame.attrs["groups"] = [*newdata.columns, ".row"]
    return frame
