"""NUTS: bayesgmm's BayesianGaussianMixture against a plain NumPyro mixture model, in one run.

Two cases, the same chains, warm-up and draws for both samplers:

- Old Faithful, K=2 full covariances: the plain model happens to work;
- three overlapping 2-D clusters, K=3 (unit variance, centres ``--spacing`` apart, default 3.5): the
  plain model's chains find different labellings.

For each fit it prints the worst R-hat and the smallest bulk ESS over weights, means and covariances
(bayesgmm: after relabelling; plain model: on its raw labels, which is what its user sees, and, to
compare the samplers alone, after bayesgmm's relabelling), the wall time of the fit with compilation
included, and the smallest bulk ESS per second. The plain model is
what a NumPyro user would write: Dirichlet(1) weights, Normal means and half-normal scales centred
on and scaled to the data, LKJ-Cholesky correlations, a MixtureSameFamily likelihood, NumPyro's
default initialisation (uniform in [-2, 2] on the unconstrained space), chains run one after another
(NumPyro's fallback for one device). bayesgmm gets the same Dirichlet(1) weight prior.

Run: ``python benchmarks/bench_nuts.py [--chains 4] [--warmup 1000] [--draws 1000]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from arviz_base import from_dict
from arviz_stats import ess, rhat
from numpyro.infer import MCMC, NUTS

from bayesgmm.bayes.estimator import BayesianGaussianMixture
from bayesgmm.bayes.models import MixtureDraws, cov_factor_from_covariances
from bayesgmm.bayes.relabel import relabel
from bayesgmm.datasets import load_faithful

PARAMETERS = ("weights", "means", "covariances")


def plain_model(X: jax.Array, n_components: int) -> None:
    """The obvious NumPyro Gaussian mixture, on the raw data."""
    n, d = X.shape
    loc, spread = jnp.mean(X, axis=0), jnp.std(X, axis=0)
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.ones(n_components)))
    with numpyro.plate("component", n_components):
        means = numpyro.sample("means", dist.Normal(loc, 2 * spread).to_event(1))
        scales = numpyro.sample("scales", dist.HalfNormal(spread).to_event(1))
        corr_cholesky = numpyro.sample("corr_cholesky", dist.LKJCholesky(d, 2.0))
    scale_tril = scales[..., :, None] * corr_cholesky
    components = dist.MultivariateNormal(means, scale_tril=scale_tril)
    with numpyro.plate("obs", n):
        numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(probs=weights), components), obs=X)


def diagnostics(posterior: dict[str, np.ndarray]) -> tuple[float, float]:
    """Worst R-hat and smallest bulk ESS over every scalar of the given (chain, draw, ...) arrays."""
    tree = from_dict({"posterior": posterior})
    r_hat, ess_bulk = rhat(tree), ess(tree, method="bulk")
    worst = max(float(r_hat[name].max()) for name in posterior)
    smallest = min(float(ess_bulk[name].min()) for name in posterior)
    return worst, smallest


def run_plain(X: np.ndarray, k: int, chains: int, warmup: int, draws: int, seed: int) -> dict[str, float]:
    start = time.perf_counter()
    mcmc = MCMC(NUTS(plain_model), num_warmup=warmup, num_samples=draws, num_chains=chains,
                chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.key(seed), jnp.asarray(X, jnp.float32), k, extra_fields=("diverging",))
    samples = mcmc.get_samples(group_by_chain=True)
    jax.block_until_ready(samples)
    seconds = time.perf_counter() - start
    scale_tril = samples["scales"][..., :, None] * samples["corr_cholesky"]
    posterior = {"weights": np.asarray(samples["weights"]), "means": np.asarray(samples["means"]),
                 "covariances": np.asarray(scale_tril @ jnp.swapaxes(scale_tril, -1, -2))}
    worst, smallest = diagnostics(posterior)
    divergences = int(np.sum(np.asarray(mcmc.get_extra_fields()["diverging"])))
    return {"r_hat": worst, "ess": smallest, "seconds": seconds, "divergences": divergences, "posterior": posterior}


def relabelled_diagnostics(posterior: dict[str, np.ndarray], reference: BayesianGaussianMixture) -> tuple[float, float]:
    """Diagnostics of the plain model's draws after bayesgmm's relabelling (against bayesgmm's posterior mean)."""
    n_chains, n_draws = posterior["weights"].shape[:2]
    cov = jnp.asarray(posterior["covariances"].reshape((-1,) + posterior["covariances"].shape[2:]))
    draws = MixtureDraws(jnp.asarray(posterior["weights"].reshape(n_chains * n_draws, -1)),
                         jnp.asarray(posterior["means"].reshape((n_chains * n_draws,) + posterior["means"].shape[2:])),
                         cov, cov_factor_from_covariances(cov, "full"))
    ref_cov = jnp.asarray(reference.covariances_, jnp.float32)
    ref = MixtureDraws(jnp.asarray(reference.weights_, jnp.float32), jnp.asarray(reference.means_, jnp.float32),
                       ref_cov, cov_factor_from_covariances(ref_cov, "full"))
    relabelled, _, _ = relabel(draws, ref, "full")
    return diagnostics({name: np.asarray(getattr(relabelled, name)).reshape((n_chains, n_draws) + getattr(
        relabelled, name).shape[1:]) for name in PARAMETERS})


def run_bayesgmm(X: np.ndarray, k: int, chains: int, warmup: int, draws: int, seed: int) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = BayesianGaussianMixture(k, covariance_type="full", weight_concentration_prior=1.0, num_chains=chains,
                                      num_warmup=warmup, num_samples=draws, random_state=seed).fit(X)
    posterior = {name: fit.idata_["posterior"][name].values for name in PARAMETERS}
    worst, smallest = diagnostics(posterior)
    return {"r_hat": worst, "ess": smallest, "seconds": fit.fit_time_, "divergences": fit.n_divergences_, "fit": fit}


def overlapping_clusters(seed: int = 0, spacing: float = 3.5, per_cluster: int = 100) -> np.ndarray:
    """Three unit-variance 2-D clusters on an equilateral triangle with side ``spacing``."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [spacing, 0.0], [spacing / 2, spacing * np.sqrt(3) / 2]])
    return np.concatenate([rng.normal(c, 1.0, size=(per_cluster, 2)) for c in centers])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spacing", type=float, default=3.5,
                        help="distance between the overlapping clusters' centres, in cluster standard deviations")
    args = parser.parse_args()
    cases = [("Old Faithful, K=2", load_faithful().to_numpy(), 2),
             (f"3 clusters {args.spacing:g} sd apart, K=3", overlapping_clusters(args.seed, args.spacing), 3)]
    print(f"{args.chains} chains x ({args.warmup} warm-up + {args.draws} draws); devices: {jax.devices()}; "
          f"time includes compilation (and EM for bayesgmm)")
    header = (f"{'case':30s} {'sampler':18s} {'R-hat max':>10s} {'ESS min':>9s} {'seconds':>8s} {'ESS/s':>8s} "
              f"{'div':>5s}")
    print(header)
    print("-" * len(header))
    for name, X, k in cases:
        ours = run_bayesgmm(X, k, args.chains, args.warmup, args.draws, args.seed)
        plain = run_plain(X, k, args.chains, args.warmup, args.draws, args.seed)
        r_hat, ess_min = relabelled_diagnostics(plain["posterior"], ours["fit"])
        rows = [("bayesgmm", ours), ("plain (raw labels)", plain),
                ("plain, relabelled", {**plain, "r_hat": r_hat, "ess": ess_min})]
        for sampler, r in rows:
            print(f"{name:30s} {sampler:18s} {r['r_hat']:10.3f} {r['ess']:9.0f} {r['seconds']:8.1f} "
                  f"{r['ess'] / r['seconds']:8.1f} {r['divergences']:5d}")
        ratio = (ours["ess"] / ours["seconds"]) / (plain["ess"] / plain["seconds"])
        fair = (ours["ess"] / ours["seconds"]) / (ess_min / plain["seconds"])
        works = plain["r_hat"] <= 1.01
        print(f"{'':30s} ESS/s bayesgmm / plain: {ratio:.2f}x on raw labels"
              f"{'' if works else ' (plain R-hat > 1.01: label switching, its raw ESS is not meaningful)'}; "
              f"{fair:.2f}x against the relabelled plain draws")


if __name__ == "__main__":
    main()
