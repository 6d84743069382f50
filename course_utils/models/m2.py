"""m2: varying intercepts per person, partial pooling
(book/partial-pooling.md)."""
import bambi as bmb

M2_FIT = dict(draws=2000, tune=1000, chains=4, random_seed=9)


def m2_model(mlm):
    return bmb.Model(
        "con ~ 1 + (1 | id)",
        mlm,
        categorical=["id"],
        priors={
            "Intercept": bmb.Prior("Normal", mu=0, sigma=1.5),
            "1|id": bmb.Prior(
                "Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)
            ),
            "sigma": bmb.Prior("Exponential", lam=1),
        },
    )
