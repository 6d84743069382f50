"""m3: the lecture's chimpanzee model, written out in PyMC
(book/crossed-clusters.md). Variables carry brms's names."""
import pymc as pm

M3_FIT = dict(draws=2000, tune=1000, chains=4, random_seed=1,
              target_accept=0.99)
#: What the brms-style summary prints in its header.
M3_DESCRIPTION = {
    "formula": "pulled_left ~ a + b; a ~ 1 + (1 | actor) "
               "+ (1 | block); b ~ 0 + treatment",
    "family": "bernoulli", "links": {"mu": "logit"},
}


def m3_model(chimps):
    coords = {
        "actor": sorted(chimps["actor"].unique()),
        "block": sorted(chimps["block"].unique()),
        "treatment": sorted(chimps["treatment"].unique()),
    }
    actor_idx = chimps["actor"].to_numpy() - 1
    block_idx = chimps["block"].to_numpy() - 1
    treatment_idx = chimps["treatment"].astype(int).to_numpy() - 1
    with pm.Model(coords=coords) as model:
        a_bar = pm.Normal("b_a_Intercept", mu=0, sigma=1.5)
        b = pm.Normal("b_b_treatment", mu=0, sigma=0.5, dims="treatment")
        sigma_actor = pm.Exponential("sd_actor__a_Intercept", lam=1)
        sigma_block = pm.Exponential("sd_block__a_Intercept", lam=1)
        z_actor = pm.Normal("r_actor__a_offset", 0, 1, dims="actor")
        z_block = pm.Normal("r_block__a_offset", 0, 1, dims="block")
        r_actor = pm.Deterministic("r_actor__a", z_actor * sigma_actor,
                                   dims="actor")
        r_block = pm.Deterministic("r_block__a", z_block * sigma_block,
                                   dims="block")
        logit_p = (a_bar + r_actor[actor_idx] + r_block[block_idx]
                   + b[treatment_idx])
        pm.Bernoulli("pulled_left", logit_p=logit_p,
                     observed=chimps["pulled_left"].to_numpy())
    return model
