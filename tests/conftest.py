import os
import shutil
import tempfile

# One persistent compilation cache per test run, shared by the xdist workers and the subprocesses the
# tests start (they inherit the variable), so that a program is compiled once per run; never the
# user's own cache. Set before bayesgmm is imported (it opens the cache at import).
# The controller sets it; xdist's workers inherit its environment.
os.environ.setdefault("BAYESGMM_TEST_CACHE", tempfile.mkdtemp(prefix="bayesgmm-test-cache-"))
os.environ["BAYESGMM_CACHE_DIR"] = os.environ["BAYESGMM_TEST_CACHE"]

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bayesgmm.datasets import load_faithful  # noqa: E402


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # the controller, after every worker has finished
        shutil.rmtree(os.environ["BAYESGMM_TEST_CACHE"], ignore_errors=True)


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


def pytest_configure(config):
    """Pin each xdist worker (and the processes it starts) to a core of its own: two workers on two
    cores otherwise oversubscribe XLA's thread pools, and NUTS's many small steps slowed 3-5x."""
    worker = getattr(config, "workerinput", None)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if worker is not None and len(cpus) > 1 and os.environ.get("BAYESGMM_TEST_PIN", "1") == "1":
        os.sched_setaffinity(0, {cpus[int(worker["workerid"].removeprefix("gw")) % len(cpus)]})
