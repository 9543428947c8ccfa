"""inference="gibbs": the conjugate blocked Gibbs sampler against closed forms and quadrature,
sparse finite mixtures (K+) and the telescoping sampler (K).

Fits are shared in module-scoped fixtures; every fit uses 2 chains so compiled programs are shared
where the shapes agree.
"""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaincinv, polygamma
from scipy.optimize import brentq

from bayesgmm.bayes import gibbs
from bayesgmm.bayes.estimator import BayesianGaussianMixture

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------------------------
# Building blocks against closed forms
# ------------------------------------------------------------------------------------------------


def test_log_gamma_variates_match_scipy():
    shapes = np.array([1e-3, 0.05, 0.7, 1.0, 4.5, 200.0], np.float32)
    u = jax.random.uniform(jax.random.key(0), (17 * 6 * 20000,), minval=np.finfo(np.float32).tiny)
    draws = np.asarray(gibbs.Uniforms(u).log_gamma(jnp.tile(jnp.asarray(shapes), (20000, 1))), np.float64)
    for j, a in enumerate(shapes):
        assert stats.kstest(draws[:, j], stats.loggamma(a).cdf).pvalue > 1e-3, a


def test_inverse_wishart_draws_have_the_closed_form_mean():
    dof, scale = 9.0, np.array([[2.0, 0.6], [0.6, 1.0]])
    n = 6000
    size = n * (2 * 17 + 1)
    stream = gibbs.Uniforms(jax.random.uniform(jax.random.key(1), (size,), minval=np.finfo(np.float32).tiny))
    factor = gibbs.sample_inverse_wishart_factor(stream, jnp.full(n, dof, jnp.float32),
                                                 jnp.broadcast_to(jnp.asarray(scale, jnp.float32), (n, 2, 2)))
    sigma = np.asarray(factor @ jnp.swapaxes(factor, -1, -2), np.float64)
    expected = scale / (dof - 2 - 1)  # E[IW(dof, Psi)] = Psi / (dof - D - 1)
    # Var of IW entries is finite for dof > D + 3; 5 standard errors
    se = sigma.std(axis=0) / np.sqrt(n)
    np.testing.assert_array_less(np.abs(sigma.mean(axis=0) - expected), 5 * se)


def test_partition_probability_sums_to_one_over_assignments():
    """sum over all labelled assignments of 3 rows to K=2 slots of p(z | K, gamma) is 1."""
    gamma, k = 0.7, 2
    total = 0.0
    for z in np.ndindex(*(k,) * 3):
        counts = np.bincount(z, minlength=k).astype(np.float32)
        filled = counts > 0
        # p(C | K) counts the K!/(K-K+)! labelled versions of the partition; one labelled z is its share.
        log_p = float(gibbs.log_partition_probability(jnp.asarray(counts), jnp.asarray(filled), k, gamma))
        labelled = math.factorial(k) / math.factorial(k - int(filled.sum()))
        total += math.exp(log_p) / labelled
    assert abs(total - 1.0) < 1e-5


# ------------------------------------------------------------------------------------------------
# The sampler against a reference posterior: two well-separated 1-D clusters
# ------------------------------------------------------------------------------------------------

SIZES = (30, 50)
PRIOR = dict(mean_prior=[0.0], mean_prior_scale=4.0, covariance_prior_scale=1.0, covariance_prior_log_sd=1.0,
             weight_concentration_prior=1.5)


@pytest.fixture(scope="module")
def separated() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.concatenate([rng.normal(-6.0, 1.0, (SIZES[0], 1)), rng.normal(5.0, 1.3, (SIZES[1], 1))])


@pytest.fixture(scope="module")
def separated_fits(separated):
    fits = {}
    for ct in ("diag", "full"):
        fits[ct] = BayesianGaussianMixture(2, covariance_type=ct, inference="gibbs", num_chains=2, num_warmup=300,
                                           num_samples=3000, random_state=0, **PRIOR).fit(separated)
    return fits


