import os

import numpy as np
import pytest

from bayesgmm.datasets import load_faithful

# The command's persistent compilation cache stays off in tests (main() runs in-process);
# tests/test_cli.py turns it on for its own subprocesses.
os.environ["BAYESGMM_CACHE_DIR"] = ""


@pytest.fixture(scope="session")
def faithful() -> np.ndarray:
    return load_faithful().to_numpy()


def sample_mixture(seed: int, n: int = 600, weights=(0.5, 0.3, 0.2), spread: float = 6.0):
    """Three well-separated 2-D Gaussian clusters with random full covariances; returns X, labels, means."""
    rng = np.random.default_rng(seed)
    k = len(weights)
    means = rng.normal(0, spread, size=(k, 2)) + np.array([[0, 0], [3 * spread, 0], [0, 3 * spread]])[:k]
    labels = rng.choice(k, size=n, p=weights)
    X = np.empty((n, 2))
    for j in range(k):
        a = rng.normal(size=(2, 2))
        cov = a @ a.T + 0.5 * np.eye(2)
        idx = labels == j
        X[idx] = rng.multivariate_normal(means[j], cov, size=idx.sum())
    return X, labels, means


@pytest.fixture(scope="session")
def faithful_posterior():
    """A small NUTS posterior (2 chains x 40 draws, diag, K=2) on Old Faithful, shared by io and plot tests."""
    import warnings

    from bayesgmm.bayes.estimator import BayesianGaussianMixture

    X = load_faithful()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # such short chains may warn about R-hat
        model = BayesianGaussianMixture(2, covariance_type="diag", num_chains=2, num_warmup=60, num_samples=40,
                                        random_state=0).fit(X)
    return model, X
