"""NumPyro models of Gaussian mixtures with marginalised assignments, and their prior defaults.

The model is a plain NumPyro function that declares priors and a likelihood and nothing else. Every
data-dependent default (where the priors are centred, how wide they are) is computed outside the model
by :func:`default_priors` and passed in as a :class:`GMMPriors` pytree, so changing a prior never
changes the model's code path and never recompiles.

Model (``K`` components, ``D`` features, ``n`` observations)::

    weight_logits[k]   ~ LogGamma(alpha)    i.e. exp(weight_logits[k]) ~ Gamma(alpha, 1)     (K,)
    weights            = softmax(weight_logits)  ~ Dirichlet(alpha, ..., alpha)           (K,)
    means[k]           ~ Normal(mean_loc, mean_scale)                             (K, D)
    scales[k, d]       ~ LogNormal(log scale_loc[d], scale_log_sd)  component standard deviations
    corr_cholesky[k]   ~ LKJCholesky(D, lkj_concentration)          full and tied only
    x_i                ~ sum_k weights[k] Normal(x_i | means[k], Sigma_k)   (assignments marginalised)

with ``Sigma_k = diag(scales[k]) C_k diag(scales[k])`` for ``full`` (``C_k = L_k L_k^T`` the
correlation matrix), one shared ``scales`` and ``C`` for ``tied``, ``diag(scales[k]**2)`` for
``diag``, and ``scales[k]**2 I`` for ``spherical`` (one LogNormal per component, centred on the
geometric mean of ``scale_loc``). The component assignments are summed out (log-sum-exp), so the
posterior is a smooth density over continuous parameters that NUTS and SVI can handle.

References
----------
Bishop, C. M. (2006). Pattern Recognition and Machine Learning, ch. 9.
McLachlan, G. and Peel, D. (2000). Finite Mixture Models.
Lewandowski, D., Kurowicka, D. and Joe, H. (2009). Generating random correlation matrices based on
vines and extended onion method. Journal of Multivariate Analysis 100(9).
Rousseau, J. and Mengersen, K. (2011). Asymptotic behaviour of the posterior distribution in
overfitted mixture models. JRSS B 73(5).
Malsiner-Walli, G., Fruhwirth-Schnatter, S. and Grun, B. (2016). Model-based clustering based on
sparse finite Gaussian mixtures. Statistics and Computing 26.
"""

from __future__ import annotations

import contextlib
from functools import partial
from collections.abc import Iterator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import digamma, gammaln, polygamma
from jax.typing import ArrayLike
from numpyro.distributions import constraints

from bayesgmm._boundary import column_moments
from bayesgmm.covariance import SKLEARN_TYPES as COVARIANCE_TYPES  # the models with a NumPyro prior
from bayesgmm.covariance import CovarianceType, form_of
from bayesgmm.missing import kernel_covariances, marginal_log_gaussian, split_observed

#: Default prior standard deviation of a component mean, in units of the data's standard deviation.
DEFAULT_MEAN_PRIOR_SCALE = 2.0
#: Default prior median of a component standard deviation, in units of the data's standard deviation.
DEFAULT_COVARIANCE_PRIOR_SCALE = 0.5
#: Default prior standard deviation of the log of a component standard deviation.
DEFAULT_COVARIANCE_PRIOR_LOG_SD = 1.0
#: Default LKJ concentration: 2 gently favours moderate correlations over +-1.
DEFAULT_LKJ_CONCENTRATION = 2.0


class GMMPriors(NamedTuple):
    """Hyperparameters of :func:`gaussian_mixture_model`, in the units of the data the model sees.

    Attributes
    ----------
    weight_concentration : array of shape (n_components,)
        Dirichlet concentration ``alpha`` of the weights. ``alpha < 1`` pushes weight onto few
        components (a sparse, overfitted mixture); ``alpha = 1`` is uniform on the simplex.
    mean_loc : array of shape (n_features,)
        Prior mean of every component mean.
    mean_scale : array of shape (n_features,)
        Prior standard deviation of every component mean.
    scale_loc : array of shape (n_features,)
        Prior median of the component standard deviations (square roots of the covariance diagonal).
    scale_log_sd : array of shape ()
        Prior standard deviation of the log of a component standard deviation.
    lkj_concentration : array of shape ()
        LKJ concentration of the correlation matrices (``full`` and ``tied`` only).
    """

    weight_concentration: jax.Array
    mean_loc: jax.Array
    mean_scale: jax.Array
    scale_loc: jax.Array
    scale_log_sd: jax.Array
    lkj_concentration: jax.Array


