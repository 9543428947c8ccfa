"""Reference tests: bayesgmm against scikit-learn and against naive numpy/scipy twins, in float64."""

import numpy as np
import pytest
import scipy.stats
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import bayesgmm as bg
from bayesgmm import covariance as cov
from bayesgmm import em
from bayesgmm.estimators import precision_scope

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _sklearn_init(X, covariance_type, seed=1):
    """Initial parameters taken from one scikit-learn EM step, so both start from the same point."""
    sk = SkGaussianMixture(3, covariance_type=covariance_type, random_state=seed, max_iter=1)
    with pytest.warns(Warning):
        sk.fit(X)
    return dict(weights_init=sk.weights_, means_init=sk.means_, precisions_init=sk.precisions_)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_init_same_fit_as_sklearn(faithful, covariance_type):
    init = _sklearn_init(faithful, covariance_type)
    kwargs = dict(covariance_type=covariance_type, tol=1e-8, max_iter=500, **init)
    sk = SkGaussianMixture(3, **kwargs).fit(faithful)
    ours = bg.GaussianMixture(3, **kwargs).fit(faithful)
    assert ours.n_iter_ == sk.n_iter_
    assert ours.converged_ and sk.converged_
    np.testing.assert_allclose(ours.lower_bound_, sk.lower_bound_, rtol=1e-6)
    np.testing.assert_allclose(ours.lower_bounds_, sk.lower_bounds_, rtol=1e-6)
    for name in ["weights_", "means_", "covariances_", "precisions_"]:
        np.testing.assert_allclose(getattr(ours, name), getattr(sk, name), rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(ours.score_samples(faithful), sk.score_samples(faithful), rtol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(faithful), sk.predict_proba(faithful), atol=1e-8)
    np.testing.assert_allclose(ours.bic(faithful), sk.bic(faithful), rtol=1e-6)
    np.testing.assert_allclose(ours.aic(faithful), sk.aic(faithful), rtol=1e-6)
    assert ours._n_parameters() == sk._n_parameters()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_n_parameters_matches_sklearn(covariance_type):
    for k, d in [(1, 1), (3, 2), (5, 7)]:
        sk = SkGaussianMixture(k, covariance_type=covariance_type)
        sk.means_ = np.zeros((k, d))
        assert cov.n_parameters(covariance_type, k, d) == sk._n_parameters()


def _random_params(rng, covariance_type, k=3, d=3):
    weights = rng.dirichlet(np.ones(k))
    means = rng.normal(size=(k, d))
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, 1, 2) + np.eye(d)
    if covariance_type == "tied":
        covs = np.broadcast_to(covs[0], (k, d, d)).copy()
    elif covariance_type == "diag":
        covs = np.stack([np.diag(np.diag(c)) for c in covs])
    elif covariance_type == "spherical":
        covs = np.stack([np.mean(np.diag(c)) * np.eye(d) for c in covs])
    stored = {"full": covs, "tied": covs[0], "diag": np.stack([np.diag(c) for c in covs]),
              "spherical": covs[:, 0, 0]}[covariance_type]
    return weights, means, covs, stored


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_gaussian_prob_matches_scipy(covariance_type):
    rng = np.random.default_rng(0)
    weights, means, covs, stored = _random_params(rng, covariance_type)
    X = rng.normal(size=(50, 3))
    with precision_scope(np.float64):
        chol = cov.precisions_cholesky_from_covariances(stored, covariance_type)
        ours = np.asarray(cov.log_gaussian_prob(X, means, chol, covariance_type))
        back = np.asarray(cov.covariances_from_precisions_cholesky(chol, covariance_type))
    expected = np.stack([scipy.stats.multivariate_normal(m, c).logpdf(X) for m, c in zip(means, covs)], axis=1)
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    np.testing.assert_allclose(back, stored, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_matches_numpy(covariance_type):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3)) + 100.0  # an offset: the scatter must be computed about the means
    resp = rng.dirichlet(np.ones(3), size=40) * rng.uniform(0.5, 2.0, size=(40, 1))
    nk = resp.sum(0) + 10 * np.finfo(float).eps
    means = resp.T @ X / nk[:, None]
    full = np.stack([(resp[:, k, None] * (X - means[k])).T @ (X - means[k]) / nk[k] for k in range(3)])
    full = full + 1e-6 * np.eye(3)
    expected = {"full": full, "tied": np.einsum("k,kij->ij", nk, full - 1e-6 * np.eye(3)) / nk.sum() + 1e-6 * np.eye(3),
                "diag": np.stack([np.diag(c) for c in full]),
                "spherical": np.stack([np.mean(np.diag(c)) for c in full])}[covariance_type]
    with precision_scope(np.float64):
        params = em.m_step(X, resp, 1e-6, covariance_type)
        covariances = np.asarray(cov.covariances_from_precisions_cholesky(params.precisions_cholesky, covariance_type))
    np.testing.assert_allclose(np.asarray(params.weights), nk / nk.sum(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(params.means), means, rtol=1e-12)
    np.testing.assert_allclose(covariances, expected, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_pass_em_step_equals_two_pass_m_step(covariance_type):
    """The single-pass step (statistics about the old means, then corrected) equals e_step + m_step."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(64, 3)) * 3 + 50.0
    w = rng.uniform(0.1, 2.0, size=64)
    weights, means, _, stored = _random_params(rng, covariance_type)
    with precision_scope(np.float64):
        params = bg.GMMParams(weights, means + 50.0, cov.precisions_cholesky_from_covariances(stored, covariance_type),
                              covariance_type)
        log_prob, log_resp = (np.asarray(a) for a in em.e_step(X, params))
        expected = em.m_step(X, np.exp(log_resp) * w[:, None], 1e-6, covariance_type)
        new, bound = em.em_step(X.reshape(4, 16, 3), w.reshape(4, 16), params, 1e-6, np.ones(3, bool))
    np.testing.assert_allclose(float(bound), np.sum(w * log_prob) / w.sum(), rtol=1e-12)
    for a, b in zip([new.weights, new.means, new.precisions_cholesky],
                    [expected.weights, expected.means, expected.precisions_cholesky]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-8, atol=1e-10)
