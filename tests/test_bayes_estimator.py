"""BayesianGaussianMixture: the estimator contract and bad input (fast: errors are raised before inference)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from bayesgmm.bayes.estimator import BayesianGaussianMixture, draws_per_chunk
from bayesgmm.bayes.infer import resolve_chain_method


@pytest.fixture
def X() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(30, 2))


def test_init_only_stores_arguments_and_clones():
    bgm = BayesianGaussianMixture(3, covariance_type="diag", weight_concentration_prior=0.01, random_state=1)
    params = bgm.get_params()
    assert params["n_components"] == 3 and params["weight_concentration_prior"] == 0.01
    assert clone(bgm).get_params() == params


@pytest.mark.parametrize("kwargs, words", [
    ({"n_components": 0}, "n_components must be an integer >= 1"),
    ({"n_components": 2.5}, "n_components must be an integer >= 1"),
    ({"covariance_type": "banded"}, "covariance_type must be one of"),
    ({"inference": "hmc"}, "inference must be one of"),
    ({"num_chains": 0}, "num_chains must be an integer >= 1"),
    ({"num_samples": 0}, "num_samples must be an integer >= 1"),
    ({"chain_method": "threads"}, "chain_method must be one of"),
    ({"vi_guide": "flow"}, "vi_guide must be one of"),
    ({"target_accept_prob": 1.0}, "target_accept_prob must be in"),
    ({"vi_learning_rate": -1.0}, "vi_learning_rate must be a finite number"),
    ({"weight_concentration_prior": -0.1}, "weight_concentration_prior must be finite and > 0"),
    ({"mean_prior_scale": 0.0}, "mean_prior_scale must be finite and > 0"),
    ({"covariance_prior_scale": [1.0, -1.0]}, "covariance_prior_scale must be finite and > 0"),
    ({"mean_prior": [np.nan, 0.0]}, "mean_prior must be finite"),
])
def test_bad_arguments_are_named(X, kwargs, words):
    with pytest.raises(ValueError, match=words):
        BayesianGaussianMixture(**{"n_components": 2, **kwargs}).fit(X)


def test_bad_data(X):
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BayesianGaussianMixture(2).fit(bad)
    with pytest.raises(ValueError, match="infinity"):
        BayesianGaussianMixture(2).fit(np.where(bad == bad, bad, np.inf))
    with pytest.raises(ValueError, match="2D array"):
        BayesianGaussianMixture(2).fit(X[:, 0])
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_components=4"):
        BayesianGaussianMixture(4).fit(X[:3])
    assert np.isnan(bad[3, 1])  # the input is never modified


@pytest.mark.parametrize("weights, words", [
    (np.ones(5), r"sample_weight must have shape \(30,\)"),
    (-np.ones(30), "sample_weight must be finite and non-negative"),
    (np.zeros(30), "positive sum"),
])
def test_bad_sample_weight(X, weights, words):
    with pytest.raises(ValueError, match=words):
        BayesianGaussianMixture(2).fit(X, sample_weight=weights)


def test_init_must_match(X):
    from sklearn.mixture import GaussianMixture

    em = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    with pytest.raises(ValueError, match="init has covariance_type='diag', expected 'full'"):
        BayesianGaussianMixture(3, init=em).fit(X)
    with pytest.raises(ValueError, match=r"init has means_ of shape \(3, 2\), expected \(2, 2\)"):
        BayesianGaussianMixture(2, covariance_type="diag", init=em).fit(X)
    with pytest.raises(ValueError, match="init must be a fitted GaussianMixture"):
        BayesianGaussianMixture(2, init=GaussianMixture(2)).fit(X)


def test_methods_need_a_fit(X):
    bgm = BayesianGaussianMixture(2)
    for method in (bgm.predict_proba, bgm.score_samples, bgm.coclustering):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(NotFittedError):
        bgm.summary()


def test_parallel_needs_a_device_per_chain(X):
    import jax

    chains = jax.local_device_count() + 1
    with pytest.raises(ValueError, match="chain_method='parallel' needs a device per chain"):
        BayesianGaussianMixture(2, num_chains=chains, chain_method="parallel", init=_em(X)).fit(X)


def _em(X):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(2, random_state=0).fit(X)


def test_chain_method_and_chunk_choices():
    assert resolve_chain_method("vectorized", 4) == "vectorized"
    assert resolve_chain_method("auto", 1) in ("sequential", "vectorized")
    assert draws_per_chunk(4000, 272, 2) == 4000
    assert draws_per_chunk(4000, 1_000_000, 8) == 1
