"""Subsampled VI: milliseconds per SVI step, full batch against mini-batches, and the error of the result.

For each data size N (rows drawn from K well-separated D-dimensional Gaussians, diagonal covariances)
it times the SVI step of ``bayesgmm.bayes.infer.run_vi`` (the compiled loop of
``BayesianGaussianMixture(inference="vi")``) with every row per step and with ``--subsample``
rows per step: runs of two lengths (the best of three each), so
``(t_long - t_short) / (steps_long - steps_short)`` is the per-step cost without compilation and
without the evaluation after the loop. It then fits ``BayesianGaussianMixture`` end to end with the same
number of steps for each setting and prints the largest gap between its posterior means and EM's (in
units of the data's standard deviation), the ELBO, and the fit time with compilation. Ratios are
against the full batch of the same run.

Run: ``python benchmarks/bench_vi_subsample.py [--n 100000 1000000] [--d 4] [--k 4]
[--subsample 1000 10000] [--steps 1000] [--timing-steps 100] [--samples 100]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from bayesgmm.bayes import infer
from bayesgmm.bayes.estimator import BayesianGaussianMixture
from bayesgmm.bayes.models import default_priors, gaussian_mixture_model, sites_from_params


def make_data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 6.0, size=(k, d))
    labels = rng.choice(k, size=n, p=np.arange(1, k + 1) / (k * (k + 1) / 2))
    return (centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, size=(k, d))[labels]).astype(np.float32)


def ms_per_step(X: np.ndarray, em: SkGaussianMixture, m: int | None, steps: int) -> float:
    """Per-step cost of the compiled SVI loop, from two run lengths (compilation excluded)."""
    Z = jnp.asarray((X - X.mean(0)) / X.std(0), jnp.float32)
    priors = default_priors(Z, em.n_components)
    means = (em.means_ - X.mean(0)) / X.std(0)
    sites = sites_from_params(em.weights_, means, em.covariances_ / X.std(0) ** 2, "diag", priors.weight_concentration)
    kwargs = {"covariance_type": "diag", "sample_weight": jnp.ones(len(X), jnp.float32)}
    times = {}
    for n_steps in (steps // 4, steps):
        run = lambda seed: infer.run_vi(jax.random.key(seed), gaussian_mixture_model, (Z, priors), kwargs,  # noqa: E731
                                        sites, num_steps=n_steps, num_samples=1, guide="mvn",
                                        subsample_size=m, row_block=65536)
        jax.block_until_ready(run(0))  # compile
        best = np.inf
        for seed in (1, 2, 3):  # the best of three: the machine may be shared
            start = time.perf_counter()
            jax.block_until_ready(run(seed))
            best = min(best, time.perf_counter() - start)
        times[n_steps] = best
    return 1e3 * (times[steps] - times[steps // 4]) / (steps - steps // 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--d", type=int, default=4)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--subsample", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--steps", type=int, default=1000, help="SVI steps of the end-to-end fits")
    parser.add_argument("--timing-steps", type=int, default=100,
                        help="SVI steps of the longer full-batch timing run (10 times more with subsampling)")
    parser.add_argument("--samples", type=int, default=100, help="draws of the end-to-end fits")
    args = parser.parse_args()
    print(f"backend {jax.default_backend()}, {jax.local_device_count()} device(s); D={args.d}, K={args.k}, "
          f"diag covariances, {args.steps} SVI steps, {args.samples} draws")
    header = (f"{'N':>9} {'rows/step':>10} {'ms/step':>9} {'x full':>7} {'fit s':>7} {'max|mean-EM|/sd':>16} "
              f"{'max|mean-full|/sd':>18} {'ELBO':>14}")
    print(header)
    for n in args.n:
        X = make_data(n, args.d, args.k)
        em = SkGaussianMixture(args.k, covariance_type="diag", random_state=0).fit(X)
        sd = X.std(0)
        full_ms, full_means = None, None
        for m in [None, *args.subsample]:
            # Mini-batch steps are cheap: time more of them, so each run lasts long enough to measure.
            step_ms = ms_per_step(X, em, m, args.timing_steps * (1 if m is None else 10))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a large N leaves the pointwise log-likelihood out, with a warning
                fit = BayesianGaussianMixture(args.k, covariance_type="diag", inference="vi", vi_steps=args.steps,
                                              num_samples=args.samples, vi_subsample_size=m, init=em,
                                              random_state=0).fit(X)
            order = np.argsort(fit.means_[:, 0])
            means = fit.means_[order]
            em_gap = np.max(np.abs(means - em.means_[np.argsort(em.means_[:, 0])]) / sd)
            if m is None:
                full_ms, full_means = step_ms, means
            full_gap = np.max(np.abs(means - full_means) / sd)
            print(f"{n:>9} {('all' if m is None else m):>10} {step_ms:>9.2f} {full_ms / step_ms:>7.1f} "
                  f"{fit.fit_time_:>7.1f} {em_gap:>16.4f} {full_gap:>18.4f} {fit.elbo_:>14.1f}", flush=True)


if __name__ == "__main__":
    main()
