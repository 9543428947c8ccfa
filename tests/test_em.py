"""Behaviour of GaussianMixture: invariants, recovery, dtypes, restarts, status, compilation."""

import warnings

import jax
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score

import bayesgmm as bg
from bayesgmm import em
from conftest import sample_mixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_invariants(faithful, covariance_type):
    gm = bg.GaussianMixture(3, covariance_type=covariance_type, n_init=3, tol=1e-6, max_iter=300,
                            random_state=0).fit(faithful)
    bounds = np.array(gm.lower_bounds_)
    assert len(bounds) == gm.n_iter_
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:])), "EM lower bound decreased"
    assert bounds[-1] == gm.lower_bound_
    proba = gm.predict_proba(faithful)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(gm.weights_.sum(), 1.0, rtol=1e-12)
    labels = bg.GaussianMixture(3, covariance_type=covariance_type, n_init=3, random_state=0).fit_predict(faithful)
    np.testing.assert_array_equal(labels, bg.GaussianMixture(3, covariance_type=covariance_type, n_init=3,
                                                             random_state=0).fit(faithful).predict(faithful))
    np.testing.assert_allclose(gm.score(faithful), gm.score_samples(faithful).mean())


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_recovers_known_clusters(init_params):
    X, labels, means = sample_mixture(0)
    gm = bg.GaussianMixture(3, init_params=init_params, n_init=4, max_iter=500, random_state=0).fit(X)
    assert gm.converged_
    assert adjusted_rand_score(labels, gm.predict(X)) > 0.97
    order = np.argsort(gm.means_[:, 0] + 10 * gm.means_[:, 1])
    expected = means[np.argsort(means[:, 0] + 10 * means[:, 1])]
    np.testing.assert_allclose(gm.means_[order], expected, atol=0.5)
    np.testing.assert_allclose(np.sort(gm.weights_), [0.2, 0.3, 0.5], atol=0.05)


def test_same_seed_same_result_and_restarts_help(faithful):
    a = bg.GaussianMixture(4, init_params="random", n_init=1, random_state=3).fit(faithful)
    b = bg.GaussianMixture(4, init_params="random", n_init=1, random_state=3).fit(faithful)
    np.testing.assert_array_equal(a.means_, b.means_)
    many = bg.GaussianMixture(4, init_params="random", n_init=8, random_state=3).fit(faithful)
    assert many.lower_bound_ >= a.lower_bound_ - 1e-9


def test_dtypes_follow_input_and_leave_jax_settings_alone(faithful):
    x64_before = jax.config.jax_enable_x64
    gm32 = bg.GaussianMixture(2, random_state=0).fit(faithful.astype(np.float32))
    gm64 = bg.GaussianMixture(2, random_state=0).fit(faithful)
    assert jax.config.jax_enable_x64 == x64_before
    for name in ["weights_", "means_", "covariances_", "precisions_cholesky_"]:
        assert getattr(gm32, name).dtype == np.float32
        assert getattr(gm64, name).dtype == np.float64
    assert gm32.score_samples(faithful).dtype == np.float32
    np.testing.assert_allclose(np.sort(gm32.means_[:, 1]), np.sort(gm64.means_[:, 1]), rtol=1e-3)
    ints = bg.GaussianMixture(2, random_state=0).fit(np.round(faithful * 100).astype(int))
    assert ints.means_.dtype == np.float64


def test_convergence_status_is_honest(faithful):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        gm = bg.GaussianMixture(3, max_iter=2, tol=1e-12, random_state=0).fit(faithful)
    assert not gm.converged_ and gm.n_iter_ == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        gm = bg.GaussianMixture(3, random_state=0).fit(faithful)
    assert gm.converged_
    gm0 = bg.GaussianMixture(3, max_iter=0, random_state=0).fit(faithful)
    assert gm0.n_iter_ == 0 and not gm0.converged_ and gm0.lower_bound_ == -np.inf