class MixtureDraws(NamedTuple):
    """Mixture parameters with any number of leading sample axes (written ``...`` below).

    Attributes
    ----------
    weights : array of shape (..., n_components)
    means : array of shape (..., n_components, n_features)
    covariances : array
        scikit-learn shapes after the sample axes: full (..., K, D, D), tied (..., D, D),
        diag (..., K, D), spherical (..., K).
    cov_factor : array
        A square root of each covariance: the lower Cholesky factor for full (..., K, D, D) and
        tied (..., D, D); standard deviations for diag (..., K, D) and spherical (..., K).
    """

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array
    cov_factor: jax.Array


class LogGamma(dist.Distribution):
    """The logarithm of a Gamma(concentration, 1) variable.

    Density ``exp(a u - exp(u)) / Gamma(a)`` on the real line: log-concave, and computed without
    forming ``exp(u)`` underflows for tiny ``a``. ``softmax`` of independent ``LogGamma(a_k)`` draws is
    ``Dirichlet(a)``, which lets NUTS work with log-weights that never underflow, even for the
    ``a = 0.01`` of a sparse mixture.

    Parameters
    ----------
    concentration : array
        Gamma shape ``a > 0``.
    """

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.real
    reparametrized_params = ["concentration"]

    def __init__(self, concentration: ArrayLike, *, validate_args: bool | None = None) -> None:
        self.concentration = jnp.asarray(concentration)
        super().__init__(batch_shape=jnp.shape(concentration), validate_args=validate_args)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return jax.random.loggamma(key, self.concentration, sample_shape + self.batch_shape)

    def log_prob(self, value: ArrayLike) -> jax.Array:
        return self.concentration * value - jnp.exp(value) - gammaln(self.concentration)

    @property
    def mean(self) -> jax.Array:
        return digamma(self.concentration)

    @property
    def variance(self) -> jax.Array:
        return polygamma(1, self.concentration)


