"""The NumPyro mixture model: priors, parameter maps, likelihood and sample weights (fast, no sampling)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from bayesgmm.bayes.models import (
    COVARIANCE_TYPES,
    LogGamma,
    MixtureDraws,
    component_log_joint,
    cov_factor_from_covariances,
    default_priors,
    draws_from_sites,
    gaussian_mixture_model,
    rescale_draws,
    sites_from_params,
    validate_priors,
)


def sklearn_fit(X: np.ndarray, covariance_type: str, k: int = 3) -> SkGaussianMixture:
    return SkGaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.concatenate([rng.normal(c, s, size=(40, 3)) for c, s in ((-3, 1.0), (0, 0.5), (4, 2.0))])


def test_default_priors_are_centred_on_and_scaled_to_the_data(data):
    priors = default_priors(data, 4)
    np.testing.assert_allclose(priors.mean_loc, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(priors.mean_scale, 2 * data.std(0), rtol=1e-5)
    np.testing.assert_allclose(priors.scale_loc, 0.5 * data.std(0), rtol=1e-5)
    np.testing.assert_allclose(priors.weight_concentration, np.full(4, 0.25))
    override = default_priors(data, 4, weight_concentration_prior=0.01, mean_prior=[1, 2, 3], mean_prior_scale=5.0)
    np.testing.assert_allclose(override.weight_concentration, 0.01)
    np.testing.assert_allclose(override.mean_loc, [1, 2, 3])
    np.testing.assert_allclose(override.mean_scale, [5, 5, 5])


@pytest.mark.parametrize("name, kwargs", [("weight_concentration_prior", {"weight_concentration_prior": 0.0}),
                                          ("mean_prior_scale", {"mean_prior_scale": -1.0}),
                                          ("lkj_concentration", {"lkj_concentration": np.nan})])
def test_invalid_priors_are_named(data, name, kwargs):
    with pytest.raises(ValueError, match=name):
        validate_priors(default_priors(data, 2, **kwargs))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sites_round_trip_and_likelihood_matches_sklearn(data, covariance_type):
    gm = sklearn_fit(data, covariance_type)
    priors = default_priors(data, 3)
    sites = sites_from_params(gm.weights_, gm.means_, gm.covariances_, covariance_type, priors.weight_concentration)
    draw = draws_from_sites(sites, covariance_type)
    np.testing.assert_allclose(draw.weights, gm.weights_, rtol=1e-5)
    np.testing.assert_allclose(draw.covariances, gm.covariances_, rtol=1e-4, atol=1e-6)
    log_lik = jax.nn.logsumexp(component_log_joint(draw, jnp.asarray(data, jnp.float32), covariance_type), axis=-1)
    np.testing.assert_allclose(log_lik, gm.score_samples(data), rtol=1e-4)
    # The model's observed site is the same likelihood.
    @jax.jit
    def model_log_lik(sites):
        _, trace = log_density(gaussian_mixture_model, (data, priors), {"covariance_type": covariance_type}, sites)
        return trace["obs"]["fn"].log_prob(trace["obs"]["value"])

    np.testing.assert_allclose(model_log_lik(sites), gm.score_samples(data), rtol=1e-4)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_rescaled_draws_give_the_likelihood_in_data_units(data, covariance_type):
    """A fit to (X - c) / s maps back to X: log p(x) = log p(z) - sum(log s)."""
    center = data.mean(0)
    scale = data.std(0) if covariance_type != "spherical" else np.full(3, data.std())
    Z = (data - center) / scale
    gm = sklearn_fit(Z, covariance_type)
    sites = sites_from_params(gm.weights_, gm.means_, gm.covariances_, covariance_type, jnp.ones(3))
    in_data_units = rescale_draws(draws_from_sites(sites, covariance_type), center, scale, covariance_type)
    log_lik_x = jax.nn.logsumexp(component_log_joint(in_data_units, data, covariance_type), axis=-1)
    np.testing.assert_allclose(log_lik_x, gm.score_samples(Z) - np.sum(np.log(scale)), rtol=1e-4)


def test_sample_weight_two_equals_a_duplicated_row(data):
    """The weighted model's log density equals the unweighted one on data with weight-2 rows repeated."""
    gm = sklearn_fit(data, "full")
    priors = default_priors(data, 3)
    sites = sites_from_params(gm.weights_, gm.means_, gm.covariances_, "full", priors.weight_concentration)
    weights = np.ones(len(data))
    weights[::7] = 2.0
    duplicated = np.concatenate([data, data[::7]])
    @jax.jit
    def joint(X, sample_weight):
        return log_density(gaussian_mixture_model, (X, priors),
                           {"covariance_type": "full", "sample_weight": sample_weight}, sites)[0]

    weighted = joint(data, jnp.asarray(weights))
    repeated = joint(duplicated, None)
    np.testing.assert_allclose(weighted, repeated, rtol=1e-6)


def test_softmax_of_log_gamma_is_dirichlet():
    """weights = softmax(LogGamma(alpha)) has the Dirichlet(alpha) moments, even for a sparse alpha."""
    for alpha in (0.05, 2.0):
        u = LogGamma(jnp.full(4, alpha)).sample(jax.random.key(0), (50_000,))
        assert bool(jnp.all(jnp.isfinite(u)))
        w = np.asarray(jax.nn.softmax(u, axis=-1), dtype=np.float64)
        a0 = 4 * alpha
        np.testing.assert_allclose(w.mean(0), 0.25, atol=0.005)
        np.testing.assert_allclose(w.var(0), 0.25 * 0.75 / (a0 + 1), rtol=0.05)


def test_log_gamma_density_is_normalised():
    grid = jnp.linspace(-200.0, 5.0, 400_001)
    for alpha in (0.1, 0.3, 3.0):
        density = jnp.exp(LogGamma(alpha).log_prob(grid))
        assert abs(float(jnp.trapezoid(density, grid)) - 1.0) < 2e-3


def test_cov_factor_round_trip():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3, 3))
    cov = a @ np.swapaxes(a, -1, -2) + np.eye(3)
    factor = cov_factor_from_covariances(cov, "full")
    draw = MixtureDraws(jnp.ones(4) / 4, jnp.zeros((4, 3)), jnp.asarray(cov), factor)
    np.testing.assert_allclose(factor @ np.swapaxes(factor, -1, -2), cov, rtol=1e-5)
    assert component_log_joint(draw, jnp.zeros((2, 3)), "full").shape == (2, 4)


def test_zero_weight_removes_a_row(data):
    gm = sklearn_fit(data, "diag")
    priors = default_priors(data, 3)
    sites = sites_from_params(gm.weights_, gm.means_, gm.covariances_, "diag", priors.weight_concentration)

    @jax.jit
    def joint(X, sample_weight):
        return log_density(gaussian_mixture_model, (X, priors),
                           {"covariance_type": "diag", "sample_weight": sample_weight}, sites)[0]

    weights = np.ones(len(data))
    weights[:10] = 0.0
    np.testing.assert_allclose(joint(data, jnp.asarray(weights)), joint(data[10:], jnp.ones(len(data) - 10)),
                               rtol=1e-6)