def _grid_posterior(x: np.ndarray) -> dict[str, float]:
    """Posterior mean and sd of mu and sigma^2 for one Normal component by quadrature on a fine grid.

    Prior: mu ~ N(0, 4^2) independent of sigma^2 ~ InvGamma(a, b), with a and b the documented map from
    the NUTS prior (median sd 1, sd of log sd 1).
    """
    a = brentq(lambda s: polygamma(1, s) - 4.0 * 1.0**2, 1e-8, 1e8)
    b = 1.0**2 * gammaincinv(a, 0.5)
    mu = np.linspace(x.mean() - 2.0, x.mean() + 2.0, 301)
    log_var = np.linspace(np.log(x.var()) - 2.5, np.log(x.var()) + 2.5, 301)
    M, L = np.meshgrid(mu, log_var, indexing="ij")
    V = np.exp(L)
    log_post = (stats.norm.logpdf(M, 0.0, 4.0) + stats.invgamma.logpdf(V, a, scale=b) + L  # Jacobian of log var
                + np.sum(stats.norm.logpdf(x[:, None, None], M[None], np.sqrt(V)[None]), axis=0))
    p = np.exp(log_post - log_post.max())
    p /= p.sum()
    out = {}
    for name, value in (("mu", M), ("var", V)):
        mean = float(np.sum(p * value))
        out[name] = (mean, float(np.sqrt(np.sum(p * (value - mean) ** 2))))
    return out


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_gibbs_posterior_matches_quadrature_and_beta(separated_fits, separated, covariance_type):
    """Assignments are certain here, so each component's posterior is the one-component posterior of its
    cluster (2-D quadrature) and the first weight is Beta(n1 + alpha, n2 + alpha)."""
    bgm = separated_fits[covariance_type]
    post = bgm.idata_["posterior"]
    order = np.argsort(bgm.means_[:, 0])
    n_draws = post.sizes["chain"] * post.sizes["draw"]
    clusters = (separated[:SIZES[0], 0], separated[SIZES[0]:, 0])
    for label, x in zip(order, clusters):
        reference = _grid_posterior(x)
        mu = post["means"].values[..., label, 0].ravel()
        var = post["covariances"].values[..., label, 0, 0].ravel() if covariance_type == "full" else \
            post["covariances"].values[..., label, 0].ravel()
        for name, draws in (("mu", mu), ("var", var)):
            mean, sd = reference[name]
            assert abs(draws.mean() - mean) < 4 * sd / np.sqrt(n_draws / 2), (name, draws.mean(), mean)
            assert abs(draws.std() / sd - 1) < 0.08, (name, draws.std(), sd)
    beta = stats.beta(SIZES[0] + 1.5, SIZES[1] + 1.5)
    w = post["weights"].values[..., order[0]].ravel()
    assert abs(w.mean() - beta.mean()) < 4 * beta.std() / np.sqrt(n_draws / 2)
    assert abs(w.std() / beta.std() - 1) < 0.08


def test_gibbs_fit_feeds_the_common_outputs(separated_fits, separated):
    bgm = separated_fits["diag"]
    assert bgm.idata_.attrs["inference"] == "gibbs"
    assert bgm.chain_method_ == "vectorized" and bgm.n_divergences_ == 0
    diagnostics = bgm.summary(kind="diagnostics")
    assert float(diagnostics["r_hat"].max()) < 1.01
    assert set(bgm.idata_["sample_stats"].data_vars) >= {"n_filled", "concentration"}
    assert np.allclose(bgm.n_occupied_posterior_, [0, 0, 1])
    assert np.allclose(bgm.n_components_posterior_, [0, 1])
    assert bgm.n_clusters_ == 2 and bgm.cluster_non_permutation_rate_ == 0.0
    labels = bgm.predict(separated)
    assert np.array_equal(bgm.cluster_labels_ == bgm.cluster_labels_[0], labels == labels[0])
    assert np.isfinite(bgm.score(separated))