def test_nan_in_the_loop_is_not_converged():
    """A NaN lower bound stops the loop and is never reported as converged."""
    X = np.random.default_rng(0).normal(size=(40, 2))
    chunks, weights = X.reshape(1, 40, 2), np.ones((1, 40))
    with jax.enable_x64(True):
        params = bg.GMMParams(np.array([0.5, 0.5]), np.array([[0.0, 0.0], [np.nan, 0.0]]),
                              np.stack([np.eye(2)] * 2), "full")
        result = em.run_em(chunks, weights, params, 1e-3, 1e-6, 100, np.ones(2, bool), -np.inf, 128)
    assert not bool(result.converged)
    assert int(result.n_iter) == 1 and np.isnan(float(result.lower_bound))


def test_emptied_component_gives_no_nan():
    X = np.random.default_rng(0).normal(size=(200, 2))
    means_init = np.array([[0.0, 0.0], [0.5, 0.0], [1e6, 1e6]])  # the third component starts empty
    gm = bg.GaussianMixture(3, means_init=means_init, random_state=0).fit(X)
    for name in ["weights_", "means_", "covariances_", "precisions_cholesky_"]:
        assert np.all(np.isfinite(getattr(gm, name))), name
    assert np.all(np.isfinite(gm.score_samples(X)))
    assert gm.weights_[2] < 1e-6


def test_sample_weight_equals_repeated_rows(faithful):
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, size=len(faithful))
    repeated = np.repeat(faithful, w, axis=0)
    with pytest.warns(ConvergenceWarning):
        init = bg.GaussianMixture(3, random_state=0, max_iter=1).fit(faithful)
    kwargs = dict(weights_init=init.weights_, means_init=init.means_, precisions_init=init.precisions_,
                  tol=1e-10, max_iter=300)
    weighted = bg.GaussianMixture(3, **kwargs).fit(faithful, sample_weight=w.astype(float))
    plain = bg.GaussianMixture(3, **kwargs).fit(repeated)
    assert weighted.n_iter_ == plain.n_iter_
    np.testing.assert_allclose(weighted.lower_bound_, plain.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, plain.means_, rtol=1e-8)
    np.testing.assert_allclose(weighted.covariances_, plain.covariances_, rtol=1e-8)


def test_warm_start_continues_from_last_fit(faithful):
    gm = bg.GaussianMixture(3, max_iter=5, tol=1e-12, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        gm.fit(faithful)
    first = gm.lower_bound_
    with pytest.warns(ConvergenceWarning):
        gm.fit(faithful)
    assert gm.lower_bound_ >= first
    cold = bg.GaussianMixture(3, max_iter=10, tol=1e-12, random_state=0)
    with pytest.warns(ConvergenceWarning):
        cold.fit(faithful)
    np.testing.assert_allclose(gm.means_, cold.means_, rtol=1e-8)


def test_user_init_is_used(faithful):
    means_init = np.array([[2.0, 55.0], [4.5, 80.0]])
    gm = bg.GaussianMixture(2, means_init=means_init, max_iter=0).fit(faithful)
    np.testing.assert_array_equal(gm.means_, means_init)


def test_changing_tol_reg_covar_max_iter_does_not_recompile(faithful):
    bg.GaussianMixture(2, random_state=0, tol=1e-3, chunk_size=512).fit(faithful)
    compiled = em.fit_jit._cache_size()
    for tol, reg_covar, max_iter in [(1e-4, 1e-6, 100), (1e-3, 1e-3, 50), (1e-5, 1e-2, 120)]:
        bg.GaussianMixture(2, random_state=1, tol=tol, reg_covar=reg_covar, max_iter=max_iter,
                           chunk_size=512).fit(faithful)
    assert em.fit_jit._cache_size() == compiled


def test_chunking_does_not_change_the_fit(faithful):
    a = bg.GaussianMixture(3, random_state=0, tol=1e-8, chunk_size=64).fit(faithful)
    b = bg.GaussianMixture(3, random_state=0, tol=1e-8, chunk_size=100000).fit(faithful)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_follows_the_model(faithful, covariance_type):
    gm = bg.GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(faithful)
    X, y = gm.sample(20000)
    assert X.shape == (20000, 2) and y.shape == (20000,)
    assert np.all(np.diff(y) >= 0)
    np.testing.assert_allclose(np.bincount(y) / 20000, gm.weights_, atol=0.02)
    for k in range(2):
        np.testing.assert_allclose(X[y == k].mean(0), gm.means_[k], atol=0.1 * np.sqrt(gm.covariances_.max()) + 0.1)
