"""m1: one mean per person, no pooling (book/partial-pooling.md)."""
import bambi as bmb

M1_FIT = dict(draws=2000, tune=1000, chains=4, random_seed=9)


def m1_model(mlm):
    return bmb.Model(
        "con ~ 0 + id",
        mlm,
        categorical=["id"],
        priors={
            "id": bmb.Prior("Normal", mu=0, sigma=1.5),
            "sigma": bmb.Prior("Exponential", lam=1),
        },
    )
