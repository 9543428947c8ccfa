"""Subsampled VI (``vi_subsample_size``): unbiased mini-batch likelihood, recovery, bad input, compiles,
and the memory-bounded evaluation after the SVI loop (row blocks, a bounded pointwise log-likelihood).

One subsampled fit serves every estimator check (called from one test, so ``pytest -n 2`` does not fit it
twice); its cost is mostly the one compilation of the SVI program.
"""

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro import handlers
from numpyro.infer.util import log_density, potential_energy, unconstrain_fn
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from bayesgmm.bayes import estimator as bayes_estimator
from bayesgmm.bayes import infer
from bayesgmm.bayes.estimator import (
    BayesianGaussianMixture,
    occupancy_and_log_likelihood,
    pointwise_log_likelihood,
    rows_per_block,
)
from bayesgmm.bayes.models import default_priors, draws_from_sites, gaussian_mixture_model, sites_from_params
from bayesgmm.compare import compare

from conftest import sample_mixture


@pytest.fixture(scope="module")
def problem():
    """200 rows, K=3 diag, random weights (some zero), the sites of a fitted mixture and the model inputs."""
    X, _, _ = sample_mixture(3, n=200)
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.0, 2.0, len(X))
    weights[:20] = 0.0
    priors = default_priors(X, 3)
    gm = SkGaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    sites = sites_from_params(gm.weights_, gm.means_, gm.covariances_, "diag", priors.weight_concentration)
    return jnp.asarray(X, jnp.float32), jnp.asarray(weights, jnp.float32), priors, sites


def test_subsampled_log_density_is_unbiased(problem):
    """At fixed parameters, (n/m) x the weighted mini-batch log-likelihood averages to the full one."""
    X, w, priors, sites = problem
    kwargs = {"covariance_type": "diag", "sample_weight": w}
    full = jax.jit(lambda s: log_density(gaussian_mixture_model, (X, priors), kwargs, s)[0])(sites)

    @jax.jit
    def subsampled(keys):
        def one(key):
            model = handlers.seed(gaussian_mixture_model, key)
            return log_density(model, (X, priors), {**kwargs, "subsample_size": 20}, sites)[0]

        return jax.lax.map(one, keys)  # compiles faster than vmap; the run is milliseconds either way

    values = np.asarray(subsampled(jax.random.split(jax.random.key(0), 2000)), dtype=np.float64)
    standard_error = values.std() / np.sqrt(len(values))
    assert values.std() > 1.0  # the batches do differ: 20 of 200 rows
    assert standard_error < 0.01 * abs(float(full))
    assert abs(values.mean() - float(full)) < 4 * standard_error, (values.mean(), float(full), standard_error)


def test_the_exact_density_refuses_a_subsampled_model(problem):
    X, w, priors, sites = problem
    kwargs = {"covariance_type": "diag", "sample_weight": w, "subsample_size": 20}
    with pytest.raises(ValueError, match="subsample_size needs a PRNG key"):
        jax.jit(lambda s: potential_energy(gaussian_mixture_model, (X, priors), kwargs,
                                           unconstrain_fn(gaussian_mixture_model, (X, priors), kwargs, s)))(sites)


def test_log_joint_by_row_blocks_equals_the_one_pass_density(problem):
    """The post-SVI log p of a draw, summed over padded row blocks, is the full potential energy."""
    X, w, priors, sites = problem
    kwargs = {"covariance_type": "diag", "sample_weight": w}
    u = jax.jit(partial(unconstrain_fn, gaussian_mixture_model, (X, priors), kwargs))(sites)
    one_pass = jax.jit(lambda u: -potential_energy(gaussian_mixture_model, (X, priors), kwargs, u))(u)
    for rows in (48, 200):  # 48: five blocks, the last padded with zero-weight rows
        blocked = jax.jit(partial(infer.log_joint_by_row_blocks, gaussian_mixture_model, (X, priors), kwargs,
                                  rows=rows))(u)
        np.testing.assert_allclose(blocked, one_pass, rtol=1e-5)


def test_reductions_over_row_blocks_match_the_pointwise_ones(problem):
    X, w, priors, sites = problem
    draws = jax.tree.map(lambda x: jnp.stack([x, 1.05 * x]), draws_from_sites(sites, "diag"))
    pointwise = pointwise_log_likelihood(draws, X, "diag", 2)
    expected = np.sum(np.asarray(pointwise) * np.asarray(w), axis=1)
    for chunk, rows in ((1, 200), (1, 48), (2, 48)):
        counts, total = occupancy_and_log_likelihood(jax.random.key(0), draws, X, w, "diag", chunk, rows)
        np.testing.assert_allclose(total, expected, rtol=1e-5)
        # Three well-separated clusters of 200 rows: every sampled assignment fills all three components.
        np.testing.assert_array_equal(counts, [3, 3])
    assert rows_per_block(3000, 3, 100) == 3000  # one block while it fits in about 4M floats
    assert rows_per_block(10**7, 8, 1) == (1 << 22) // 8


