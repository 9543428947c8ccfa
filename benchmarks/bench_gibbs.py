"""Seconds per 1000 sweeps: the Gibbs sampler against NUTS on N=500, K=3, D=2 (full), both through
BayesianGaussianMixture, both timed on a second fit (compiled programs reused), in the same run.

Usage: BAYESGMM_CACHE_DIR= python benchmarks/bench_gibbs.py
"""

import time
import warnings

import numpy as np

from bayesgmm.bayes.estimator import BayesianGaussianMixture


def data(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 3.5]])
    return np.concatenate([rng.normal(c, 1.0, size=(n, 2)) for c, n in zip(centers, (170, 165, 165))])


def timed(inference: str, X: np.ndarray, chains: int, warmup: int, samples: int) -> tuple[float, float, float]:
    fits = []
    for seed in (0, 1):  # the first fit compiles; time the second
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            bgm = BayesianGaussianMixture(3, inference=inference, num_chains=chains, num_warmup=warmup,
                                          num_samples=samples, random_state=seed).fit(X)
            fits.append(time.perf_counter() - start)
    ess = float(bgm.summary(kind="diagnostics")["ess_bulk"].min())
    return fits[0], fits[1], ess


def main() -> None:
    X = data()
    chains, warmup, samples = 4, 500, 1000
    sweeps = chains * (warmup + samples)
    rows = {}
    for inference in ("gibbs", "nuts"):
        first, second, ess = timed(inference, X, chains, warmup, samples)
        rows[inference] = second
        print(f"{inference:5s}: first fit {first:6.1f} s, second {second:6.2f} s, "
              f"{1000 * second / sweeps:6.3f} s per 1000 iterations (fit total / chains x iterations), "
              f"min bulk ESS {ess:7.0f}, ESS/s {ess / second:8.0f}")
    print(f"NUTS / Gibbs time per iteration: {rows['nuts'] / rows['gibbs']:.1f}x")


if __name__ == "__main__":
    main()