@pytest.mark.parametrize("kwargs, words", [
    ({"covariance_type": "tied"}, "inference='gibbs' supports covariance_type in"),
    ({"covariance_type": "spherical"}, "covariance_type='spherical'"),
    ({"chain_method": "sequential"}, "chain_method must be 'auto' or 'vectorized'"),
    ({"n_components_prior": "poisson"}, "n_components_prior must be None, 'uniform' or an array"),
    ({"n_components_prior": [1.0, -1.0]}, r"n_components_prior must be an array of shape \(2,\)"),
    ({"weight_concentration_prior": "beta"}, "weight_concentration_prior must be a number"),
    ({"weight_concentration_prior": ("gamma", 1.0, 0.0)}, r"\('gamma', shape, rate\) with shape, rate > 0"),
])
def test_gibbs_refuses_what_it_cannot_do(kwargs, words):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=words):
        BayesianGaussianMixture(2, inference="gibbs", **kwargs).fit(X)


@pytest.mark.parametrize("kwargs, words", [
    ({"weight_concentration_prior": "gamma"}, "weight_concentration_prior='gamma' needs inference='gibbs'"),
    ({"n_components_prior": "uniform"}, "n_components_prior needs inference='gibbs'"),
])
def test_gibbs_options_need_gibbs(kwargs, words):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=words):
        BayesianGaussianMixture(2, **kwargs).fit(X)


def test_gibbs_refuses_missing_values():
    X = np.random.default_rng(0).normal(size=(20, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="inference='gibbs' needs complete data"):
        BayesianGaussianMixture(2, inference="gibbs", missing="marginalize").fit(X)


# ------------------------------------------------------------------------------------------------
# Sparse finite mixtures: K+ on three well-separated clusters
# ------------------------------------------------------------------------------------------------


def three_clusters(seed: int = 0, per_cluster: int = 100) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 5.0]])
    return np.concatenate([rng.normal(c, 1.0, size=(per_cluster, 2)) for c in centers])


@pytest.fixture(scope="module")
def sparse_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # EM with 8 components on 3 clusters
        return BayesianGaussianMixture(8, inference="gibbs", weight_concentration_prior=("gamma", 1.0, 100.0),
                                       num_chains=2, num_warmup=500, num_samples=1000,
                                       random_state=0).fit(three_clusters())


def test_sparse_mixture_finds_three_filled_components(sparse_fit):
    occupied = sparse_fit.n_occupied_posterior_
    assert int(np.argmax(occupied)) == 3 and occupied[3] > 0.5
    # the sampler's own K+ (its assignments) agrees with the resampled occupancy
    own = np.bincount(sparse_fit.idata_["sample_stats"]["n_filled"].values.ravel(), minlength=9) / 2000
    assert abs(own[3] - occupied[3]) < 0.05
    concentration = sparse_fit.idata_["sample_stats"]["concentration"].values
    assert 0.2 < float(sparse_fit.idata_["sample_stats"]["acceptance_rate"].mean()) < 0.7
    assert float(concentration.mean()) < 0.1


def test_sparse_mixture_identifies_the_clusters(sparse_fit):
    assert sparse_fit.n_clusters_ == 3
    assert sparse_fit.cluster_non_permutation_rate_ < 0.05
    found = sparse_fit.cluster_means_[np.lexsort(sparse_fit.cluster_means_.T[::-1])]
    np.testing.assert_allclose(found, [[0.0, 0.0], [3.0, 5.0], [6.0, 0.0]], atol=0.3)
    np.testing.assert_allclose(np.sort(sparse_fit.cluster_weights_), [1 / 3] * 3, atol=0.05)
    truth = np.repeat(np.arange(3), 100)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, sparse_fit.cluster_labels_) > 0.95


