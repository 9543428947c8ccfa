"""EM speed: bayesgmm against scikit-learn, side by side in one process.

For each workload (synthetic data with random full covariances) both libraries run from the same
initial parameters for a fixed number of iterations (tol=0), so the time per EM iteration is
comparable. bayesgmm's compile time is measured apart (first call minus second call). Also times
the full ``select`` grid on Old Faithful against the same grid fitted with scikit-learn in a loop,
and reports the GFLOP/s of the D=64 K=32 workload against this machine's matmul GFLOP/s.

Usage:  python benchmarks/bench_em.py [--quick] [--dtype float64|float32|both]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import bayesgmm as bg

warnings.filterwarnings("ignore", category=ConvergenceWarning)

WORKLOADS = [  # (n_samples, n_features, n_components, iterations)
    (100_000, 8, 8, 20),
    (1_000_000, 2, 5, 10),
    (20_000, 64, 32, 5),
    (1_000, 2, 3, 50),
]


def synthetic(n, d, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 5, size=(k, d))
    a = rng.normal(size=(k, d, d)) / math.sqrt(d)
    covs = a @ np.swapaxes(a, 1, 2) + 0.1 * np.eye(d)
    labels = rng.integers(0, k, size=n)
    chol = np.linalg.cholesky(covs)
    X = means[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((n, d)))
    return X.astype(dtype)


def timed(fn, repeat=1):
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def em_iteration_flops(n, d, k):
    """Multiply-adds x 2 of the full-covariance E-step and scatter: 2 * 2 * n k d^2."""
    return 4.0 * n * k * d * d


def matmul_gflops(dtype, size=2048):
    a = jnp.ones((size, size), dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t = timed(lambda: f(a).block_until_ready(), repeat=3)
    return 2 * size**3 / t / 1e9


def bench_workload(n, d, k, iterations, dtype):
    X = synthetic(n, d, k, dtype)
    init = SkGaussianMixture(k, max_iter=1, random_state=0).fit(X[:20000])
    kwargs = dict(weights_init=init.weights_, means_init=init.means_, precisions_init=init.precisions_, tol=0.0,
                  max_iter=iterations)
    sk = SkGaussianMixture(k, **kwargs)
    sk_time = timed(lambda: sk.fit(X))
    ours = bg.GaussianMixture(k, **kwargs)
    first = timed(lambda: ours.fit(X))
    warm = timed(lambda: ours.fit(X), repeat=2)
    one = bg.GaussianMixture(k, **{**kwargs, "max_iter": 1})
    one.fit(X)
    overhead = timed(lambda: one.fit(X), repeat=2)  # transfer + init + one iteration
    per_iter_ours = (warm - overhead) / (iterations - 1)
    per_iter_sk = sk_time / iterations
    agree = abs(ours.lower_bound_ - sk.lower_bound_) / abs(sk.lower_bound_)
    return {
        "workload": f"N={n:,} D={d} K={k} {np.dtype(dtype).name}",
        "sk_ms_iter": per_iter_sk * 1e3, "ours_ms_iter": per_iter_ours * 1e3, "ratio_iter": per_iter_sk / per_iter_ours,
        "sk_fit_s": sk_time, "ours_fit_s": warm, "compile_s": first - warm, "ratio_fit": sk_time / warm,
        "gflops": em_iteration_flops(n, d, k) / per_iter_ours / 1e9, "rel_diff_lower_bound": agree,
    }


def bench_select():
    X = bg.datasets.load_faithful().to_numpy()
    grid = dict(n_components=range(1, 10), covariance_types=("full", "tied", "diag", "spherical"))
    first = timed(lambda: bg.select(X, random_state=0, **grid))
    warm = timed(lambda: bg.select(X, random_state=0, **grid))

    def sklearn_grid():
        for ct in grid["covariance_types"]:
            for k in grid["n_components"]:
                SkGaussianMixture(k, covariance_type=ct, n_init=10, tol=1e-6, max_iter=1000, random_state=0).fit(X)

    sk = timed(sklearn_grid)
    return {"sk_s": sk, "ours_first_s": first, "ours_warm_s": warm, "ratio_first": sk / first, "ratio_warm": sk / warm}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller N (a smoke run)")
    parser.add_argument("--dtype", default="both", choices=["float64", "float32", "both"])
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
          f"on {jax.devices()[0].device_kind}")
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    for dtype in dtypes:
        with bg.estimators.precision_scope(np.dtype(dtype)):
            peak = matmul_gflops(dtype)
            print(f"\n{dtype}: matmul {peak:.1f} GFLOP/s")
            header = (f"{'workload':34s} {'sk ms/it':>9s} {'ours ms/it':>10s} {'x/it':>6s} {'sk fit s':>8s} "
                      f"{'ours fit s':>10s} {'x fit':>6s} {'compile s':>9s} {'GFLOP/s':>8s} {'|dLB|/LB':>9s}")
            print(header)
            for n, d, k, iterations in WORKLOADS:
                if args.quick:
                    n = min(n, 20_000)
                r = bench_workload(n, d, k, iterations, dtype)
                print(f"{r['workload']:34s} {r['sk_ms_iter']:9.2f} {r['ours_ms_iter']:10.2f} {r['ratio_iter']:6.1f} "
                      f"{r['sk_fit_s']:8.2f} {r['ours_fit_s']:10.2f} {r['ratio_fit']:6.1f} {r['compile_s']:9.2f} "
                      f"{r['gflops']:8.1f} {r['rel_diff_lower_bound']:9.1e}")
    r = bench_select()
    print(f"\nselect on Old Faithful, K=1..9 x 4 covariance types, n_init=10, tol=1e-6: scikit-learn loop "
          f"{r['sk_s']:.1f} s; bayesgmm {r['ours_first_s']:.1f} s first call (compile included, "
          f"{r['ratio_first']:.1f}x), {r['ours_warm_s']:.1f} s warm ({r['ratio_warm']:.1f}x)")


if __name__ == "__main__":
    main()
