"""The ``bayesgmm`` command.

``bayesgmm demo [--out DIR]``: on the bundled Old Faithful data, select K and the covariance type by
BIC, print the best rows of the BIC table, the chosen model and its cluster sizes, and write the
table, the labels and the probabilities as CSV under DIR.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _demo(out: Path) -> int:
    import bayesgmm as bg

    X = bg.datasets.load_faithful()
    print(f"Old Faithful: {X.shape[0]} eruptions x {X.shape[1]} features ({', '.join(X.columns)})", flush=True)
    start = time.perf_counter()
    print("Selecting K = 1..9 x covariance type {full, tied, diag, spherical} by BIC ...", flush=True)
    sel = bg.select(X, n_components=range(1, 10), random_state=0)
    best = sel.best_
    print(f"done in {time.perf_counter() - start:.1f} s\n")
    table = sel.table.sort_values("bic").reset_index(drop=True)
    print("Best rows of the BIC table (lower is better; mclust's BIC is -bic):")
    print(table.head(5).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    labels = best.predict(X)
    proba = best.predict_proba(X)
    sizes = np.bincount(labels, minlength=best.n_components)
    print(f"\nChosen model: {best.covariance_type}, {best.n_components} components")
    print(f"cluster sizes: {sizes.tolist()}; weights: {np.round(best.weights_, 3).tolist()}")
    print("means:\n" + pd.DataFrame(best.means_, columns=X.columns).round(3).to_string())
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "bic_table.csv", index=False)
    result = X.copy()
    result["label"] = labels
    result["uncertainty"] = 1.0 - proba.max(axis=1)
    for k in range(best.n_components):
        result[f"p{k}"] = proba[:, k]
    result.to_csv(out / "assignments.csv", index=False)
    print(f"\nwrote {out / 'bic_table.csv'} and {out / 'assignments.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bayesgmm", description="Gaussian mixture models on JAX")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="model selection on the bundled Old Faithful data")
    demo.add_argument("--out", type=Path, default=Path("bayesgmm-report"), help="report folder")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args.out)
    return 2


if __name__ == "__main__":
    sys.exit(main())
