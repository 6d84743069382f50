"""m3_bambi: the chimpanzee model as a Bambi user writes it
(book/crossed-clusters.md)."""
import bambi as bmb

M3_BAMBI_FIT = dict(draws=2000, tune=1000, chains=4, random_seed=1,
                    target_accept=0.99)


def m3_bambi_model(chimps):
    return bmb.Model(
        "pulled_left ~ 0 + treatment + (1 | actor) + (1 | block)",
        chimps,
        family="bernoulli",
        categorical=["treatment", "actor", "block"],
        priors={
            "treatment": bmb.Prior("Normal", mu=0, sigma=1.5),
            "1|actor": bmb.Prior(
                "Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)
            ),
            "1|block": bmb.Prior(
                "Normal", mu=0, sigma=bmb.Prior("Exponential", lam=1)
            ),
        },
    )
