"""Blocked Gibbs sampling of Gaussian mixtures on conditionally conjugate priors, as a NumPyro ``MCMCKernel``.

One sweep of :class:`GibbsMixture` draws, in turn (``K`` component slots, ``N`` rows, ``D`` features):

1. the assignments ``z_i | w, theta ~ Categorical(w_k N(x_i | mu_k, Sigma_k))``, all rows at once;
2. per component, ``mu_k | Sigma_k, z ~ Normal`` and then ``Sigma_k | mu_k, z ~ inverse-Wishart``
   (``full``) or, per feature, ``sigma^2_kd | mu_kd, z ~ inverse-Gamma`` (``diag``); an empty
   component is drawn from its prior;
3. with ``sample_n_components``, the number of components ``K`` given the partition (the telescoping
   sampler of Fruhwirth-Schnatter, Malsiner-Walli and Grun 2021); with ``sample_concentration``, the
   Dirichlet parameter ``gamma`` by a random-walk Metropolis-Hastings step on ``log gamma`` given the
   partition (its step size adapted during warm-up towards an acceptance rate of 0.44);
4. the weights ``w | z ~ Dirichlet(gamma + N_1, ..., gamma + N_K)`` over the ``K`` active slots (drawn
   as normalised log-Gamma variables, so the tiny weights of a sparse mixture never underflow to
   ``log 0``).

The priors (:class:`GibbsPriors`, built from the estimator's hyperparameters by :func:`gibbs_priors`)::

    w | K, gamma       ~ Dirichlet_K(gamma, ..., gamma)       (or a fixed per-component alpha_k)
    gamma              ~ Gamma(a_gamma, b_gamma)               with sample_concentration
    K                  ~ p(K), K = 1..K_max                    with sample_n_components
    mu_k               ~ Normal(mean_loc, diag(mean_scale^2))  independent of Sigma_k
    Sigma_k            ~ inverse-Wishart(dof, diag(cov_scale))                        (full)
    sigma^2_kd         ~ inverse-Gamma(dof, cov_scale_d)                              (diag)

The partition's probability given ``K`` and ``gamma`` (assignments summed over the labels of
``K+`` filled components among ``K``) drives steps 3::

    p(C | K, gamma) = K! / (K - K+)! * Gamma(K gamma) / Gamma(N + K gamma) * prod_{k filled} Gamma(N_k + gamma) / Gamma(gamma)

Everything runs compiled: :func:`run_gibbs` runs NumPyro's :class:`~numpyro.infer.MCMC` with this
kernel inside one jitted program, chains vectorised (a sweep is cheap, so batching chains costs
little even on CPU), cached on its static settings.

References
----------
Diebolt, J. and Robert, C. P. (1994). Estimation of finite mixture distributions through Bayesian
sampling. JRSS B 56(2).
Fruhwirth-Schnatter, S. (2006). Finite Mixture and Markov Switching Models, ch. 3 and 6. Springer.
Malsiner-Walli, G., Fruhwirth-Schnatter, S. and Grun, B. (2016). Model-based clustering based on
sparse finite Gaussian mixtures. Statistics and Computing 26.
Fruhwirth-Schnatter, S., Malsiner-Walli, G. and Grun, B. (2021). Generalized mixtures of finite
mixtures and telescoping sampling. Bayesian Analysis 16(4).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve, solve_triangular
from jax.scipy.special import gammaln, ndtri
from numpyro.infer import MCMC
from numpyro.infer.mcmc import MCMCKernel

from bayesgmm.bayes.models import CovarianceType, GMMPriors, MixtureDraws

#: Covariance types with a conjugate Gibbs update.
GIBBS_COVARIANCE_TYPES = ("full", "diag")
#: Log weight of an inactive component slot (finite, so no ``-inf - -inf`` appears anywhere).
_INACTIVE = -1e30
#: Target acceptance rate of the Metropolis-Hastings step on ``log gamma`` (Roberts and Rosenthal 2001).
_TARGET_ACCEPT = 0.44
#: Shape ``a`` of the sparse-mixture hyperprior ``gamma ~ Gamma(a, a K)`` (Malsiner-Walli et al. 2016).
SPARSE_CONCENTRATION_SHAPE = 10.0


class GibbsPriors(NamedTuple):
    """Hyperparameters of :class:`GibbsMixture`, in the units of the data it sees (all traced).

    Attributes
    ----------
    weight_concentration : array of shape (n_components,)
        Fixed Dirichlet parameters, or the starting ``gamma`` (every entry) when it is sampled.
    concentration_shape, concentration_rate : arrays of shape ()
        Gamma hyperprior of ``gamma`` (used with ``sample_concentration``).
    log_n_components_prior : array of shape (n_components,)
        ``log p(K = k)`` for ``k = 1..n_components`` (used with ``sample_n_components``).
    mean_loc, mean_scale : arrays of shape (n_features,)
        Normal prior of every component mean.
    cov_dof : array of shape ()
        Inverse-Wishart degrees of freedom (``full``) or inverse-Gamma shape (``diag``).
    cov_scale : array of shape (n_features,)
        Diagonal of the inverse-Wishart scale matrix (``full``) or inverse-Gamma scales (``diag``).
    """

    weight_concentration: jax.Array
    concentration_shape: jax.Array
    concentration_rate: jax.Array
    log_n_components_prior: jax.Array
    mean_loc: jax.Array
    mean_scale: jax.Array
    cov_dof: jax.Array
    cov_scale: jax.Array


def _inverse_trigamma(y: float) -> float:
    from scipy.optimize import brentq
    from scipy.special import polygamma

    return float(brentq(lambda a: polygamma(1, a) - y, 1e-8, 1e8))


def gibbs_priors(priors: GMMPriors, covariance_type: CovarianceType, *, sample_concentration: bool = False,
                 n_components_prior: Any = None,
                 concentration_prior: tuple[float, float] | None = None) -> GibbsPriors:
    """Map the NUTS model's hyperparameters (:class:`~bayesgmm.bayes.models.GMMPriors`) to conjugate ones.

    - Weights: the same Dirichlet ``alpha``. With ``sample_concentration``, ``gamma ~ Gamma(shape, rate)``,
      by default ``Gamma(10, 10 K)`` (prior mean ``1/K``; Malsiner-Walli et al. 2016), starting at its
      prior mean.
    - Means: the same ``Normal(mean_loc, mean_scale^2)`` prior, independent of the covariances.
    - Variances: every variance ``Sigma_dd`` has an inverse-Gamma marginal whose median is
      ``scale_loc_d^2`` (the NUTS prior's median, squared). Its shape ``a`` is ``lkj_concentration - 1 + D/2``
      for ``full`` with ``D >= 2``, which gives each correlation the marginal of ``LKJ(lkj_concentration)``
      (inverse-Wishart dof ``2 a + D - 1``; Barnard, McCulloch and Meng 2000); otherwise (``diag``, and ``full``
      with one feature) ``a`` solves ``trigamma(a) / 4 = scale_log_sd^2``, the NUTS prior's standard
      deviation of the log standard deviation.

    Parameters
    ----------
    priors : GMMPriors
    covariance_type : {"full", "diag"}
    sample_concentration : bool, default False
    n_components_prior : None, "uniform" or array of shape (n_components,)
        Prior probabilities of ``K = 1..n_components`` (normalised here); None is a point mass at
        ``n_components``.
    concentration_prior : (shape, rate), optional
        Gamma hyperprior of ``gamma``; default ``(10, 10 K)``.

    Returns
    -------
    GibbsPriors
    """
    from scipy.special import gammaincinv

    alpha = np.asarray(priors.weight_concentration, dtype=np.float64)
    k = alpha.shape[0]
    d = np.shape(priors.mean_loc)[0]
    if covariance_type == "full" and d >= 2:
        shape = float(priors.lkj_concentration) - 1.0 + d / 2.0
        dof = 2.0 * shape + d - 1.0
    else:
        shape = _inverse_trigamma(4.0 * float(priors.scale_log_sd) ** 2)
        dof = 2.0 * shape + d - 1.0 if covariance_type == "full" else shape
    # median(Sigma_dd) = (Psi_dd / 2) / median(Gamma(a, 1)) for the inverse-Wishart, b / median(Gamma(a, 1)) for IG.
    scale = np.asarray(priors.scale_loc, dtype=np.float64) ** 2 * gammaincinv(shape, 0.5)
    if covariance_type == "full":
        scale = 2.0 * scale
    shape_e, rate_e = ((SPARSE_CONCENTRATION_SHAPE, SPARSE_CONCENTRATION_SHAPE * k) if concentration_prior is None
                       else (float(concentration_prior[0]), float(concentration_prior[1])))
    if sample_concentration:
        alpha = np.full(k, shape_e / rate_e)
    if n_components_prior is None:
        prior_k = np.zeros(k)
        prior_k[-1] = 1.0
    elif isinstance(n_components_prior, str):
        prior_k = np.full(k, 1.0 / k)
    else:
        prior_k = np.asarray(n_components_prior, dtype=np.float64)
        prior_k = prior_k / prior_k.sum()
    with np.errstate(divide="ignore"):
        log_prior_k = np.where(prior_k > 0, np.log(prior_k), -np.inf)
    f32 = jnp.float32
    return GibbsPriors(
        weight_concentration=jnp.asarray(alpha, f32),
        concentration_shape=jnp.asarray(shape_e, f32),
        concentration_rate=jnp.asarray(rate_e, f32),
        log_n_components_prior=jnp.asarray(np.maximum(log_prior_k, -1e30), f32),
        mean_loc=jnp.asarray(priors.mean_loc, f32),
        mean_scale=jnp.asarray(priors.mean_scale, f32),
        cov_dof=jnp.asarray(dof, f32),
        cov_scale=jnp.asarray(scale, f32),
    )


class GibbsState(NamedTuple):
    """State of one chain of :class:`GibbsMixture` (a leading chain axis when chains are vectorised).

    Attributes
    ----------
    params : dict
        ``log_weights`` (K,) (``-1e30`` for inactive slots), ``means`` (K, D) and ``cov_factor``
        (lower Cholesky factors (K, D, D) for full, standard deviations (K, D) for diag).
    concentration : array of shape ()
        The Dirichlet parameter ``gamma`` (fixed ones: the first ``alpha``).
    n_components : array of int, shape ()
        Active components ``K``.
    n_filled : array of int, shape ()
        Components with at least one row (``K+``) in this sweep's assignments.
    filled : array of bool, shape (K,)
        Which slots hold rows in this sweep's assignments.
    accept_prob : array of shape ()
        Acceptance probability of this sweep's Metropolis-Hastings step on ``log gamma`` (1 when fixed).
    log_step : array of shape ()
        Log step size of that step.
    i : array of int, shape ()
        Sweeps done.
    num_warmup : array of int, shape ()
    rng_key : PRNG key
    """

    params: dict[str, jax.Array]
    concentration: jax.Array
    n_components: jax.Array
    n_filled: jax.Array
    filled: jax.Array
    accept_prob: jax.Array
    log_step: jax.Array
    i: jax.Array
    num_warmup: jax.Array
    rng_key: jax.Array


#: Candidates per variate in :func:`log_gamma_variates`; each is rejected with probability below 0.05.
_GAMMA_TRIES = 8


class Uniforms:
    """Consecutive slices of one flat vector of ``U(0, 1)`` variates (static offsets).

    A sweep draws every random number it needs with one ``jax.random.uniform`` call: each separate
    PRNG call adds a threefry kernel to the program, and a dozen of them dominated the compilation
    of a sweep on CPU. Normals are ``ndtri(u)``.
    """

    def __init__(self, u: jax.Array) -> None:
        self.u, self.used = u, 0

    def uniform(self, shape: tuple[int, ...]) -> jax.Array:
        n = int(np.prod(shape, dtype=np.int64))
        out = self.u[self.used:self.used + n].reshape(shape)
        self.used += n
        return out

    def normal(self, shape: tuple[int, ...]) -> jax.Array:
        return ndtri(self.uniform(shape))

    def log_gamma(self, shape: jax.Array) -> jax.Array:
        return log_gamma_variates(self, shape)


def n_uniforms(n_samples: int, n_components: int, n_features: int, covariance_type: CovarianceType) -> int:
    """Uniform variates one sweep of :class:`GibbsMixture` consumes (an upper bound, for :class:`Uniforms`)."""
    k, d = n_components, n_features
    per_gamma = 2 * _GAMMA_TRIES + 1
    gammas = k + k * d  # Dirichlet weights; Bartlett diagonals (full) or inverse-Gamma variances (diag)
    normals = k * d + (k * d * (d - 1) // 2 if covariance_type == "full" else 0) + 1
    return n_samples + 2 + normals + 1 + gammas * per_gamma


def log_gamma_variates(stream: Uniforms, shape: jax.Array) -> jax.Array:
    """``log G`` for independent ``G ~ Gamma(shape, 1)``, one per entry of ``shape``, without a loop.

    Marsaglia and Tsang (2000)'s squeeze method at ``shape + 1``, boosted down to ``shape`` by
    ``log G = log G' + log(U) / shape`` (stable in log space for the tiny shapes of a sparse mixture).
    The rejection loop is unrolled into ``_GAMMA_TRIES`` candidates evaluated at once, keeping the first
    accepted one: all candidates are rejected with probability below ``0.05 ** 8 < 1e-10`` (then the
    last one is kept). A fixed-size draw compiles in a fraction of the time of ``jax.random.gamma``'s
    ``while_loop``.

    Parameters
    ----------
    stream : Uniforms
        Source of the ``(2 * _GAMMA_TRIES + 1) * shape.size`` uniform variates used.
    shape : array
        Gamma shapes ``> 0``.

    Returns
    -------
    jax.Array of the shape and dtype of ``shape``
    """
    shape = jnp.asarray(shape)
    d = shape + 1.0 - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    x = stream.normal((_GAMMA_TRIES,) + shape.shape)
    log_u = jnp.log(stream.uniform(x.shape))
    v = (1.0 + c * x) ** 3
    log_v = jnp.log(jnp.where(v > 0, v, 1.0))
    accepted = (v > 0) & (log_u < 0.5 * x**2 + d - d * v + d * log_v)
    first = jnp.argmax(accepted.at[-1].set(True), axis=0)
    log_v = jnp.take_along_axis(log_v, first[None], axis=0)[0]
    boost = jnp.log(stream.uniform(shape.shape))
    return jnp.log(d) + log_v + boost / shape


def _categorical(u: jax.Array, logits: jax.Array) -> jax.Array:
    """Inverse-CDF draw from ``softmax(logits)`` along the last axis, one uniform ``u`` per row."""
    probs = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
    cdf = jnp.cumsum(probs, axis=-1)
    index = jnp.sum(cdf < (u * cdf[..., -1])[..., None], axis=-1)
    return jnp.minimum(index, logits.shape[-1] - 1)


def _is_batched_key(key: jax.Array) -> bool:
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.ndim >= 1
    return key.ndim >= 2


def log_gaussian(X: jax.Array, means: jax.Array, cov_factor: jax.Array, covariance_type: CovarianceType) -> jax.Array:
    """``log N(x_i | mu_k, Sigma_k)`` from the covariance square roots: shape (n_samples, n_components)."""
    d = X.shape[-1]
    diff = X[:, None, :] - means[None]  # (N, K, D)
    if covariance_type == "full":
        whitened = jax.vmap(lambda f, r: solve_triangular(f, r.T, lower=True).T, in_axes=(0, 1), out_axes=1)(
            cov_factor, diff)
        log_det = jnp.sum(jnp.log(jnp.diagonal(cov_factor, axis1=-2, axis2=-1)), axis=-1)
    else:
        whitened = diff / cov_factor[None]
        log_det = jnp.sum(jnp.log(cov_factor), axis=-1)
    return -0.5 * jnp.sum(whitened**2, axis=-1) - log_det[None] - 0.5 * d * jnp.log(2 * jnp.pi)


def sample_inverse_wishart_factor(stream: Uniforms, dof: jax.Array, scale: jax.Array) -> jax.Array:
    """Lower Cholesky factor of one ``Sigma ~ inverse-Wishart(dof, scale)`` draw (Bartlett decomposition).

    ``Sigma^{-1} ~ Wishart(dof, scale^{-1})``: with ``scale = C C^T`` and ``A`` the Bartlett factor
    (``A_ii^2 ~ chi2(dof - i)``, ``A_ij ~ N(0, 1)`` below the diagonal),
    ``Sigma = (C A^{-T}) (C A^{-T})^T``; ``A^{-1} C^T`` is one triangular solve.

    Parameters
    ----------
    stream : Uniforms
    dof : array of shape (...)
        Degrees of freedom, ``> D - 1``.
    scale : array of shape (..., D, D)
        Positive definite.

    Returns
    -------
    jax.Array of shape (..., D, D)
    """
    d = scale.shape[-1]
    chi2 = 2.0 * jnp.exp(stream.log_gamma(0.5 * (dof[..., None] - jnp.arange(d, dtype=scale.dtype))))
    rows, cols = np.tril_indices(d, -1)
    below = jnp.zeros(scale.shape, scale.dtype).at[..., rows, cols].set(stream.normal(scale.shape[:-2] + (len(rows),)))
    bartlett = below + jnp.sqrt(chi2)[..., None] * jnp.eye(d, dtype=scale.dtype)
    c = jnp.linalg.cholesky(scale)
    factor_t = solve_triangular(bartlett, jnp.swapaxes(c, -1, -2), lower=True)  # (C A^{-T})^T
    return jnp.linalg.cholesky(jnp.swapaxes(factor_t, -1, -2) @ factor_t)


def _update_full(stream: Uniforms, X: jax.Array, resp: jax.Array, counts: jax.Array, cov_factor: jax.Array,
                 priors: GibbsPriors) -> tuple[jax.Array, jax.Array]:
    """``mu_k | Sigma_k`` then ``Sigma_k | mu_k`` for every component, given weighted one-hot ``resp`` (N, K)."""
    k, d = cov_factor.shape[0], X.shape[-1]
    eye = jnp.eye(d, dtype=X.dtype)
    sums = resp.T @ X  # (K, D)
    prior_prec = 1.0 / priors.mean_scale**2

    def mean_draw(noise, factor, n, s):
        root_inv = solve_triangular(factor, eye, lower=True)  # L^{-1}
        prec = root_inv.T @ root_inv  # Sigma^{-1}
        post_prec = jnp.diag(prior_prec) + n * prec
        post_chol = jnp.linalg.cholesky(post_prec)
        centre = cho_solve((post_chol, True), prior_prec * priors.mean_loc + prec @ s)
        return centre + solve_triangular(post_chol.T, noise, lower=False)

    means = jax.vmap(mean_draw)(stream.normal((k, d)), cov_factor, counts, sums)
    diff = X[None] - means[:, None, :]  # (K, N, D): scatter about the new means, two-pass
    scatter = jnp.matmul(jnp.swapaxes(diff * resp.T[:, :, None], -1, -2), diff)  # (K, D, D)
    post_scale = jnp.diag(priors.cov_scale)[None] + scatter
    factors = sample_inverse_wishart_factor(stream, priors.cov_dof + counts, post_scale)
    return means, factors


def _update_diag(stream: Uniforms, X: jax.Array, resp: jax.Array, counts: jax.Array, cov_factor: jax.Array,
                 priors: GibbsPriors) -> tuple[jax.Array, jax.Array]:
    """Per feature: ``mu_kd | sigma_kd`` (Normal) then ``sigma^2_kd | mu_kd`` (inverse-Gamma)."""
    sums = resp.T @ X
    prior_prec = 1.0 / priors.mean_scale**2
    var = cov_factor**2
    post_prec = prior_prec[None] + counts[:, None] / var
    centre = (prior_prec * priors.mean_loc + sums / var) / post_prec
    means = centre + stream.normal(centre.shape) / jnp.sqrt(post_prec)
    diff = X[None] - means[:, None, :]  # (K, N, D)
    scatter = jnp.sum(diff**2 * resp.T[:, :, None], axis=1)
    shape = priors.cov_dof + 0.5 * counts[:, None]
    rate = priors.cov_scale[None] + 0.5 * scatter
    return means, jnp.sqrt(rate * jnp.exp(-stream.log_gamma(jnp.broadcast_to(shape, rate.shape))))


def log_partition_probability(counts: jax.Array, filled: jax.Array, n_components: jax.Array,
                              concentration: jax.Array) -> jax.Array:
    """``log p(C | K, gamma)`` of a partition with ``K+`` filled blocks (see the module docstring).

    Parameters
    ----------
    counts : array of shape (K_max,)
        (Weighted) rows per slot.
    filled : array of bool, shape (K_max,)
    n_components : array of int, any shape
        ``K`` (broadcast); ``K < K+`` gives ``-inf``.
    concentration : array of shape ()
    """
    n_filled = jnp.sum(filled)
    total = jnp.sum(counts)
    kk = jnp.asarray(n_components, counts.dtype)
    per_block = jnp.sum(jnp.where(filled, gammaln(counts + concentration) - gammaln(concentration), 0.0))
    value = (gammaln(kk + 1) - gammaln(jnp.maximum(kk - n_filled, 0) + 1) + gammaln(kk * concentration)
             - gammaln(total + kk * concentration) + per_block)
    return jnp.where(kk >= n_filled, value, -jnp.inf)


class GibbsMixture(MCMCKernel):
    """Blocked Gibbs sampler of a Gaussian mixture (see the module docstring), for :class:`numpyro.infer.MCMC`.

    ``MCMC.run(key, X, sample_weight, priors, init_params=...)``: ``X`` (N, D), ``sample_weight`` (N,)
    multiplying each row's log-likelihood, ``priors`` a :class:`GibbsPriors`, ``init_params`` a dict
    ``log_weights``, ``means``, ``cov_factor`` (see :class:`GibbsState`; with a leading chain axis for
    several chains). The collected samples are the sites of
    :func:`~bayesgmm.bayes.models.gaussian_mixture_model` (``weight_logits``, ``means``, ``scales``,
    ``corr_cholesky``), so :func:`~bayesgmm.bayes.models.draws_from_sites` reads them. Chains run
    vectorised (``chain_method="vectorized"``) or one at a time.

    Parameters
    ----------
    covariance_type : {"full", "diag"}
    sample_concentration : bool, default False
        Sample the symmetric Dirichlet parameter ``gamma`` (Gamma hyperprior).
    sample_n_components : bool, default False
        Sample the number of components ``K`` (telescoping sampler).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> from numpyro.infer import MCMC
    >>> from bayesgmm.bayes.models import default_priors
    >>> X = jnp.asarray(np.random.default_rng(0).normal(size=(40, 1)), jnp.float32)
    >>> priors = gibbs_priors(default_priors(X, 2), "diag")
    >>> init = {"log_weights": jnp.log(jnp.array([0.5, 0.5])), "means": jnp.array([[-1.0], [1.0]]),
    ...         "cov_factor": jnp.ones((2, 1))}
    >>> mcmc = MCMC(GibbsMixture("diag"), num_warmup=50, num_samples=100, progress_bar=False)
    >>> mcmc.run(jax.random.key(0), X, jnp.ones(40), priors, init_params=init)
    >>> mcmc.get_samples()["means"].shape
    (100, 2, 1)
    """

    sample_field = "params"

    def __init__(self, covariance_type: CovarianceType, sample_concentration: bool = False,
                 sample_n_components: bool = False) -> None:
        if covariance_type not in GIBBS_COVARIANCE_TYPES:
            raise ValueError(f"inference='gibbs' supports covariance_type in {GIBBS_COVARIANCE_TYPES}, "
                             f"got covariance_type={covariance_type!r}")
        self.covariance_type = covariance_type
        self.sample_concentration = sample_concentration
        self.sample_n_components = sample_n_components

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("params", "concentration", "n_components", "n_filled", "filled", "accept_prob")

    def init(self, rng_key: jax.Array, num_warmup: int, init_params: dict[str, jax.Array],
             model_args: tuple[Any, ...], model_kwargs: dict[str, Any]) -> GibbsState:
        def one(key: jax.Array, params: dict[str, jax.Array]) -> GibbsState:
            priors = model_args[2]
            k = params["log_weights"].shape[-1]
            return GibbsState(params, priors.weight_concentration[0], jnp.int32(k), jnp.int32(k),
                              jnp.ones(k, bool), jnp.float32(1.0), jnp.float32(0.0), jnp.int32(0),
                              jnp.int32(num_warmup), key)

        if _is_batched_key(rng_key):
            return jax.vmap(one)(rng_key, init_params)
        return one(rng_key, init_params)

    def postprocess_fn(self, model_args: tuple[Any, ...], model_kwargs: dict[str, Any]):
        covariance_type = self.covariance_type

        def to_sites(params: dict[str, jax.Array]) -> dict[str, jax.Array]:
            sites = {"weight_logits": params["log_weights"], "means": params["means"]}
            factor = params["cov_factor"]
            if covariance_type == "full":
                scales = jnp.linalg.norm(factor, axis=-1)  # square roots of the covariance diagonal
                sites["scales"] = scales
                if factor.shape[-1] > 1:
                    sites["corr_cholesky"] = factor / scales[..., :, None]
            else:
                sites["scales"] = factor
            return sites

        return to_sites

    def sample(self, state: GibbsState, model_args: tuple[Any, ...], model_kwargs: dict[str, Any]) -> GibbsState:
        if _is_batched_key(state.rng_key):
            return jax.vmap(lambda s: self._sweep(s, *model_args))(state)
        return self._sweep(state, *model_args)

    def _sweep(self, state: GibbsState, X: jax.Array, sample_weight: jax.Array, priors: GibbsPriors) -> GibbsState:
        params = state.params
        log_weights, means, cov_factor = params["log_weights"], params["means"], params["cov_factor"]
        n_slots = log_weights.shape[-1]
        key, k_u = jax.random.split(state.rng_key)
        size = n_uniforms(X.shape[0], n_slots, X.shape[-1], self.covariance_type)
        stream = Uniforms(jax.random.uniform(k_u, (size,), X.dtype, minval=jnp.finfo(X.dtype).tiny))

        # 1. assignments
        log_joint = log_weights[None] + log_gaussian(X, means, cov_factor, self.covariance_type)
        z = _categorical(stream.uniform((X.shape[0],)), log_joint)
        one_hot = jax.nn.one_hot(z, n_slots, dtype=X.dtype)
        resp = one_hot * sample_weight[:, None]
        counts = jnp.sum(resp, axis=0)
        filled = jnp.sum(one_hot * (sample_weight > 0)[:, None], axis=0) > 0
        if self.sample_n_components:  # filled slots first, so the active slots 0..K-1 hold them all
            order = jnp.argsort(~filled, stable=True)
            means, cov_factor, resp, counts, filled = (means[order], cov_factor[order], resp[:, order],
                                                       counts[order], filled[order])

        # 2. component parameters (an empty component is drawn from its prior)
        update = _update_full if self.covariance_type == "full" else _update_diag
        means, cov_factor = update(stream, X, resp, counts, cov_factor, priors)

        # 3. number of components and Dirichlet parameter, given the partition
        gamma = state.concentration
        n_components = state.n_components
        if self.sample_n_components:
            candidates = jnp.arange(1, n_slots + 1)
            log_post = priors.log_n_components_prior + log_partition_probability(counts, filled, candidates, gamma)
            n_components = (_categorical(stream.uniform(()), log_post) + 1).astype(jnp.int32)
        accept_prob, log_step = jnp.float32(1.0), state.log_step
        if self.sample_concentration:
            def log_target(log_gamma: jax.Array) -> jax.Array:
                g = jnp.exp(log_gamma)
                return (log_partition_probability(counts, filled, n_components, g)
                        + priors.concentration_shape * log_gamma - priors.concentration_rate * g)  # Jacobian included

            current = jnp.log(gamma)
            proposal = current + jnp.exp(log_step) * stream.normal(())
            log_ratio = log_target(proposal) - log_target(current)
            accept_prob = jnp.exp(jnp.minimum(0.0, jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)))
            gamma = jnp.where(stream.uniform(()) < accept_prob, jnp.exp(proposal), gamma)
            # Robbins-Monro adaptation of the step during warm-up only
            rate = (state.i + 1.0) ** -0.6
            log_step = jnp.where(state.i < state.num_warmup, log_step + rate * (accept_prob - _TARGET_ACCEPT),
                                 log_step)

        # 4. weights over the active slots
        active = jnp.arange(n_slots) < n_components
        alpha = (jnp.broadcast_to(gamma, (n_slots,)) if self.sample_concentration or self.sample_n_components
                 else priors.weight_concentration)
        log_gamma_draws = stream.log_gamma(alpha + counts)
        log_gamma_draws = jnp.where(active, log_gamma_draws, -jnp.inf)
        log_weights = jnp.where(active, log_gamma_draws - jax.nn.logsumexp(log_gamma_draws), _INACTIVE)

        params = {"log_weights": log_weights, "means": means, "cov_factor": cov_factor}
        return GibbsState(params, gamma, n_components, jnp.sum(filled).astype(jnp.int32), filled,
                          accept_prob, log_step, state.i + 1, state.num_warmup, key)


class GibbsResult(NamedTuple):
    """Output of :func:`run_gibbs`.

    Attributes
    ----------
    samples : dict of arrays of shape (num_chains, num_samples, ...)
        Sites of :func:`~bayesgmm.bayes.models.gaussian_mixture_model` (``weight_logits``, ``means``,
        ``scales``, ``corr_cholesky``), in the units of the data the sampler saw.
    sample_stats : dict of arrays of shape (num_chains, num_samples)
        ``n_filled`` (``K+`` of the sweep's assignments), ``n_components`` (``K``),
        ``concentration`` (``gamma``) and ``acceptance_rate`` (of the step on ``log gamma``).
    filled : array of bool, shape (num_chains, num_samples, n_components)
        Which component slots held rows in each draw's sweep.
    """

    samples: dict[str, jax.Array]
    sample_stats: dict[str, jax.Array]
    filled: jax.Array


@partial(jax.jit, static_argnames=("covariance_type", "sample_concentration", "sample_n_components",
                                   "num_chains", "num_warmup", "num_samples", "thinning"))
def _run(key: jax.Array, X: jax.Array, sample_weight: jax.Array, priors: GibbsPriors,
         init_params: dict[str, jax.Array], *, covariance_type: CovarianceType, sample_concentration: bool,
         sample_n_components: bool, num_chains: int, num_warmup: int, num_samples: int,
         thinning: int) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    kernel = GibbsMixture(covariance_type, sample_concentration, sample_n_components)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples * thinning, num_chains=num_chains,
                thinning=thinning, chain_method="vectorized", progress_bar=False)
    if num_chains == 1:
        init_params = jax.tree.map(lambda x: x[0], init_params)
    mcmc.run(key, X, sample_weight, priors, init_params=init_params)
    return mcmc.get_samples(group_by_chain=True), mcmc.get_extra_fields(group_by_chain=True)


def run_gibbs(
    key: jax.Array,
    X: jax.Array,
    sample_weight: jax.Array,
    priors: GibbsPriors,
    init_params: dict[str, jax.Array],
    *,
    covariance_type: CovarianceType,
    sample_concentration: bool = False,
    sample_n_components: bool = False,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    thinning: int = 1,
) -> GibbsResult:
    """Run :class:`GibbsMixture` under NumPyro's ``MCMC``, all chains vectorised, as one compiled program.

    Parameters
    ----------
    key : PRNG key
    X : array of shape (n_samples, n_features)
    sample_weight : array of shape (n_samples,)
    priors : GibbsPriors
    init_params : dict of arrays with a leading axis of length ``num_chains``
        ``log_weights`` (K,), ``means`` (K, D), ``cov_factor`` per chain (see :class:`GibbsState`).
    covariance_type : {"full", "diag"}
    sample_concentration, sample_n_components : bool
        See :class:`GibbsMixture`.
    num_chains, num_warmup, num_samples : int
        ``num_samples`` kept draws per chain.
    thinning : int, default 1
        Keep every ``thinning``-th sweep after warm-up (``num_samples * thinning`` sweeps are run).

    Returns
    -------
    GibbsResult
    """
    samples, stats = _run(key, X, sample_weight, priors, init_params, covariance_type=covariance_type,
                          sample_concentration=sample_concentration, sample_n_components=sample_n_components,
                          num_chains=num_chains, num_warmup=num_warmup, num_samples=num_samples, thinning=thinning)
    sample_stats = {"n_filled": stats["n_filled"], "n_components": stats["n_components"],
                    "concentration": stats["concentration"], "acceptance_rate": stats["accept_prob"]}
    return GibbsResult(samples, sample_stats, stats["filled"])


def init_params_from_mixture(weights: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                             covariance_type: CovarianceType, num_chains: int, jitter: float,
                             seed: int) -> dict[str, jax.Array]:
    """Per-chain starting points from a point estimate (e.g. EM, standardised): means jittered by
    ``N(0, jitter^2)`` so chains start apart; weights floored at 1e-6 so no slot starts dead."""
    rng = np.random.default_rng(seed)
    weights = np.maximum(np.asarray(weights, np.float64), 1e-6)
    log_weights = np.log(weights / weights.sum())
    means = np.asarray(means, np.float64)
    if covariance_type == "full":
        factor = np.linalg.cholesky(np.asarray(covariances, np.float64))
    else:
        factor = np.sqrt(np.asarray(covariances, np.float64))
    chain_means = means[None] + jitter * rng.standard_normal((num_chains,) + means.shape)
    tile = lambda x: np.broadcast_to(x, (num_chains,) + x.shape)  # noqa: E731
    return {"log_weights": jnp.asarray(tile(log_weights), jnp.float32),
            "means": jnp.asarray(chain_means, jnp.float32),
            "cov_factor": jnp.asarray(tile(factor), jnp.float32)}


class IdentifiedClusters(NamedTuple):
    """The clustering identified from the draws with the modal number of filled components.

    Attributes
    ----------
    n_clusters : int
        The posterior mode of ``K+``.
    draws : MixtureDraws
        Leading axis: the kept draws; ``n_clusters`` components each, labelled consistently, weights
        renormalised over the filled components.
    non_permutation_rate : float
        Share of the draws with ``K+ = n_clusters`` whose k-means labels were not a permutation (left out).
    """

    n_clusters: int
    draws: MixtureDraws
    non_permutation_rate: float


def identify_clusters(draws: MixtureDraws, filled: np.ndarray, covariance_type: CovarianceType,
                      seed: int = 0) -> IdentifiedClusters | None:
    """Malsiner-Walli et al. (2016)'s post-processing of a sparse mixture's draws.

    Keep the draws whose number of filled components ``K+`` is the posterior mode; pool the means of
    their filled components and cluster them by k-means into ``K+`` groups (features scaled to unit
    spread); keep the draws whose components fall in ``K+`` different groups (a permutation) and
    relabel their components by group.

    Parameters
    ----------
    draws : MixtureDraws
        Raw (not relabelled) draws with one leading axis, any units.
    filled : array of bool, shape (n_draws, n_components)
        Which components held rows in each draw (the sampler's assignments).
    covariance_type : {"full", "diag"}
    seed : int, default 0
        Seed of k-means.

    Returns
    -------
    IdentifiedClusters, or None when no draw's labels form a permutation.
    """
    from sklearn.cluster import KMeans

    filled = np.asarray(filled, bool)
    n_filled = filled.sum(axis=1)
    n_clusters = int(np.argmax(np.bincount(n_filled)))
    keep = np.flatnonzero(n_filled == n_clusters)
    order = np.argsort(~filled[keep], axis=1, kind="stable")[:, :n_clusters]  # the filled slots, (S0, K+)
    means = np.take_along_axis(np.asarray(draws.means)[keep], order[..., None], axis=1)
    points = means.reshape(-1, means.shape[-1])
    spread = points.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    labels = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(points / spread)
    labels = labels.reshape(len(keep), n_clusters)
    is_perm = np.all(np.sort(labels, axis=1) == np.arange(n_clusters), axis=1)
    rate = float(1.0 - is_perm.mean())
    if not is_perm.any():
        return None
    slots = np.take_along_axis(order[is_perm], np.argsort(labels[is_perm], axis=1), axis=1)  # group -> slot
    rows = keep[is_perm]

    def take(x: Any) -> np.ndarray:
        x = np.asarray(x)[rows]
        return np.take_along_axis(x, slots.reshape(slots.shape + (1,) * (x.ndim - 2)), axis=1)

    weights = take(draws.weights)
    weights = weights / weights.sum(axis=1, keepdims=True)
    picked = MixtureDraws(jnp.asarray(weights, jnp.float32), jnp.asarray(take(draws.means)),
                          jnp.asarray(take(draws.covariances)), jnp.asarray(take(draws.cov_factor)))
    return IdentifiedClusters(n_clusters, picked, rate)


def store_gibbs_results(model: Any, X: np.ndarray, raw: MixtureDraws, result: GibbsResult, seed: int) -> None:
    """Set the Gibbs-only attributes of a fitted ``BayesianGaussianMixture``.

    ``n_components_posterior_`` (``P(K = k | X)`` at entry ``k - 1``, from the sampled ``K``; a point
    mass at ``n_components`` unless ``n_components_prior`` is given) and the clustering identified by
    :func:`identify_clusters`: ``n_clusters_``, ``cluster_weights_``, ``cluster_means_``,
    ``cluster_covariances_`` (posterior means, data units), ``cluster_labels_`` (each training row's most
    probable cluster averaged over the identified draws), ``cluster_draws_`` and
    ``cluster_non_permutation_rate_``.
    """
    from bayesgmm.bayes.estimator import draws_per_chunk, mean_responsibilities

    ct = model.covariance_type
    k = model.n_components
    n_components = np.asarray(result.sample_stats["n_components"]).ravel()
    model.n_components_posterior_ = np.bincount(n_components - 1, minlength=k)[:k] / n_components.size
    flat = jax.tree.map(lambda x: np.asarray(x).reshape((-1,) + x.shape[2:]), raw)
    identified = identify_clusters(flat, np.asarray(result.filled).reshape(-1, k), ct, seed)
    if identified is None:
        import warnings

        warnings.warn("no draw with the modal number of filled components has its component means in "
                      "different k-means groups: the clustering could not be identified (cluster_* are None)",
                      UserWarning, stacklevel=4)
        for name in ("n_clusters_", "cluster_weights_", "cluster_means_", "cluster_covariances_", "cluster_labels_",
                     "cluster_draws_", "cluster_non_permutation_rate_"):
            setattr(model, name, None)
        return
    draws = identified.draws
    model.n_clusters_ = identified.n_clusters
    model.cluster_draws_ = draws
    model.cluster_non_permutation_rate_ = identified.non_permutation_rate
    model.cluster_weights_ = np.asarray(draws.weights, np.float64).mean(axis=0)
    model.cluster_means_ = np.asarray(draws.means, np.float64).mean(axis=0)
    model.cluster_covariances_ = np.asarray(draws.covariances, np.float64).mean(axis=0)
    Xj = jnp.asarray(X, jnp.float32)
    chunk = draws_per_chunk(draws.weights.shape[0], X.shape[0], identified.n_clusters)
    proba = mean_responsibilities(draws, Xj, ct, chunk)
    model.cluster_labels_ = np.asarray(jnp.argmax(proba, axis=1))


__all__ = ["GIBBS_COVARIANCE_TYPES", "GibbsMixture", "GibbsPriors", "GibbsResult", "GibbsState",
           "IdentifiedClusters", "gibbs_priors", "identify_clusters", "init_params_from_mixture", "run_gibbs",
           "store_gibbs_results"]
