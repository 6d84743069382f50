"""brms names for Bambi's parameters."""

from __future__ import annotations

import pytest

from course_utils.names import brms_draws, brms_name, parameter_class


@pytest.mark.parametrize(
    ("bambi", "level", "position", "brms"),
    [
        ("Intercept", None, None, "b_Intercept"),
        ("x", None, None, "b_x"),
        ("id", 6, 0, "b_id6"),
        ("treatment", "2", 1, "b_treatment2"),
        ("1|id_sigma", None, None, "sd_id__Intercept"),
        ("x|id_sigma", None, None, "sd_id__x"),
        ("1|id", 6, 0, "r_id[6,Intercept]"),
        ("1|id", "96;434", 0, "r_id[96;434,Intercept]"),
        ("x|id", 6.0, 0, "r_id[6,x]"),
        ("1|id_offset", 6, 0, None),
        ("sigma", None, None, "sigma"),
        ("threshold", 0, 0, "b_Intercept[1]"),
        ("threshold", 5, 5, "b_Intercept[6]"),
        ("sd_actor__Intercept", None, None, "sd_actor__Intercept"),
        ("r_actor", 3, 2, "r_actor[3]"),
    ],
)
def test_brms_name(bambi, level, position, brms):
    assert brms_name(bambi, level, position) == brms


@pytest.mark.parametrize(
    ("name", "kind"),
    [("b_x", "b"), ("sd_id__Intercept", "sd"), ("r_id[6,Intercept]", "r"), ("sigma", "dpar"),
     ("cor_id__Intercept__x", "cor")],
)
def test_parameter_class(name, kind):
    assert parameter_class(name) == kind


def test_brms_draws_flattens_and_drops_offsets(toy_idata):
    draws = brms_draws(toy_idata)
    assert list(draws) == [
        "b_Intercept", "b_x", "sd_g__Intercept",
        "r_g[a,Intercept]", "r_g[b,Intercept]", "r_g[c,Intercept]", "sigma",
    ]
    assert draws["r_g[b,Intercept]"].shape == (4, 500)
    assert (draws["r_g[b,Intercept]"] == toy_idata.posterior["1|g"].sel(g__factor_dim="b").to_numpy()).all()