def test_sparse_mixture_runs_on_overlapping_clusters():
    rng = np.random.default_rng(1)  # 300 rows and the sparse fit's settings: the same compiled sampler
    X = np.concatenate([rng.normal([0, 0], 1.0, (150, 2)), rng.normal([1.5, 0.5], 1.0, (150, 2))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        bgm = BayesianGaussianMixture(8, inference="gibbs", weight_concentration_prior="gamma", num_chains=2,
                                      num_warmup=500, num_samples=1000, random_state=0).fit(X)
    assert abs(bgm.n_occupied_posterior_.sum() - 1) < 1e-12
    assert np.all(np.isfinite(bgm.score_samples(X)))
    assert 0.05 < float(bgm.idata_["sample_stats"]["concentration"].mean()) < 0.3  # near its prior mean 1/8


# ------------------------------------------------------------------------------------------------
# The telescoping sampler: a posterior on K for the galaxy velocities
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def galaxies_fit():
    from bayesgmm.datasets import load_galaxies

    X = load_galaxies()[["velocity"]].to_numpy() / 1000.0  # 1000 km/s, as in Richardson and Green (1997)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # EM with 15 components on 82 rows
        return BayesianGaussianMixture(15, covariance_type="diag", inference="gibbs", n_components_prior="uniform",
                                       weight_concentration_prior=1.0, num_chains=2, num_warmup=500,
                                       num_samples=2000, random_state=0).fit(X)


def test_galaxies_posterior_on_the_number_of_components(galaxies_fit):
    """Properties, not published figures (see docs/guide/priors.md): the posterior of K under a uniform
    prior on 1..15 and Dirichlet(1) weights leaves out K <= 2, has its mode at 4..7 and most of its mass
    on 3..10, and K >= K+ draw by draw (so P(K <= k) <= P(K+ <= k))."""
    p = galaxies_fit.n_components_posterior_
    assert p.shape == (15,) and abs(p.sum() - 1) < 1e-12
    assert p[:2].sum() < 0.01
    assert 4 <= int(np.argmax(p)) + 1 <= 7
    assert p[2:10].sum() > 0.8
    stats_ = galaxies_fit.idata_["sample_stats"]
    assert np.all(stats_["n_components"].values >= stats_["n_filled"].values)
    filled = np.bincount(stats_["n_filled"].values.ravel(), minlength=16)[1:] / stats_["n_filled"].size
    assert np.all(np.cumsum(p) <= np.cumsum(filled) + 1e-12)


def test_partition_posterior_of_k_matches_bruteforce():
    """The K-step's weights p(K) p(C | K, gamma) against the Dirichlet-multinomial computed by hand."""
    counts = jnp.array([3.0, 0.0, 5.0, 1.0])
    filled = counts > 0
    gamma = 0.4
    ks = jnp.arange(1, 5)
    got = np.asarray(gibbs.log_partition_probability(counts, filled, ks, gamma))
    for k, value in zip(range(1, 5), got):
        if k < 3:
            assert value == -np.inf
            continue
        nk = [3, 5, 1]
        ref = (math.log(math.factorial(k) / math.factorial(k - 3)) + math.lgamma(k * gamma) - math.lgamma(9 + k * gamma)
               + sum(math.lgamma(n + gamma) - math.lgamma(gamma) for n in nk))
        assert abs(value - ref) < 1e-4


# ------------------------------------------------------------------------------------------------
# Model files
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", ["sparse_fit", "galaxies_fit"])
def test_gibbs_posterior_round_trips_through_a_model_file(fit, request, tmp_path):
    """The posterior on K and the identified clustering are saved and loaded bit for bit."""
    from bayesgmm import ModelFileError, load, save

    model = request.getfixturevalue(fit)
    path = tmp_path / "gibbs.bgmm"
    save(model, path)
    loaded = load(path)
    for name in ("n_components_posterior_", "n_clusters_", "cluster_weights_", "cluster_means_",
                 "cluster_covariances_", "cluster_labels_", "cluster_non_permutation_rate_"):
        np.testing.assert_array_equal(np.asarray(getattr(loaded, name)), np.asarray(getattr(model, name)), name)
    np.testing.assert_array_equal(loaded.cluster_draws_.means, model.cluster_draws_.means)
    # a file whose clustering disagrees with itself is refused by name
    model.cluster_labels_, labels = model.cluster_labels_ + model.n_clusters_, model.cluster_labels_
    try:
        save(model, path)
    finally:
        model.cluster_labels_ = labels
    with pytest.raises(ModelFileError, match="cluster_labels_ must lie in range"):
        load(path)
