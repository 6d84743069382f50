"""brms names for Bambi's parameters."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from course_utils.names import brms_draws, brms_name, parameter_class, parse_brms_name


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
    ],
)
def test_brms_name(bambi, level, position, brms):
    assert brms_name(bambi, level, position) == brms


@pytest.mark.parametrize(
    ("var", "level", "position", "brms"),
    [
        ("sd_actor__Intercept", None, None, "sd_actor__Intercept"),
        ("r_actor__a", 3, 2, "r_actor__a[3,Intercept]"),
        ("b_b_treatment", "2", 1, "b_b_treatment2"),
        ("b_a_Intercept", None, None, "b_a_Intercept"),
    ],
)
def test_hand_written_brms_names_are_kept(var, level, position, brms):
    assert brms_name(var, level, position, bambi=False) == brms


def test_bambi_predictors_named_like_brms_are_still_coefficients():
    assert brms_name("sd_income") == "b_sd_income"
    assert brms_name("r_x", 2, 1) == "b_r_x2"


@pytest.mark.parametrize(
    ("name", "kind"),
    [("b_x", "b"), ("sd_id__Intercept", "sd"), ("r_id[6,Intercept]", "r"), ("sigma", "dpar"),
     ("cor_id__Intercept__x", "cor")],
)
def test_parameter_class(name, kind):
    assert parameter_class(name) == kind


def test_brms_draws_flattens_and_drops_offsets(toy_idata):
    draws = brms_draws(toy_idata)
    assert list(draws) == [  # brms's order: b_, sd_, other parameters, r_
        "b_Intercept", "b_x", "sd_g__Intercept", "sigma",
        "r_g[a,Intercept]", "r_g[b,Intercept]", "r_g[c,Intercept]",
    ]
    assert draws["r_g[b,Intercept]"].shape == (4, 500)
    assert (draws["r_g[b,Intercept]"] == toy_idata.posterior["1|g"].sel(g__factor_dim="b").to_numpy()).all()


def test_factor_valued_varying_slopes_keep_every_level(rng):
    # Bambi's (treatment | actor) with treatment levels 2 and 3 beside the reference.
    idata = az.from_dict({"posterior": {
            "treatment|actor_sigma": rng.normal(size=(2, 10, 2)),
            "treatment|actor": rng.normal(size=(2, 10, 3, 2)),
        }},
        coords={"treatment__expr_dim": ["2", "3"], "actor__factor_dim": [1, 2, 3]},
        dims={"treatment|actor_sigma": ["treatment__expr_dim"],
              "treatment|actor": ["actor__factor_dim", "treatment__expr_dim"]},
    )
    idata.posterior.attrs["modeling_interface"] = "bambi"
    draws = brms_draws(idata)
    assert list(draws)[:2] == ["sd_actor__treatment2", "sd_actor__treatment3"]
    assert "r_actor[3,treatment2]" in draws and len(draws) == 2 + 6
    np.testing.assert_array_equal(draws["r_actor[2,treatment3]"], idata.posterior["treatment|actor"][:, :, 1, 1])


def test_unknown_multidimensional_variables_are_an_error(rng):
    idata = az.from_dict({"posterior": {"weird": rng.normal(size=(2, 10, 3, 2))}})
    with pytest.raises(ValueError, match="weird has dimensions"):
        brms_draws(idata)


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("r_id[96;434,Intercept]", {"class": "r", "group": "id", "level": "96;434", "term": "Intercept"}),
        ("sd_actor__a_Intercept", {"class": "sd", "group": "actor", "term": "a_Intercept"}),
        ("cor_id__Intercept__x", {"class": "cor", "group": "id", "term": "Intercept,x"}),
        ("b_x", {"class": "b"}),
        ("sigma", {"class": "dpar"}),
    ],
)
def test_parse_brms_name(name, parsed):
    assert parse_brms_name(name) == parsed
