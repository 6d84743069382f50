"""m_simple: the Trolley ratings, ignoring who answered
(book/trolley.md)."""
import bambi as bmb

M_SIMPLE_FIT = dict(draws=1000, tune=1000, chains=4, random_seed=71,
                    inference_method="nutpie", adaptation="low_rank")


def m_simple_model(trolley):
    return bmb.Model(
        "response ~ action + intention + contact",
        trolley,
        family="cumulative",
        priors={
            "threshold": bmb.Prior("Normal", mu=0, sigma=1.5),
            **{b: bmb.Prior("Flat")
               for b in ("action", "intention", "contact")},
        },
    )
