"""How many clusters: a sparse overfitted mixture (K=8, alpha=0.01) on data with 3 clusters."""

import warnings

import numpy as np
import pytest

from bayesgmm.bayes.estimator import BayesianGaussianMixture

pytestmark = pytest.mark.slow


def three_clusters(seed: int = 0, per_cluster: int = 100) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 5.0]])
    return np.concatenate([rng.normal(c, 1.0, size=(per_cluster, 2)) for c in centers])


def test_sparse_dirichlet_finds_three_occupied_components():
    X = three_clusters()
    with warnings.catch_warnings():
        # Empty components wander over their prior: their labels are arbitrary, so R-hat on them is not
        # a convergence check and the estimator's R-hat warning is expected here.
        warnings.simplefilter("ignore", UserWarning)
        bgm = BayesianGaussianMixture(8, covariance_type="full", weight_concentration_prior=0.01, num_chains=2,
                                      num_warmup=300, num_samples=300, max_tree_depth=8, random_state=0).fit(X)
    occupied = bgm.n_occupied_posterior_
    assert occupied.shape == (9,) and abs(occupied.sum() - 1.0) < 1e-12
    assert int(np.argmax(occupied)) == 3
    assert occupied[3] >= 0.6 and occupied[:3].sum() == 0.0
    # Three components carry almost all the weight, draw by draw (a label-invariant summary).
    top_three = bgm.idata_["label_invariant"]["weights_sorted"].isel(rank=slice(0, 3)).sum("rank")
    assert float(top_three.mean()) >= 0.95
    # Every draw's occupancy is recorded for diagnostics.
    n_occupied = bgm.idata_["label_invariant"]["n_occupied"].values
    np.testing.assert_allclose(np.bincount(n_occupied.ravel(), minlength=9) / n_occupied.size, occupied)