def weighted_moments(X: np.ndarray, sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of each feature (host, float64).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        NaN entries (missing values) are left out: each feature's moments are its observed values'.
    sample_weight : array of shape (n_samples,), optional

    Returns
    -------
    mean, std : arrays of shape (n_features,)
        A feature with zero spread gets standard deviation 1, so it can be used as a scale.
    """
    X = np.asarray(X)
    mean, variance = column_moments(X, sample_weight, ignore_nan=bool(np.isnan(X).any()))
    std = np.sqrt(variance)
    return mean, np.where(std > 0, std, 1.0)


def default_priors(
    X: ArrayLike,
    n_components: int,
    *,
    weight_concentration_prior: float | ArrayLike | None = None,
    mean_prior: ArrayLike | None = None,
    mean_prior_scale: float | ArrayLike | None = None,
    covariance_prior_scale: float | ArrayLike | None = None,
    covariance_prior_log_sd: float = DEFAULT_COVARIANCE_PRIOR_LOG_SD,
    lkj_concentration: float = DEFAULT_LKJ_CONCENTRATION,
    sample_weight: ArrayLike | None = None,
) -> GMMPriors:
    """Weakly informative priors centred on and scaled to the data; every default can be overridden.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        The data the model will see (it may be standardised already).
    n_components : int
    weight_concentration_prior : float or array of shape (n_components,), optional
        Dirichlet ``alpha``. Default ``1 / n_components``, as in scikit-learn. Smaller values with a
        generous ``n_components`` empty the superfluous components (a sparse overfitted mixture;
        Rousseau & Mengersen 2011 show this happens when ``alpha`` is below half the number of
        parameters of one component; Malsiner-Walli et al. 2016 recommend ``alpha`` around 0.01).
    mean_prior : array of shape (n_features,), optional
        Centre of the component means. Default: the (weighted) data mean.
    mean_prior_scale : float or array of shape (n_features,), optional
        Standard deviation of the component means. Default: ``2 *`` the data standard deviation
        per feature, wide enough for small clusters far from the data mean.
    covariance_prior_scale : float or array of shape (n_features,), optional
        Prior median of a component's standard deviation per feature. Default: ``0.5 *`` the data
        standard deviation.
    covariance_prior_log_sd : float, default 1.0
        Prior standard deviation of the log component standard deviation: the default gives a 95%
        prior interval of about ``[0.14, 7] * covariance_prior_scale``.
    lkj_concentration : float, default 2.0
        LKJ shape of the correlation matrices (1 is uniform over correlation matrices).
    sample_weight : array of shape (n_samples,), optional
        Weights used for the data mean and standard deviation.

    Returns
    -------
    GMMPriors

    Examples
    --------
    >>> import numpy as np
    >>> priors = default_priors(np.array([[0.0, 1.0], [2.0, 3.0]]), 3)
    >>> priors.mean_loc.tolist(), priors.mean_scale.tolist()
    ([1.0, 2.0], [2.0, 2.0])
    """
    mean, std = weighted_moments(np.asarray(X), None if sample_weight is None else np.asarray(sample_weight))
    d = mean.shape[0]
    alpha = 1.0 / n_components if weight_concentration_prior is None else weight_concentration_prior
    mean_loc = mean if mean_prior is None else mean_prior
    mean_scale = DEFAULT_MEAN_PRIOR_SCALE * std if mean_prior_scale is None else mean_prior_scale
    scale_loc = DEFAULT_COVARIANCE_PRIOR_SCALE * std if covariance_prior_scale is None else covariance_prior_scale
    f32 = jnp.float32
    return GMMPriors(
        weight_concentration=jnp.broadcast_to(jnp.asarray(alpha, f32), (n_components,)),
        mean_loc=jnp.broadcast_to(jnp.asarray(mean_loc, f32), (d,)),
        mean_scale=jnp.broadcast_to(jnp.asarray(mean_scale, f32), (d,)),
        scale_loc=jnp.broadcast_to(jnp.asarray(scale_loc, f32), (d,)),
        scale_log_sd=jnp.asarray(covariance_prior_log_sd, f32),
        lkj_concentration=jnp.asarray(lkj_concentration, f32),
    )


def validate_priors(priors: GMMPriors) -> None:
    """Raise ``ValueError`` naming the hyperparameter that is not finite and positive where it must be."""
    positive = {
        "weight_concentration_prior": priors.weight_concentration,
        "mean_prior_scale": priors.mean_scale,
        "covariance_prior_scale": priors.scale_loc,
        "covariance_prior_log_sd": priors.scale_log_sd,
        "lkj_concentration": priors.lkj_concentration,
    }
    for name, value in positive.items():
        value = np.asarray(value)
        if not (np.all(np.isfinite(value)) and np.all(value > 0)):
            raise ValueError(f"{name} must be finite and > 0, got {value.tolist()}")
    if not np.all(np.isfinite(np.asarray(priors.mean_loc))):
        raise ValueError(f"mean_prior must be finite, got {np.asarray(priors.mean_loc).tolist()}")


def mixture_distribution(
    weights: ArrayLike, means: ArrayLike, cov_factor: ArrayLike, covariance_type: CovarianceType
) -> dist.MixtureSameFamily:
    """The Gaussian mixture of one parameter draw as a NumPyro distribution.

    Parameters
    ----------
    weights : array of shape (n_components,)
    means : array of shape (n_components, n_features)
    cov_factor : array
        See :class:`MixtureDraws`.
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    numpyro.distributions.MixtureSameFamily
        Event shape (n_features,); ``component_log_probs(X)`` gives ``log w_k + log N(x | k)``, shape
        (n_samples, n_components).
    """
    means = jnp.asarray(means)
    form = form_of(covariance_type)
    if form.matrix:
        component = dist.MultivariateNormal(means, scale_tril=cov_factor)
    else:
        component = dist.Normal(means, form.stddevs(jnp.asarray(cov_factor), means.shape[-1])).to_event(1)
    return dist.MixtureSameFamily(dist.Categorical(probs=weights), component)


class MarginalMixture(dist.Distribution):
    """A Gaussian mixture whose density at a row with NaN entries (missing values, missing at
    random) is that of the row's observed coordinates: ``sum_k w_k N(x_o | mu_k,o, Sigma_k,oo)``
    (:mod:`bayesgmm.missing`). Draws are complete rows of the mixture.

    Parameters
    ----------
    weights : array of shape (n_components,)
    means : array of shape (n_components, n_features)
    cov_factor : array
        See :class:`MixtureDraws`.
    covariance_type : {"full", "tied", "diag", "spherical"}
    """

    support = constraints.real_vector  # NaN marks what is not observed; it is never drawn

    def __init__(self, weights: ArrayLike, means: ArrayLike, cov_factor: ArrayLike,
                 covariance_type: CovarianceType, *, validate_args: bool | None = None) -> None:
        self.weights, self.means = jnp.asarray(weights), jnp.asarray(means)
        self.cov_factor, self.covariance_type = jnp.asarray(cov_factor), covariance_type
        k, d = self.means.shape
        form = form_of(covariance_type)
        self.covariances = kernel_covariances(form, covariances_from_factor(self.cov_factor, covariance_type), k, d)
        super().__init__(batch_shape=(), event_shape=(d,), validate_args=validate_args)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        mixture = mixture_distribution(self.weights, self.means, self.cov_factor, self.covariance_type)
        return mixture.sample(key, sample_shape)

    def component_log_probs(self, value: ArrayLike) -> jax.Array:
        """``log w_k + log N(x_o | mu_k, Sigma_k)`` for rows (n_samples, n_features): (n_samples, n_components)."""
        value = jnp.asarray(value)
        flat = value.reshape(-1, value.shape[-1])
        log_gauss = marginal_log_gaussian(*split_observed(flat), self.means, self.covariances)
        return (log_gauss + jnp.log(self.weights)).reshape(value.shape[:-1] + (self.weights.shape[-1],))

    def log_prob(self, value: ArrayLike) -> jax.Array:
        return jax.nn.logsumexp(self.component_log_probs(value), axis=-1)


def cov_factor_from_sites(sites: dict[str, jax.Array], covariance_type: CovarianceType) -> jax.Array:
    """Covariance square root (see :class:`MixtureDraws`) from the model's ``scales``/``corr_cholesky``.

    Works with any leading sample axes.
    """
    scales = sites["scales"]
    if form_of(covariance_type).matrix:
        if "corr_cholesky" not in sites:  # one feature: the correlation matrix is [[1]]
            return scales[..., None]
        return scales[..., :, None] * sites["corr_cholesky"]
    return scales


def covariances_from_factor(cov_factor: ArrayLike, covariance_type: CovarianceType) -> jax.Array:
    """Covariances (scikit-learn shapes) from their square roots (see :class:`MixtureDraws`)."""
    return form_of(covariance_type).covariances_from_factor(jnp.asarray(cov_factor))


def cov_factor_from_covariances(covariances: ArrayLike, covariance_type: CovarianceType) -> jax.Array:
    """Square roots (see :class:`MixtureDraws`) of covariances given in scikit-learn shapes."""
    return form_of(covariance_type).cov_factor(jnp.asarray(covariances))


@partial(jax.jit, static_argnames="covariance_type")
def sites_from_params(
    weights: ArrayLike, means: ArrayLike, covariances: ArrayLike, covariance_type: CovarianceType,
    weight_concentration: ArrayLike,
) -> dict[str, jax.Array]:
    """The model's sample sites (constrained values) that reproduce a point estimate, e.g. from EM.

    Parameters
    ----------
    weights : array of shape (n_components,)
    means : array of shape (n_components, n_features)
    covariances : array
        scikit-learn shapes by ``covariance_type``.
    covariance_type : {"full", "tied", "diag", "spherical"}
    weight_concentration : array of shape (n_components,)
        The Dirichlet prior's ``alpha`` (sets the scale of ``weight_logits``, which the weights do not
        determine).

    Returns
    -------
    dict
        ``weight_logits``, ``means``, ``scales`` and, for full and tied with more than one feature,
        ``corr_cholesky``; suitable for ``init_to_value``.
    """
    weights = jnp.asarray(weights, jnp.float32)
    means = jnp.asarray(means, jnp.float32)
    factor = cov_factor_from_covariances(jnp.asarray(covariances, jnp.float32), covariance_type)
    # Dirichlet weights are normalised Gamma(alpha, 1) variables; start their total at its prior mean.
    log_weights = jnp.log(weights / jnp.sum(weights))
    sites = {"weight_logits": log_weights + jnp.log(jnp.sum(weight_concentration)), "means": means}
    if form_of(covariance_type).matrix:
        scales = jnp.linalg.norm(factor, axis=-1)  # sqrt of the covariance diagonal
        sites["scales"] = scales
        if means.shape[-1] > 1:
            sites["corr_cholesky"] = factor / scales[..., :, None]
    else:
        sites["scales"] = factor
    return sites


def gaussian_mixture_model(
    X: ArrayLike,
    priors: GMMPriors,
    covariance_type: CovarianceType = "full",
    sample_weight: ArrayLike | None = None,
    subsample_size: int | None = None,
    missing: bool = False,
) -> None:
    """NumPyro model of a Gaussian mixture with marginalised component assignments.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Observations (site ``obs``).
    priors : GMMPriors
        Hyperparameters; ``n_components`` is the length of ``priors.weight_concentration``.
    covariance_type : {"full", "tied", "diag", "spherical"}
        Static: picks the sites.
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights multiplying each observation's log-likelihood, so weight 2 is the same
        as a duplicated row and weight 0 removes the row.
    subsample_size : int, optional
        Static. Evaluate the likelihood on a mini-batch of this many rows, the indices of
        ``numpyro.plate("obs_id", n, subsample_size=...)``, drawn uniformly with replacement from
        the PRNG stream of the seed handler running the model (SVI draws a new batch every step).
        The plate multiplies the batch's (weighted) log-likelihood by ``n / subsample_size``, an
        unbiased estimate of the full weighted log-likelihood (and its gradient of the full one). Inference that needs the
        exact density (HMC/NUTS, ``potential_energy``) must leave it ``None``: the model is then
        evaluated on every row, unchanged.
    missing : bool, default False
        Static. X has NaN where values are missing (at random): each row's likelihood is its
        observed coordinates' marginal (:class:`MarginalMixture`), so NUTS and VI take the rows EM
        takes with ``missing="marginalize"``.

    Notes
    -----
    Sites: ``weight_logits`` (K,) with the deterministic ``weights = softmax(weight_logits)``,
    ``means`` (K, D), ``scales`` ((K, D) full and diag, (D,) tied,
    (K,) spherical), ``corr_cholesky`` ((K, D, D) full, (D, D) tied; absent when D == 1) and the
    observed ``obs`` (n, D). See the module docstring for the priors.

    Examples
    --------
    >>> import jax, numpy as np
    >>> from numpyro.infer import Predictive
    >>> X = np.random.default_rng(0).normal(size=(20, 2))
    >>> priors = default_priors(X, 2)
    >>> draws = Predictive(gaussian_mixture_model, num_samples=3)(jax.random.key(0), X, priors)
    >>> draws["means"].shape, draws["corr_cholesky"].shape
    ((3, 2, 2), (3, 2, 2, 2))
    """
    X = jnp.asarray(X)
    n, d = X.shape
    k = priors.weight_concentration.shape[-1]
    log_scale_loc = jnp.log(priors.scale_loc)
    form = form_of(covariance_type)
    sites = {}
    with numpyro.plate("component", k):
        weight_logits = numpyro.sample("weight_logits", LogGamma(priors.weight_concentration))
        means = numpyro.sample("means", dist.Normal(priors.mean_loc, priors.mean_scale).to_event(1))
        if form.isotropic:
            sites["scales"] = numpyro.sample("scales", dist.LogNormal(jnp.mean(log_scale_loc), priors.scale_log_sd))
        elif form.per_component:
            sites["scales"] = numpyro.sample("scales", dist.LogNormal(log_scale_loc, priors.scale_log_sd).to_event(1))
        if form.per_component and form.matrix and d > 1:
            sites["corr_cholesky"] = numpyro.sample("corr_cholesky", dist.LKJCholesky(d, priors.lkj_concentration))
    if not form.per_component:
        sites["scales"] = numpyro.sample("scales", dist.LogNormal(log_scale_loc, priors.scale_log_sd).to_event(1))
        if d > 1:
            sites["corr_cholesky"] = numpyro.sample("corr_cholesky", dist.LKJCholesky(d, priors.lkj_concentration))
    weights = numpyro.deterministic("weights", jax.nn.softmax(weight_logits))
    mixture = (MarginalMixture if missing else mixture_distribution)(
        weights, means, cov_factor_from_sites(sites, covariance_type), covariance_type)
    if subsample_size is None:
        with numpyro.plate("obs_id", n), _weighting(sample_weight):
            numpyro.sample("obs", mixture, obs=X)
        return
    with _rows_with_replacement(), numpyro.plate("obs_id", n, subsample_size=subsample_size) as rows:
        with _weighting(None if sample_weight is None else jnp.asarray(sample_weight)[rows]):
            numpyro.sample("obs", mixture, obs=X[rows])


def _draw_rows(size: int, subsample_size: int, rng_key: jax.Array | None = None) -> jax.Array:
    if rng_key is None:
        raise ValueError("subsample_size needs a PRNG key (SVI runs the model under a seed); NUTS and "
                         "potential_energy need the exact density: leave subsample_size=None")
    return jax.random.randint(rng_key, (subsample_size,), 0, size)


class _rows_with_replacement(numpyro.primitives.Messenger):
    """Make the enclosed subsampled plate draw its rows uniformly with replacement, in O(subsample_size).

    Still unbiased: each of the ``m`` rows is row ``i`` with probability ``1/n``, so ``n/m`` times the
    batch sum has expectation the full sum. NumPyro's own draw is without replacement and costs O(n)
    per step (on CPU a sequential Fisher-Yates pass of ``m`` swaps over an ``n``-vector: 11 to 113 ms
    per draw for n = 1e5..1e6 and m = 1e3..1e4 on 2 cores, more than the whole mini-batch gradient).
    """

    def process_message(self, msg: dict) -> None:
        if msg["type"] == "plate" and msg["value"] is None:  # None: a subsample is to be drawn
            msg["fn"] = _draw_rows


@contextlib.contextmanager
def _weighting(sample_weight: ArrayLike | None) -> Iterator[None]:
    """Multiply each observation's log-likelihood by its weight; a zero weight masks the row out."""
    if sample_weight is None:
        yield
        return
    sample_weight = jnp.asarray(sample_weight)
    positive = sample_weight > 0
    with numpyro.handlers.mask(mask=positive), numpyro.handlers.scale(scale=jnp.where(positive, sample_weight, 1.0)):
        yield


