"""Anomaly detection: bayesgmm's noise component and low-density flags against scikit-learn's
IsolationForest and EllipticEnvelope, on labelled data sets that ship with scikit-learn.

Each data set is made an anomaly-detection task as is usual (the ODDS collection does the same):
one class is the inliers, and a random 5% (of the final set) of the rows of another class are
planted as anomalies; every method is fitted on the whole contaminated set without labels and
scores the same rows. Five draws of the planted rows per data set; the table gives the means.

* ``bayesgmm noise``: ``bg.select(X, noise=True)`` (BIC over K and covariance models, a noise
  component in every cell); outliers are the rows the noise component claims (``predict_outliers(X)``),
  the ROC AUC ranks by ``-score_samples``.
* ``bayesgmm density``: ``bg.select(X)`` without noise; outliers are the 5% of rows of lowest
  density (``predict_outliers(X, contamination=0.05)``).
* ``IsolationForest``, ``EllipticEnvelope``: ``contamination=0.05``; ``predict == -1`` and
  ``-score_samples``.

The features are standardised first; each data set is scored on all its features and on its first
3 principal components (a uniform background over the data's box is a weak model in 30 correlated
dimensions, where the principal-component box is thin). bayesgmm starts from k-means (5 restarts
per cell). Times are the medians over the draws, of fit plus scoring (bayesgmm's first call also
compiles: its cold time is reported apart).

Usage:  python benchmarks/bench_anomalies.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.covariance import EllipticEnvelope
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

import bayesgmm as bg

warnings.filterwarnings("ignore", category=ConvergenceWarning)
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=RuntimeWarning)

CONTAMINATION = 0.05
GRID = {"n_components": range(1, 4), "covariance_types": ["VVI", "EEE", "VVV"]}


def tasks():
    """(name, inlier rows, anomaly candidate rows, principal components kept or None): class 0 of
    breast cancer is malignant."""
    cancer = load_breast_cancer()
    wine = load_wine()
    for n_pcs in (None, 3):
        view = "all features" if n_pcs is None else f"{n_pcs} PCs"
        yield (f"breast cancer, {view}", cancer.data[cancer.target == 1], cancer.data[cancer.target == 0], n_pcs)
        yield f"wine, {view}", wine.data[wine.target != 2], wine.data[wine.target == 2], n_pcs


def planted(inliers, candidates, seed, n_pcs=None):
    """Inliers plus a random CONTAMINATION share of anomalies, standardised (and projected on the
    first ``n_pcs`` principal components); labels 1 = anomaly."""
    rng = np.random.default_rng(seed)
    n_out = max(1, round(CONTAMINATION * len(inliers) / (1 - CONTAMINATION)))
    X = np.vstack([inliers, candidates[rng.choice(len(candidates), n_out, replace=False)]])
    y = np.r_[np.zeros(len(inliers), int), np.ones(n_out, int)]
    X = StandardScaler().fit_transform(X)
    return (X if n_pcs is None else PCA(n_pcs).fit_transform(X)), y


def bayesgmm_noise(X, seed):
    gm = bg.select(X, **GRID, noise=True, n_init=5, init_params="kmeans", random_state=seed).best_
    return gm.predict_outliers(X), -gm.score_samples(X)


def bayesgmm_density(X, seed):
    gm = bg.select(X, **GRID, n_init=5, init_params="kmeans", random_state=seed).best_
    return gm.predict_outliers(X, contamination=CONTAMINATION), -gm.score_samples(X)


def isolation_forest(X, seed):
    model = IsolationForest(contamination=CONTAMINATION, random_state=seed).fit(X)
    return model.predict(X) == -1, -model.score_samples(X)


def elliptic_envelope(X, seed):
    model = EllipticEnvelope(contamination=CONTAMINATION, random_state=seed).fit(X)
    return model.predict(X) == -1, -model.score_samples(X)


METHODS = {"bayesgmm noise": bayesgmm_noise, "bayesgmm density": bayesgmm_density,
           "IsolationForest": isolation_forest, "EllipticEnvelope": elliptic_envelope}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two draws per data set instead of five")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # JAX's notes on dtype promotion
    seeds = range(2 if args.quick else 5)
    print(f"contamination {CONTAMINATION:.0%}, {len(seeds)} draws per data set, means over draws\n")
    header = f"{'data set':28s} {'method':18s} {'precision':>9s} {'recall':>7s} {'ROC AUC':>8s} {'time s':>7s}"
    print(header)
    print("-" * len(header))
    cold = {}
    for name, inliers, candidates, n_pcs in tasks():
        for method, run in METHODS.items():
            precision, recall, auc, times = [], [], [], []
            for seed in seeds:
                X, y = planted(inliers, candidates, seed, n_pcs)
                start = time.perf_counter()
                flags, scores = run(X, seed)
                times.append(time.perf_counter() - start)
                precision.append(precision_score(y, flags, zero_division=0))
                recall.append(recall_score(y, flags))
                auc.append(roc_auc_score(y, scores))
            cold.setdefault(method, times[0])
            print(f"{name:28s} {method:18s} {np.mean(precision):9.3f} {np.mean(recall):7.3f} {np.mean(auc):8.3f} "
                  f"{np.median(times[1:] if len(times) > 1 else times):7.2f}")
    print("\nfirst call (bayesgmm: compilation included): "
          + ", ".join(f"{method} {t:.1f} s" for method, t in cold.items()))


if __name__ == "__main__":
    main()
