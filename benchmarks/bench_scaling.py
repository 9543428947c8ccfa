"""Scaling of EM: time per iteration and peak memory against N, K and D, for bayesgmm,
scikit-learn and (when installed: ``pip install gmmx``) gmmx, side by side; and 1 vs 4 devices.

Every measurement runs in its own subprocess, so its peak resident memory (ru_maxrss) is its own.
The time per iteration is (fit with 1 + ITERS iterations - fit with 1 iteration) / ITERS, after
a first call that compiles, so compilation, transfer and initialisation are excluded.

Usage:
    python benchmarks/bench_scaling.py              # the N, K, D and device tables (float32)
    python benchmarks/bench_scaling.py --big        # adds N=10,000,000 D=16 K=32 full float32
    python benchmarks/bench_scaling.py --quick      # small sizes, a smoke run
On a machine with an accelerator the same command measures it (the device is printed); for the
GPU run: ``pip install -U "jax[cuda12]"`` then ``python benchmarks/bench_scaling.py --big --json gpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

ITERS = 3


def _synthetic(n, d, k, dtype):
    import numpy as np

    rng = np.random.default_rng(0)
    means = rng.normal(0, 4, size=(k, d))
    labels = rng.integers(0, k, size=n)
    X = np.empty((n, d), dtype=dtype)
    step = 1_000_000
    for start in range(0, n, step):  # in blocks: no float64 copy of a 10^7 x D array
        stop = min(n, start + step)
        X[start:stop] = means[labels[start:stop]] + rng.standard_normal((stop - start, d))
    return X


def _measure(lib: str, n: int, d: int, k: int, dtype: str) -> dict:
    """Runs inside the subprocess: time per iteration (ms) of one library on one workload."""
    import warnings

    import numpy as np

    warnings.filterwarnings("ignore")
    X = _synthetic(n, d, k, dtype)
    init_rows = X[: min(n, 20000)].astype(np.float64)
    if lib == "bayesgmm":
        import jax

        import bayesgmm as bg

        from sklearn.mixture import GaussianMixture as Sk

        init = Sk(k, max_iter=1, random_state=0).fit(init_rows)
        kwargs = dict(weights_init=init.weights_, means_init=init.means_, precisions_init=init.precisions_, tol=0.0)

        def run(iterations):
            bg.GaussianMixture(k, max_iter=iterations, **kwargs).fit(X)

        device = jax.devices()[0].device_kind + f" x{jax.device_count()}"
    elif lib == "sklearn":
        from sklearn.mixture import GaussianMixture as Sk

        init = Sk(k, max_iter=1, random_state=0).fit(init_rows)
        kwargs = dict(weights_init=init.weights_, means_init=init.means_, precisions_init=init.precisions_, tol=0.0)

        def run(iterations):
            Sk(k, max_iter=iterations, **kwargs).fit(X)

        device = "numpy"
    elif lib == "gmmx":
        import jax
        from gmmx import EMFitter, GaussianMixtureModelJax

        x = jax.device_put(X)

        def run(iterations):
            gmm = GaussianMixtureModelJax.create(n_components=k, n_features=d)
            result = EMFitter(tol=0.0, max_iter=iterations).fit(x=x, gmm=gmm)
            jax.block_until_ready(result)

        device = jax.devices()[0].device_kind
    else:
        raise ValueError(lib)
    start = time.perf_counter()
    run(1 + ITERS)
    compile_and_first = time.perf_counter() - start
    run(1)  # gmmx compiles once per max_iter
    timings = []
    for iterations in (1, 1 + ITERS):
        start = time.perf_counter()
        run(iterations)
        timings.append(time.perf_counter() - start)
    per_iter = max(timings[1] - timings[0], 1e-9) / ITERS
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"lib": lib, "n": n, "d": d, "k": k, "dtype": dtype, "ms_per_iter": per_iter * 1e3,
            "first_call_s": compile_and_first, "peak_mb": peak_mb, "data_mb": X.nbytes / 2**20, "device": device}


def _spawn(lib, n, d, k, dtype, devices=1, timeout=1800) -> dict | None:
    env = dict(os.environ)
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    cmd = [sys.executable, __file__, "--one", lib, str(n), str(d), str(k), dtype]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, json.JSONDecodeError) as err:
        print(f"  {lib} N={n} D={d} K={k}: failed ({type(err).__name__})", flush=True)
        return None


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=5, metavar=("LIB", "N", "D", "K", "DTYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--big", action="store_true", help="add N=1e7 D=16 K=32 (bayesgmm only)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if args.one:
        lib, n, d, k, dtype = args.one
        print(json.dumps(_measure(lib, int(n), int(d), int(k), dtype)))
        return
    libs = ["bayesgmm", "sklearn"] + (["gmmx"] if _have("gmmx") else [])
    ns = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000, 10_000_000]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; float32; full covariances; "
          f"time per EM iteration (ms) and peak RSS (MB); libraries: {', '.join(libs)}", flush=True)
    rows = []
    grids = [("N", [(n, 8, 8) for n in ns]),
             ("K", [(100_000, 8, k) for k in (2, 8, 32)]),
             ("D", [(100_000, d, 8) for d in (2, 16, 64)])]
    for name, grid in grids:
        print(f"\nagainst {name}:")
        print(f"{'N':>11s} {'D':>3s} {'K':>3s} " + " ".join(f"{lib + ' ms':>13s} {lib + ' MB':>13s}" for lib in libs)
              + f" {'sk/ours':>8s}")
        for n, d, k in grid:
            results = {}
            for lib in libs:
                if lib != "bayesgmm" and n > 1_000_000:
                    results[lib] = None  # minutes per iteration: not measured
                    continue
                results[lib] = _spawn(lib, n, d, k, "float32")
                if results[lib]:
                    rows.append(results[lib])
            cells = " ".join(f"{r['ms_per_iter']:13.1f} {r['peak_mb']:13.0f}" if r else f"{'-':>13s} {'-':>13s}"
                             for r in results.values())
            ours, sk = results.get("bayesgmm"), results.get("sklearn")
            ratio = f"{sk['ms_per_iter'] / ours['ms_per_iter']:8.1f}" if ours and sk else f"{'-':>8s}"
            print(f"{n:11,d} {d:3d} {k:3d} {cells} {ratio}", flush=True)
    n_devices_rows = 100_000 if args.quick else 1_000_000
    print(f"\n1 vs 4 forced host devices (bayesgmm, N={n_devices_rows:,d} D=8 K=8):")
    for devices in (1, 4):
        r = _spawn("bayesgmm", n_devices_rows, 8, 8, "float32", devices=devices)
        if r:
            rows.append({**r, "devices": devices})
            print(f"  {r['device']:>20s}: {r['ms_per_iter']:.1f} ms/iter, peak {r['peak_mb']:.0f} MB", flush=True)
    if args.big:
        print("\nN=10,000,000 D=16 K=32 full float32 (bayesgmm):")
        r = _spawn("bayesgmm", 10_000_000, 16, 32, "float32", timeout=3600)
        if r:
            rows.append(r)
            print(f"  {r['ms_per_iter'] / 1e3:.1f} s/iter, peak {r['peak_mb']:.0f} MB (data {r['data_mb']:.0f} MB), "
                  f"first call {r['first_call_s']:.0f} s on {r['device']}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