@pytest.mark.parametrize("kwargs, words", [
    ({"vi_subsample_size": 0}, r"vi_subsample_size must be None or an integer >= 1, got 0"),
    ({"vi_subsample_size": 100.0}, r"vi_subsample_size must be None or an integer >= 1, got 100.0"),
    ({"vi_subsample_size": True}, r"vi_subsample_size must be None or an integer >= 1, got True"),
    ({"vi_subsample_size": "all"}, r"vi_subsample_size must be None or an integer >= 1, got 'all'"),
    ({"inference": "nuts", "vi_subsample_size": 100},
     r"vi_subsample_size needs inference='vi': NUTS needs the exact gradient .* biased distribution"),
])
def test_bad_vi_subsample_size_is_named(kwargs, words):
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match=words):
        BayesianGaussianMixture(2, **{"inference": "vi", **kwargs}).fit(X)


def test_subsampled_vi_recovers_the_posterior():
    """3000 well-separated rows, 256 per step: the posterior means agree with EM; refits reuse the program."""
    X, _, _ = sample_mixture(1, n=3000)
    em = SkGaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    settings = dict(covariance_type="diag", inference="vi", vi_steps=1000, num_samples=100, vi_subsample_size=256,
                    init=em)
    fit = BayesianGaussianMixture(3, random_state=0, **settings).fit(X)
    check_posterior_means_agree_with_em(fit, em)
    check_refits_do_not_recompile(fit, X, settings)
    check_pointwise_log_likelihood_is_bounded(fit, X, settings)


def check_posterior_means_agree_with_em(fit, em):
    assert fit.vi_subsample_size_ == 256
    # With 3000 rows the posterior mean is within a few posterior sd of the maximum likelihood; the
    # noisy gradient of 256-row batches leaves it there.
    sd = fit.idata_["posterior"]["means"].std(("chain", "draw")).values
    gap = np.abs(fit.means_ - em.means_)
    assert np.all(gap <= 4 * sd + 0.05), (gap, sd)
    np.testing.assert_allclose(fit.weights_, em.weights_, atol=0.02)
    np.testing.assert_allclose(fit.covariances_, em.covariances_, rtol=0.15)
    # The ELBO after the loop is on every row; the trace is the noisy mini-batch estimate of the same thing.
    trace = fit.elbo_trace_
    assert trace.shape == (1000,) and np.all(np.isfinite(trace))
    assert abs(np.median(trace[-200:]) - fit.elbo_) < 0.01 * abs(fit.elbo_)
    assert {"lp", "log_q"} <= set(fit.idata_["sample_stats"].data_vars)


def check_refits_do_not_recompile(fit, X, settings):
    """Data values, priors, learning rate and seed are traced; only shapes and static settings compile."""
    before = infer._fit_guide._cache_size()
    shifted = X + 1.0
    em = SkGaussianMixture(3, covariance_type="diag", random_state=0).fit(shifted)
    other = BayesianGaussianMixture(3, random_state=1, vi_learning_rate=0.005, weight_concentration_prior=2.0,
                                    **{**settings, "init": em}).fit(shifted)
    assert infer._fit_guide._cache_size() == before
    np.testing.assert_allclose(np.sort(other.means_[:, 0]), np.sort(fit.means_[:, 0] + 1.0), atol=0.3)


def check_pointwise_log_likelihood_is_bounded(fit, X, settings):
    """Above MAX_POINTWISE_LOG_LIKELIHOOD the (draws x rows) group is left out, loudly; totals stay."""
    pointwise = fit.idata_["log_likelihood"]["obs"].values
    assert pointwise.shape == (1, 100, 3000)
    old = bayes_estimator.MAX_POINTWISE_LOG_LIKELIHOOD
    bayes_estimator.MAX_POINTWISE_LOG_LIKELIHOOD = 100 * 3000 - 1
    try:
        with pytest.warns(UserWarning, match=r"100 draws x 3000 rows = 300000 floats > MAX_POINTWISE_LOG_LIKELIHOOD"):
            same = BayesianGaussianMixture(3, random_state=0, **settings).fit(X)
    finally:
        bayes_estimator.MAX_POINTWISE_LOG_LIKELIHOOD = old
    assert "log_likelihood" not in same.idata_.children
    assert "300000 floats" in same.idata_.attrs["log_likelihood_omitted"]
    # Same seed, same draws: the per-draw totals, summed over row blocks, equal the pointwise sums.
    np.testing.assert_allclose(same.idata_["label_invariant"]["log_lik"].values, pointwise.sum(-1), rtol=1e-5)
    with pytest.warns(UserWarning, match="elpd_loo and p_loo are left out"):
        table = compare({"vi": same}, X)
    assert np.isnan(table.loc["vi", "elpd_loo"]) and np.isfinite(table.loc["vi", "elbo"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(compare({"vi": fit}, X).loc["vi", "elpd_loo"])
