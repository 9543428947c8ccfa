"""What a user waits for, in fresh processes: bayesgmm against scikit-learn, cold and warm cache.

Each figure is the wall time of a new Python process (imports, data loading, compilation, the fit,
exit), the median of ``--repeat`` runs:

* ``fit``: ``GaussianMixture(3).fit(X)`` on Old Faithful;
* ``select``: K = 1..9 x the four scikit-learn types with 10 k-means restarts per cell, tol 1e-6,
  up to 1000 iterations (scikit-learn: the loop over the same grid, same settings, with its default
  BLAS threads and with one thread through threadpoolctl; the faster is kept);
* ``demo``: ``bayesgmm demo`` (no scikit-learn twin);
* ``sizes``: one process fitting N = 150, 200, 272, 1000 rows x K = 2..4 (the notebook pattern).

"cold" runs with an empty compilation cache (a new ``BAYESGMM_CACHE_DIR``), "warm" with the cache
that the cold run filled. Ratios are bayesgmm / scikit-learn (lower is better for bayesgmm).

Run: ``python benchmarks/bench_cold_start.py [--repeat 3] [--skip-demo]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

# scikit-learn's scripts read the CSV directly, so that they import nothing of bayesgmm (nor JAX)
FAITHFUL = Path(__file__).resolve().parent.parent / "bayesgmm" / "datasets" / "data" / "faithful.csv"

SCRIPTS = {
    "sklearn fit": """
        import pandas as pd
        from sklearn.mixture import GaussianMixture
        X = pd.read_csv(FAITHFUL).to_numpy()
        GaussianMixture(3, random_state=0).fit(X)
    """,
    "bayesgmm fit": """
        import bayesgmm as bg
        X = bg.datasets.load_faithful().to_numpy()
        bg.GaussianMixture(3, random_state=0).fit(X)
    """,
    "sklearn select": """
        import warnings
        import pandas as pd
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits
        X = pd.read_csv(FAITHFUL).to_numpy()
        warnings.simplefilter("ignore")
        with threadpool_limits(THREADS):
            for ct in ("full", "tied", "diag", "spherical"):
                for k in range(1, 10):
                    GaussianMixture(k, covariance_type=ct, n_init=10, tol=1e-6, max_iter=1000, random_state=0).fit(X)
    """,
    "bayesgmm select": """
        import warnings
        import bayesgmm as bg
        X = bg.datasets.load_faithful().to_numpy()
        warnings.simplefilter("ignore")
        bg.select(X, range(1, 10), "sklearn", n_init=10, init_params="kmeans", random_state=0)
    """,
    "bayesgmm sizes": """
        import numpy as np
        import bayesgmm as bg
        rng = np.random.default_rng(0)
        X = bg.datasets.load_faithful().to_numpy()
        for n in (150, 200, 272, 1000):
            data = X[rng.integers(0, len(X), n)] + rng.normal(0, 0.1, (n, 2))
            for k in (2, 3, 4):
                bg.GaussianMixture(k, random_state=0).fit(data)
    """,
    "sklearn sizes": """
        import numpy as np, pandas as pd
        from sklearn.mixture import GaussianMixture
        rng = np.random.default_rng(0)
        X = pd.read_csv(FAITHFUL).to_numpy()
        for n in (150, 200, 272, 1000):
            data = X[rng.integers(0, len(X), n)] + rng.normal(0, 0.1, (n, 2))
            for k in (2, 3, 4):
                GaussianMixture(k, random_state=0).fit(data)
    """,
}


def wall(code: str | list[str], cache: str, threads=None) -> float:
    """Seconds of a fresh process running ``code`` (a script, or a command line)."""
    env = {**os.environ, "BAYESGMM_CACHE_DIR": cache}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if isinstance(code, str):
        code = textwrap.dedent(code).replace("THREADS", repr(threads)).replace("FAITHFUL", repr(str(FAITHFUL)))
        command = [sys.executable, "-c", code]
    else:
        command = code
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def measure(name: str, repeat: int) -> dict:
    """Cold (a new empty cache each run) and warm (the filled cache) medians."""
    cold, warm = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(wall(SCRIPTS[name], cache))
            warm.append(wall(SCRIPTS[name], cache))
    return {"cold": statistics.median(cold), "warm": statistics.median(warm)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = {"cpus": os.cpu_count()}
    for task in ("fit", "sizes", "select"):
        ours = measure(f"bayesgmm {task}", args.repeat)
        if task == "select":
            peer = min(statistics.median(wall(SCRIPTS["sklearn select"], "", threads) for _ in range(args.repeat))
                       for threads in (None, 1))
        else:
            peer = statistics.median(wall(SCRIPTS[f"sklearn {task}"], "") for _ in range(args.repeat))
        out[task] = {"bayesgmm_cold_s": ours["cold"], "bayesgmm_warm_s": ours["warm"], "sklearn_s": peer}
        print(f"{task:7s} sklearn {peer:6.2f} s | bayesgmm cold {ours['cold']:6.2f} s ({ours['cold'] / peer:4.2f}x)"
              f" warm {ours['warm']:6.2f} s ({ours['warm'] / peer:4.2f}x)", flush=True)
    if not args.skip_demo:
        cold, warm = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as report:
                command = [sys.executable, "-m", "bayesgmm", "demo", "--out", report]
                cold.append(wall(command, cache))
                warm.append(wall(command, cache))
        out["demo"] = {"cold_s": statistics.median(cold), "warm_s": statistics.median(warm)}
        print(f"demo    cold {out['demo']['cold_s']:6.2f} s warm {out['demo']['warm_s']:6.2f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
