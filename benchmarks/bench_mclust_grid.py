"""Whole-grid model selection: bayesgmm's 14 mclust models x K = 1..9 against R's mclust and scikit-learn.

Prints, for Old Faithful (272 x 2; or --data iris / diabetes):

* bayesgmm ``select(X, range(1, 10), "all")``: cold (first call in a fresh process, imports not
  counted, compilation included) and warm (median of repeated calls in that process);
* mclust ``Mclust(X, G = 1:9)`` through ``Rscript benchmarks/mclust_time.R`` (first call after
  ``library(mclust)``, and the warm median), when Rscript is on the PATH;
* scikit-learn's ``GaussianMixture`` looped over its four types x K = 1..9 with the same number of
  restarts as mclust (one) and as select's default, with its default BLAS threads and with one thread
  (the faster is kept).

Run: ``python benchmarks/bench_mclust_grid.py [--data faithful] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import json, statistics, sys, time, warnings
    import bayesgmm as bg
    name, repeat, n_init = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X = {"faithful": lambda: bg.datasets.load_faithful(),
         "iris": lambda: bg.datasets.load_iris().drop(columns="species"),
         "diabetes": lambda: bg.datasets.load_diabetes().drop(columns="class")}[name]().to_numpy()
    warnings.simplefilter("ignore")
    times = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        sel = bg.select(X, n_components=range(1, 10), covariance_types="all", random_state=i, n_init=n_init)
        times.append(time.perf_counter() - start)
    print(json.dumps({"cold_s": times[0], "warm_s": statistics.median(times[1:]),
                      "chosen": [sel.best_.covariance_type, sel.best_.n_components]}))
""")


def bayesgmm_times(name: str, repeat: int, n_init: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(repeat), str(n_init)], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={"BAYESGMM_CACHE_DIR": "", **__import__("os").environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def mclust_times(name: str) -> dict | None:
    if shutil.which("Rscript") is None or name != "faithful":
        return None
    out = subprocess.run(["Rscript", str(ROOT / "benchmarks" / "mclust_time.R")], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sklearn_times(name: str, n_init: int) -> float:
    import warnings

    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    import bayesgmm as bg

    X = {"faithful": bg.datasets.load_faithful, "iris": lambda: bg.datasets.load_iris().drop(columns="species"),
         "diabetes": lambda: bg.datasets.load_diabetes().drop(columns="class")}[name]().to_numpy()

    def grid() -> float:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for ct in ("full", "tied", "diag", "spherical"):
                for k in range(1, 10):
                    GaussianMixture(k, covariance_type=ct, n_init=n_init, tol=1e-6, max_iter=1000,
                                    random_state=0).fit(X)
        return time.perf_counter() - start

    default = grid()
    with threadpool_limits(1):
        single = grid()
    return min(default, single)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="faithful", choices=("faithful", "iris", "diabetes"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ours = {n: bayesgmm_times(args.data, args.repeat, n) for n in (1, 10)}
    r = mclust_times(args.data)
    sk = {n: sklearn_times(args.data, n) for n in (1, 10)}
    print(f"data: {args.data}")
    for n, t in ours.items():
        what = "hierarchical start only, as mclust" if n == 1 else "hierarchical + 9 k-means starts, the default"
        print(f"bayesgmm select, 14 models x K=1..9, n_init={n} ({what}): cold {t['cold_s']:.2f} s, "
              f"warm {t['warm_s']:.2f} s, chose {t['chosen']}")
    if r is not None:
        print(f"mclust Mclust(X, G=1:9), 14 models, one hierarchical start: first {r['first_s']:.2f} s, "
              f"warm {r['warm_s']:.2f} s (library load {r['load_s']:.2f} s; mclust {r['mclust']})")
        print(f"  ratio bayesgmm (n_init=1) / mclust: cold {ours[1]['cold_s'] / r['first_s']:.1f}x, "
              f"warm {ours[1]['warm_s'] / r['warm_s']:.2f}x")
    for n, t in sk.items():
        print(f"scikit-learn loop, 4 types x K=1..9, n_init={n}: {t:.2f} s (best of default and 1 BLAS thread); "
              f"bayesgmm's 14 models / sklearn's 4, warm: {ours[n]['warm_s'] / t:.2f}x")


if __name__ == "__main__":
    main()
