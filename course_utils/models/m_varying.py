"""m_varying: m_simple plus one intercept per participant
(book/trolley.md)."""
import bambi as bmb

M_VARYING_FIT = dict(draws=1000, tune=1000, chains=4, random_seed=71,
                     inference_method="nutpie", adaptation="low_rank")


def m_varying_model(trolley, noncentered=False):
    return bmb.Model(
        "response ~ action + intention + contact + (1 | id)",
        trolley,
        family="cumulative",
        priors={
            "threshold": bmb.Prior("Normal", mu=0, sigma=1.5),
            **{b: bmb.Prior("Normal", mu=0, sigma=0.5)
               for b in ("action", "intention", "contact")},
            "1|id": bmb.Prior(
                "Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)
            ),
        },
        noncentered=noncentered,
    )