@partial(jax.jit, static_argnames="covariance_type")
def draws_from_sites(sites: dict[str, jax.Array], covariance_type: CovarianceType) -> MixtureDraws:
    """Collect the model's sites (any leading sample axes) into :class:`MixtureDraws`."""
    factor = cov_factor_from_sites(sites, covariance_type)
    weights = jax.nn.softmax(sites["weight_logits"])
    return MixtureDraws(weights, sites["means"], covariances_from_factor(factor, covariance_type), factor)


@partial(jax.jit, static_argnames="covariance_type")
def rescale_draws(draws: MixtureDraws, center: ArrayLike, scale: ArrayLike,
                  covariance_type: CovarianceType) -> MixtureDraws:
    """Map draws of a model fitted to ``(X - center) / scale`` back to the units of ``X``.

    Parameters
    ----------
    draws : MixtureDraws
        In standardised units.
    center, scale : arrays of shape (n_features,)
        For ``spherical`` all entries of ``scale`` must be equal (a spherical covariance stays
        spherical only under a common scale).
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    MixtureDraws
        In data units.
    """
    center = jnp.asarray(center, jnp.float32)
    scale = jnp.asarray(scale, jnp.float32)
    factor = form_of(covariance_type).rescale_factor(draws.cov_factor, scale)
    return MixtureDraws(draws.weights, center + scale * draws.means,
                        covariances_from_factor(factor, covariance_type), factor)


@partial(jax.jit, static_argnames=("covariance_type", "missing"))
def component_log_joint(draw: MixtureDraws, X: ArrayLike, covariance_type: CovarianceType,
                        missing: bool = False) -> jax.Array:
    """``log w_k + log N(x_i | mu_k, Sigma_k)`` for one draw.

    Parameters
    ----------
    draw : MixtureDraws
        One draw (no sample axes).
    X : array of shape (n_samples, n_features)
    covariance_type : {"full", "tied", "diag", "spherical"}
    missing : bool, default False
        Static. X has NaN where values are missing: the density of each row's observed coordinates
        (:class:`MarginalMixture`).

    Returns
    -------
    jax.Array of shape (n_samples, n_components)
    """
    mixture = (MarginalMixture if missing else mixture_distribution)(
        draw.weights, draw.means, draw.cov_factor, covariance_type)
    return mixture.component_log_probs(jnp.asarray(X))
