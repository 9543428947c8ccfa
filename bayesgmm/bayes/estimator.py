"""``BayesianGaussianMixture``: posteriors over Gaussian mixtures by NUTS or variational inference.

The estimator is a thin shell: it validates input, standardises the data, fits EM for a starting
point and a labelling reference, calls the pure inference functions of :mod:`bayesgmm.bayes.infer`
once, relabels the draws (:mod:`bayesgmm.bayes.relabel`), maps them back to data units and stores
an ArviZ ``DataTree`` (:mod:`bayesgmm.bayes.to_arviz`). Posterior predictive quantities are pure,
jitted functions over the draws, reduced in chunks of draws so memory stays bounded.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from functools import partial
from numbers import Integral, Real
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.typing import ArrayLike
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted, validate_data

from bayesgmm._boundary import atomic_fit, check_missing, finite_rule
from bayesgmm.bayes import infer
from bayesgmm.bayes.infer import row_blocks
from bayesgmm.bayes.models import (
    COVARIANCE_TYPES,
    CovarianceType,
    GMMPriors,
    MixtureDraws,
    component_log_joint,
    cov_factor_from_covariances,
    default_priors,
    draws_from_sites,
    gaussian_mixture_model,
    rescale_draws,
    sites_from_params,
    validate_priors,
    weighted_moments,
)
from bayesgmm.bayes.relabel import relabel
from bayesgmm.covariance import form_of
from bayesgmm.bayes.to_arviz import to_datatree

#: Upper bound on the floats held per chunk of draws by the posterior predictive reductions.
_CHUNK_FLOATS = 1 << 22
#: Largest pointwise log-likelihood (draws x rows floats; 256 MiB in float32) stored in ``idata_``.
#: Above it the ``log_likelihood`` group is left out (with a warning and the DataTree attribute
#: ``log_likelihood_omitted``) instead of risking running out of memory; raise it to keep the group.
MAX_POINTWISE_LOG_LIKELIHOOD = 1 << 26


# ----------------------------------------------------------------------------------------------
# Pure functions over draws (leading axis n_draws), jitted with static shapes and covariance type
# ----------------------------------------------------------------------------------------------


def draws_per_chunk(n_draws: int, n_samples: int, n_components: int) -> int:
    """How many draws a reduction handles at once so that a chunk holds about 4M floats."""
    return int(max(1, min(n_draws, _CHUNK_FLOATS // max(1, n_samples * n_components))))


def rows_per_block(n_samples: int, n_components: int, n_draws: int) -> int:
    """Rows a reduction over ``n_draws`` draws at once handles per block so that it holds about 4M floats.

    All rows (one block) when they fit; otherwise a multiple of 8 rows, at least 8.
    """
    rows = _CHUNK_FLOATS // max(1, n_draws * n_components)
    return int(n_samples if rows >= n_samples else max(8, rows - rows % 8))


def _chunked(draws: MixtureDraws, chunk: int) -> tuple[MixtureDraws, jax.Array]:
    """Pad the draw axis to a multiple of ``chunk`` (repeating the last draw) and split it into chunks.

    Returns the draws with shape (n_chunks, chunk, ...) and a (n_chunks, chunk) mask of real draws.
    """
    n_draws = draws.weights.shape[0]
    n_chunks = -(-n_draws // chunk)
    pad = n_chunks * chunk - n_draws

    def split(x: jax.Array) -> jax.Array:
        x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]) if pad else x
        return x.reshape((n_chunks, chunk) + x.shape[1:])

    mask = (jnp.arange(n_chunks * chunk) < n_draws).reshape(n_chunks, chunk)
    return jax.tree.map(split, draws), mask


# ``missing`` (static, default False) everywhere below: X has NaN where values are missing, and each
# row's density is its observed coordinates' (see :class:`~bayesgmm.bayes.models.MarginalMixture`).


@partial(jax.jit, static_argnames=("covariance_type", "chunk", "missing"))
def log_joint_by_draw(draws: MixtureDraws, X: jax.Array, covariance_type: CovarianceType,
                      chunk: int, missing: bool = False) -> jax.Array:
    """``log w_k + log N(x_i | theta_k)`` per draw: shape (n_draws, n_samples, n_components)."""
    return jax.lax.map(lambda d: component_log_joint(d, X, covariance_type, missing), draws, batch_size=chunk)


@partial(jax.jit, static_argnames=("covariance_type", "chunk", "missing"))
def pointwise_log_likelihood(draws: MixtureDraws, X: jax.Array, covariance_type: CovarianceType,
                             chunk: int, missing: bool = False) -> jax.Array:
    """``log p(x_i | theta_s)`` per draw and observation: shape (n_draws, n_samples)."""
    return jax.lax.map(lambda d: jax.nn.logsumexp(component_log_joint(d, X, covariance_type, missing), axis=-1),
                       draws, batch_size=chunk)


def _fold_draws(draws: MixtureDraws, X: jax.Array, covariance_type: CovarianceType, chunk: int, init: jax.Array,
                update: Callable[[jax.Array, jax.Array, jax.Array], jax.Array], missing: bool = False) -> jax.Array:
    """Fold ``update(acc, log_joint, keep)`` over chunks of draws.

    ``log_joint`` has shape (chunk, n_samples, n_components) and ``keep`` (chunk,) marks real draws
    (the last chunk is padded).
    """
    chunks, mask = _chunked(draws, chunk)

    def body(acc: jax.Array, inputs: tuple[MixtureDraws, jax.Array]) -> tuple[jax.Array, None]:
        block, keep = inputs
        log_joint = jax.vmap(lambda d: component_log_joint(d, X, covariance_type, missing))(block)
        return update(acc, log_joint, keep), None

    total, _ = jax.lax.scan(body, init, (chunks, mask))
    return total


@partial(jax.jit, static_argnames=("covariance_type", "chunk", "missing"))
def posterior_predictive_log_density(draws: MixtureDraws, X: jax.Array, covariance_type: CovarianceType,
                                     chunk: int, missing: bool = False) -> jax.Array:
    """``log (1/S) sum_s p(x_i | theta_s)``: shape (n_samples,)."""
    def update(acc: jax.Array, log_joint: jax.Array, keep: jax.Array) -> jax.Array:
        log_lik = jnp.where(keep[:, None], jax.nn.logsumexp(log_joint, axis=-1), -jnp.inf)
        return jnp.logaddexp(acc, jax.nn.logsumexp(log_lik, axis=0))

    total = _fold_draws(draws, X, covariance_type, chunk, jnp.full(X.shape[0], -jnp.inf, X.dtype), update, missing)
    return total - jnp.log(draws.weights.shape[0])


@partial(jax.jit, static_argnames=("covariance_type", "chunk", "missing"))
def mean_responsibilities(draws: MixtureDraws, X: jax.Array, covariance_type: CovarianceType,
                          chunk: int, missing: bool = False) -> jax.Array:
    """Responsibilities averaged over draws: shape (n_samples, n_components)."""
    def update(acc: jax.Array, log_joint: jax.Array, keep: jax.Array) -> jax.Array:
        return acc + jnp.einsum("s,snk->nk", keep.astype(X.dtype), jax.nn.softmax(log_joint, axis=-1))

    init = jnp.zeros((X.shape[0], draws.weights.shape[-1]), X.dtype)
    return _fold_draws(draws, X, covariance_type, chunk, init, update, missing) / draws.weights.shape[0]


@partial(jax.jit, static_argnames=("covariance_type", "chunk", "missing"))
def coclustering_matrix(draws: MixtureDraws, X: jax.Array, covariance_type: CovarianceType,
                        chunk: int, missing: bool = False) -> jax.Array:
    """``P(z_i = z_j)`` averaged over draws, ``sum_k r_ik r_jk`` per draw: shape (n_samples, n_samples)."""
    def update(acc: jax.Array, log_joint: jax.Array, keep: jax.Array) -> jax.Array:
        resp = jax.nn.softmax(log_joint, axis=-1)
        return acc + jnp.einsum("s,snk,smk->nm", keep.astype(X.dtype), resp, resp)

    init = jnp.zeros((X.shape[0], X.shape[0]), X.dtype)
    return _fold_draws(draws, X, covariance_type, chunk, init, update, missing) / draws.weights.shape[0]


@partial(jax.jit, static_argnames=("covariance_type", "chunk", "rows", "missing"))
def occupancy_and_log_likelihood(key: jax.Array, draws: MixtureDraws, X: jax.Array, counts: jax.Array,
                                 covariance_type: CovarianceType, chunk: int,
                                 rows: int, missing: bool = False) -> tuple[jax.Array, jax.Array]:
    """Per draw, from one evaluation of each row's component log joint: the number of occupied
    components and the total weighted log-likelihood ``sum_i w_i log p(x_i | theta_s)``.

    Occupancy: for draw ``s``, every observation with ``counts > 0`` gets
    ``z_i ~ Categorical(r_i^(s))``; a component is occupied when at least one observation is
    assigned to it. ``chunk`` draws at a time, each over blocks of ``rows`` rows: the work space is
    O(chunk x rows x n_components) and no (n_draws, n_samples) array is formed.

    Returns
    -------
    n_occupied : jax.Array of int, shape (n_draws,)
    log_likelihood : jax.Array, shape (n_draws,)
    """
    keys = jax.random.split(key, draws.weights.shape[0])
    k = draws.weights.shape[-1]
    X_blocks, count_blocks = row_blocks(X, counts, rows)  # padded rows have count 0
    blocks = (jnp.arange(X_blocks.shape[0]), X_blocks, count_blocks)

    def one(inputs: tuple[jax.Array, MixtureDraws]) -> tuple[jax.Array, jax.Array]:
        draw_key, draw = inputs

        def add_block(carry: tuple[jax.Array, jax.Array], block: tuple[jax.Array, jax.Array, jax.Array]):
            hits, total = carry
            i, X_block, count = block
            log_joint = component_log_joint(draw, X_block, covariance_type, missing)
            z = jax.random.categorical(jax.random.fold_in(draw_key, i), log_joint, axis=-1)
            log_lik = jax.nn.logsumexp(log_joint, axis=-1)
            return (hits.at[z].add((count > 0).astype(jnp.int32)),
                    total + jnp.sum(jnp.where(count > 0, count * log_lik, 0.0))), None

        (hits, total), _ = jax.lax.scan(add_block, (jnp.zeros(k, jnp.int32), jnp.zeros((), X.dtype)), blocks)
        return jnp.sum(hits > 0), total

    return jax.lax.map(one, (keys, draws), batch_size=chunk)


@partial(jax.jit, static_argnames="covariance_type")
def draws_in_data_units(sites: dict[str, jax.Array], center: jax.Array, scale: jax.Array,
                        covariance_type: CovarianceType) -> MixtureDraws:
    """Draws of the model fitted to standardised data, as :class:`MixtureDraws` in data units."""
    return rescale_draws(draws_from_sites(sites, covariance_type), center, scale, covariance_type)


def _flat(draws: MixtureDraws) -> MixtureDraws:
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), draws)


def _unflat(draws: MixtureDraws, n_chains: int) -> MixtureDraws:
    return jax.tree.map(lambda x: x.reshape((n_chains, -1) + x.shape[1:]), draws)


# ----------------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------------


def _check_prior_shape(model: Any, name: str, allowed: dict[tuple[int, ...], str]) -> None:
    """Refuse a prior hyperparameter that is not numbers of one of the ``allowed`` shapes (None passes),
    in scikit-learn's words, before it meets the data in a broadcast."""
    value = getattr(model, name)
    if value is None:
        return
    described = " or ".join(allowed.values())
    try:
        shape = np.shape(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(f"The {name!r} parameter of {type(model).__name__} must be {described}, of numbers. "
                        f"Got {value!r} instead.") from None
    if shape not in allowed:
        raise ValueError(f"The {name!r} parameter of {type(model).__name__} must be {described}. "
                         f"Got shape {shape} instead.")


class BayesianGaussianMixture(DensityMixin, BaseEstimator):
    """Posterior over the parameters of a Gaussian mixture, by NUTS or variational inference.

    The model (see :mod:`bayesgmm.bayes.models`) puts a Dirichlet prior on the weights, Normal priors
    on the means, LogNormal priors on the component standard deviations and an LKJ prior on the
    correlations (full and tied), and sums out the component assignments. The data are standardised
    per feature before inference (one common scale for ``spherical``) and every output is mapped
    back to data units. Chains start from the EM solution (perturbed per chain); draws are relabelled
    against the EM solution and then the posterior mean, so per-component summaries and diagnostics
    are meaningful.

    Parameters
    ----------
    n_components : int, default=1
        Number of components. With a small ``weight_concentration_prior`` a generous value gives a
        sparse overfitted mixture whose number of occupied components estimates the number of
        clusters (``n_occupied_posterior_``).
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    inference : {"nuts", "vi", "gibbs"}, default="nuts"
        NUTS (exact up to Monte Carlo error), SVI with a multivariate normal guide (fast, approximate),
        or a blocked Gibbs sampler on conditionally conjugate priors
        (:class:`~bayesgmm.bayes.gibbs.GibbsMixture`, a NumPyro ``MCMCKernel``; ``full`` and ``diag``
        only, complete data, chains vectorised). Gibbs maps the priors below to conjugate ones
        (:func:`~bayesgmm.bayes.gibbs.gibbs_priors`): the same Dirichlet weights and Normal means
        (independent of the covariances); inverse-Wishart (full) or inverse-Gamma (diag) covariances
        whose variances have the prior median ``covariance_prior_scale**2``, the shape set by
        ``lkj_concentration`` (full, D >= 2: each correlation gets LKJ's marginal) or by
        ``covariance_prior_log_sd`` (diag, and full with one feature).
    weight_concentration_prior : float, array of shape (n_components,), "gamma" or ("gamma", shape, rate), optional
        Dirichlet concentration ``alpha`` of the weights, scikit-learn's name. Default
        ``1 / n_components``. ``alpha`` well below 1 (0.01 to 0.1) empties superfluous components;
        ``alpha >= 1`` spreads weight over all of them. ``"gamma"`` (Gibbs only): a sparse finite
        mixture (Malsiner-Walli et al. 2016), ``alpha ~ Gamma(10, 10 * n_components)`` sampled by a
        Metropolis-Hastings step on ``log alpha``; ``("gamma", shape, rate)`` sets that hyperprior.
    n_components_prior : "uniform" or array of shape (n_components,), optional
        Gibbs only: a prior on the number of components ``K = 1..n_components`` (probabilities, or
        "uniform"), sampled by the telescoping sampler (Fruhwirth-Schnatter, Malsiner-Walli and Grun
        2021) with Dirichlet(alpha, ..., alpha) weights for every ``K`` (``alpha`` a number or
        "gamma"); the posterior is ``n_components_posterior_``. Default: ``K = n_components``.
    mean_prior : array of shape (n_features,), optional
        Prior centre of the component means, in data units. Default: the data mean.
    mean_prior_scale : float or array of shape (n_features,), optional
        Prior standard deviation of the component means, in data units. Default: twice the data
        standard deviation.
    covariance_prior_scale : float or array of shape (n_features,), optional
        Prior median of the component standard deviations, in data units. Default: half the data
        standard deviation.
    covariance_prior_log_sd : float, default=1.0
        Prior standard deviation of the log component standard deviations.
    lkj_concentration : float, default=2.0
        LKJ concentration of the correlation matrices (full, tied).
    num_chains : int, default=4
    num_warmup : int, default=1000
    num_samples : int, default=1000
        NUTS: draws per chain. VI: number of draws from the fitted guide (stored as one chain).
    chain_method : {"auto", "vectorized", "parallel", "sequential"}, default="auto"
        "auto": one chain per device ("parallel") when there are enough devices; otherwise
        "vectorized" (all chains in one batched loop) on accelerators and "sequential" on CPU, where
        batching chains compiles about twice as slowly and runs slower because chains wait for the
        longest trajectory.
    dense_mass : bool, default=True
    target_accept_prob : float, default=0.8
    max_tree_depth : int, default=10
    init_jitter : float, default=0.1
        Standard deviation of the per-chain perturbation of the EM starting point (unconstrained
        space, standardised data).
    vi_steps : int, default=5000
    vi_learning_rate : float, default=0.01
    vi_guide : {"mvn", "lowrank"}, default="mvn"
        AutoMultivariateNormal or AutoLowRankMultivariateNormal.
    vi_subsample_size : int, optional
        VI only: rows per optimisation step. Each SVI step evaluates the likelihood on this many rows
        drawn uniformly (with replacement) and scales it by ``n_samples / vi_subsample_size``
        (NumPyro's ``plate(..., subsample_size=...)``), an unbiased estimate of the full-data ELBO and
        its gradient: a step costs O(vi_subsample_size) instead of O(n_samples). The target is the
        same posterior; the price is gradient noise, so use more ``vi_steps`` or a smaller
        ``vi_learning_rate``, and read ``elbo_trace_`` as a noisy estimate. ``elbo_``, the draws and
        everything after the optimisation use every row. A value ``>= n_samples`` means full batch.
        Not available with NUTS, whose Hamiltonian dynamics and Metropolis correction need the exact
        full-data density: with mini-batches the chain would sample a different, biased distribution.
    init : GaussianMixture, optional
        A fitted EM estimator with the same ``n_components`` and ``covariance_type`` to start from
        and relabel against. Default: fit ``bayesgmm.estimators.GaussianMixture`` with ``em_kwargs``.
    em_kwargs : dict, optional
        Extra arguments of that GaussianMixture (default ``{"n_init": 3}``).
    relabel_iter : int, default=3
        Rounds of relabelling against the posterior mean after the first round against EM.
    progress_bar : bool, default=False
    random_state : int, RandomState or None, default=None
    missing : {"error", "marginalize"}, default="error"
        "marginalize": NaN in X are missing values (missing at random). The likelihood of NUTS and
        VI is then each row's marginal over its observed coordinates
        (:class:`~bayesgmm.bayes.models.MarginalMixture`), the EM start is
        :class:`~bayesgmm.estimators.GaussianMixture`'s exact EM with ``missing="marginalize"``,
        the standardisation uses each feature's observed values, and ``score_samples``,
        ``predict_proba``, ``predict``, ``coclustering`` and the pointwise log-likelihood accept NaN.
        A row with no observed value is an error. "error": NaN is refused, as in scikit-learn.

    Attributes
    ----------
    idata_ : xarray.DataTree
        Relabelled posterior: groups ``posterior`` (``weights``, ``means``, ``covariances``),
        ``sample_stats``, ``log_likelihood``, ``observed_data``, ``label_invariant`` (``log_lik``,
        ``n_occupied``, ``weights_sorted``) and, with sample weights, ``constant_data``. The
        pointwise ``log_likelihood`` group holds draws x n_samples floats; above
        ``MAX_POINTWISE_LOG_LIKELIHOOD`` (2**26) it is left out, a warning says so and the root
        attribute ``log_likelihood_omitted`` gives the reason (``arviz.loo`` then has nothing to
        read; ``log_lik`` totals per draw are always kept).
    idata_raw_ : xarray.DataTree
        The same draws before relabelling.
    relabel_permutations_ : ndarray of shape (num_chains, num_samples, n_components)
        ``idata_`` component ``k`` of a draw is ``idata_raw_`` component ``relabel_permutations_[c, s, k]``.
    weights_, means_, covariances_, precisions_cholesky_
        Posterior means of the relabelled draws (scikit-learn shapes).
    n_occupied_posterior_ : ndarray of shape (n_components + 1,)
        ``P(exactly k components hold data | X)``, k = 0..n_components: for each draw, every
        observation gets an assignment sampled from its responsibilities, and a component is
        occupied when it receives at least one observation.
    n_components_posterior_ : ndarray of shape (n_components,)
        Gibbs only: ``P(K = k | X)`` at entry ``k - 1`` (a point mass at ``n_components`` without
        ``n_components_prior``).
    n_clusters_, cluster_weights_, cluster_means_, cluster_covariances_, cluster_labels_
        Gibbs only: the clustering identified from the draws with the modal number of filled
        components (Malsiner-Walli et al. 2016): ``n_clusters_`` is that mode; k-means on those draws'
        component means labels them; the posterior means over the draws whose labels form a
        permutation (data units), and each training row's most probable cluster. ``cluster_draws_``
        holds those draws, ``cluster_non_permutation_rate_`` the share left out
        (:func:`~bayesgmm.bayes.gibbs.identify_clusters`). The sample_stats group holds the sampler's
        ``n_filled`` (K+), ``n_components`` (K), ``concentration`` (alpha) and ``acceptance_rate``.
    em_ : GaussianMixture
        The EM fit used as starting point and first relabelling reference.
    n_divergences_ : int
        Divergent transitions after warm-up (NUTS; 0 for VI).
    n_grad_evals_ : int
        Gradients of the log density evaluated: NUTS leapfrog steps over all chains, warm-up
        included; VI optimisation steps; 0 for Gibbs. A hardware-independent measure of the cost of a fit.
    elbo_trace_ : ndarray of shape (vi_steps,)
        ELBO per optimisation step (VI; data units).
    elbo_ : float
        Final ELBO estimate (VI; data units), on every row.
    vi_subsample_size_ : int or None
        Rows per SVI step actually used (VI); None for full batch (also when ``vi_subsample_size``
        was ``>= n_samples``) and for NUTS.
    fit_time_ : float
        Seconds spent in ``fit``, compilation included.
    n_features_in_, feature_names_in_
        As in scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.bayes.estimator import BayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 1, (50, 1)), rng.normal(3, 1, (50, 1))])
    >>> bgm = BayesianGaussianMixture(2, inference="vi", vi_steps=500, num_samples=200,
    ...                               random_state=0).fit(X)
    >>> np.round(np.sort(bgm.means_.ravel()))
    array([-3.,  3.])
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: CovarianceType = "full",
        inference: Literal["nuts", "vi", "gibbs"] = "nuts",
        weight_concentration_prior: float | Literal["gamma"] | None = None,
        n_components_prior: Literal["uniform"] | ArrayLike | None = None,
        mean_prior: ArrayLike | None = None,
        mean_prior_scale: float | ArrayLike | None = None,
        covariance_prior_scale: float | ArrayLike | None = None,
        covariance_prior_log_sd: float = 1.0,
        lkj_concentration: float = 2.0,
        num_chains: int = 4,
        num_warmup: int = 1000,
        num_samples: int = 1000,
        chain_method: infer.ChainMethod = "auto",
        dense_mass: bool = True,
        target_accept_prob: float = 0.8,
        max_tree_depth: int = 10,
        init_jitter: float = 0.1,
        vi_steps: int = 5000,
        vi_learning_rate: float = 0.01,
        vi_guide: infer.GuideType = "mvn",
        vi_subsample_size: int | None = None,
        init: Any = None,
        em_kwargs: dict[str, Any] | None = None,
        relabel_iter: int = 3,
        progress_bar: bool = False,
        random_state: Any = None,
        missing: Literal["error", "marginalize"] = "error",
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.inference = inference
        self.weight_concentration_prior = weight_concentration_prior
        self.n_components_prior = n_components_prior
        self.mean_prior = mean_prior
        self.mean_prior_scale = mean_prior_scale
        self.covariance_prior_scale = covariance_prior_scale
        self.covariance_prior_log_sd = covariance_prior_log_sd
        self.lkj_concentration = lkj_concentration
        self.num_chains = num_chains
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.chain_method = chain_method
        self.dense_mass = dense_mass
        self.target_accept_prob = target_accept_prob
        self.max_tree_depth = max_tree_depth
        self.init_jitter = init_jitter
        self.vi_steps = vi_steps
        self.vi_learning_rate = vi_learning_rate
        self.vi_guide = vi_guide
        self.vi_subsample_size = vi_subsample_size
        self.init = init
        self.em_kwargs = em_kwargs
        self.relabel_iter = relabel_iter
        self.progress_bar = progress_bar
        self.random_state = random_state
        self.missing = missing

    # -- validation ------------------------------------------------------------------------------

    def _check_params(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

        positive_int("n_components")
        positive_int("num_chains")
        positive_int("num_warmup", 0)
        positive_int("num_samples")
        positive_int("max_tree_depth")
        positive_int("vi_steps")
        positive_int("relabel_iter", 0)
        options = {
            "covariance_type": COVARIANCE_TYPES,
            "inference": ("nuts", "vi", "gibbs"),
            "chain_method": ("auto", "vectorized", "parallel", "sequential"),
            "vi_guide": ("mvn", "lowrank"),
            "missing": ("error", "marginalize"),
        }
        for name, allowed in options.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("vi_learning_rate", "init_jitter"):
            value = getattr(self, name)
            if not isinstance(value, Real) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.target_accept_prob, Real) and 0 < self.target_accept_prob < 1):
            raise ValueError(f"target_accept_prob must be in (0, 1), got {self.target_accept_prob!r}")
        # scikit-learn's words ("The 'dense_mass' parameter of BayesianGaussianMixture must be an instance
        # of 'bool' ... Got 'yes' instead."), as GaussianMixture's parameter table gives them
        validate_parameter_constraints({"dense_mass": ["boolean"], "progress_bar": ["boolean"]},
                                       {"dense_mass": self.dense_mass, "progress_bar": self.progress_bar},
                                       caller_name=type(self).__name__)
        self._check_gibbs_params()
        m = self.vi_subsample_size
        if m is not None and (not isinstance(m, Integral) or isinstance(m, bool) or m < 1):
            raise ValueError(f"vi_subsample_size must be None or an integer >= 1, got {m!r}")
        if m is not None and self.inference != "vi":
            raise ValueError("vi_subsample_size needs inference='vi': NUTS needs the exact gradient and density of "
                             "the full data (mini-batches break its energy conservation and Metropolis correction, "
                             "so the chain would sample a different, biased distribution); use inference='vi' or "
                             "vi_subsample_size=None")

    def _sparse_hyperprior(self) -> bool:
        """Whether ``weight_concentration_prior`` is ``"gamma"`` or ``("gamma", shape, rate)`` (a Gamma
        hyperprior on the Dirichlet parameter)."""
        value = self.weight_concentration_prior
        if isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], str):
            value = value[0]
        return isinstance(value, str) and value == "gamma"

    def _concentration_prior(self) -> tuple[float, float] | None:
        """(shape, rate) of ``("gamma", shape, rate)``; None for the default ``"gamma"``."""
        value = self.weight_concentration_prior
        return (float(value[1]), float(value[2])) if isinstance(value, tuple) else None

    def _check_gibbs_params(self) -> None:
        """The options that only ``inference="gibbs"`` takes, and what it refuses."""
        value = self.weight_concentration_prior
        if (isinstance(value, str) or (isinstance(value, tuple) and value and isinstance(value[0], str))) and not (
                self._sparse_hyperprior() and (value == "gamma" or all(
                    isinstance(v, Real) and math.isfinite(v) and v > 0 for v in value[1:]))):
            raise ValueError("weight_concentration_prior must be a number, an array of shape (n_components,), None, "
                             f"'gamma' or ('gamma', shape, rate) with shape, rate > 0, got {value!r}")
        if self.inference != "gibbs":
            if self._sparse_hyperprior():
                raise ValueError(f"weight_concentration_prior='gamma' needs inference='gibbs' (got "
                                 f"inference={self.inference!r}): the Gamma hyperprior is sampled by a "
                                 "Metropolis-Hastings step of the Gibbs sampler")
            if self.n_components_prior is not None:
                raise ValueError(f"n_components_prior needs inference='gibbs' (got inference={self.inference!r}): "
                                 "the number of components is sampled by the telescoping Gibbs sampler")
            return
        from bayesgmm.bayes.gibbs import GIBBS_COVARIANCE_TYPES

        if self.covariance_type not in GIBBS_COVARIANCE_TYPES:
            raise ValueError(f"inference='gibbs' supports covariance_type in {GIBBS_COVARIANCE_TYPES} "
                             f"(conjugate updates), got covariance_type={self.covariance_type!r}")
        if self.chain_method not in ("auto", "vectorized"):
            raise ValueError(f"inference='gibbs' runs its chains vectorised: chain_method must be 'auto' or "
                             f"'vectorized', got chain_method={self.chain_method!r}")
        prior = self.n_components_prior
        if isinstance(prior, str):
            if prior != "uniform":
                raise ValueError(f"n_components_prior must be None, 'uniform' or an array of shape "
                                 f"({self.n_components},), got {prior!r}")
        elif prior is not None:
            p = np.asarray(prior, dtype=np.float64)
            if p.shape != (self.n_components,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
                raise ValueError(f"n_components_prior must be an array of shape ({self.n_components},) of "
                                 "non-negative prior probabilities of K = 1..n_components with a positive sum, "
                                 f"got {prior!r}")
        if prior is not None and not self._sparse_hyperprior() and self.weight_concentration_prior is not None \
                and np.ndim(self.weight_concentration_prior) > 0 \
                and not np.all(np.asarray(self.weight_concentration_prior) == np.ravel(self.weight_concentration_prior)[0]):
            raise ValueError("n_components_prior needs one Dirichlet parameter shared by the components: "
                             "weight_concentration_prior must be a number (or 'gamma')")

    def _check_X(self, X: Any, reset: bool) -> np.ndarray:
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=reset, ensure_min_samples=1,
                          ensure_all_finite=finite_rule(self.missing))
        return np.asarray(X, dtype=np.float64)

    def _has_missing(self, X: np.ndarray) -> bool:
        """Whether validated X has missing values to marginalise (a static flag of the programs); an
        error naming the rows without an observed value."""
        return self.missing == "marginalize" and check_missing(X)

    def _check_sample_weight(self, sample_weight: Any, n_samples: int) -> np.ndarray | None:
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (n_samples,):
            raise ValueError(f"sample_weight must have shape ({n_samples},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("sample_weight must be finite and non-negative with a positive sum")
        return w

    def _initial_mixture(self, X: np.ndarray, sample_weight: np.ndarray | None, seed: int) -> Any:
        if self.init is not None:
            em = self.init
            for name in ("weights_", "means_", "covariances_"):
                if not hasattr(em, name):
                    raise ValueError(f"init must be a fitted GaussianMixture; it has no attribute {name}")
            if getattr(em, "covariance_type", self.covariance_type) != self.covariance_type:
                raise ValueError(f"init has covariance_type={em.covariance_type!r}, expected "
                                 f"{self.covariance_type!r}")
            if np.shape(em.means_) != (self.n_components, X.shape[1]):
                raise ValueError(f"init has means_ of shape {np.shape(em.means_)}, expected "
                                 f"{(self.n_components, X.shape[1])}")
            return em
        from bayesgmm.estimators import GaussianMixture

        kwargs = {"n_init": 3, "missing": self.missing, **(self.em_kwargs or {})}
        em = GaussianMixture(self.n_components, covariance_type=self.covariance_type, random_state=seed, **kwargs)
        return em.fit(X, sample_weight=sample_weight)

    # -- fit -------------------------------------------------------------------------------------

    @atomic_fit
    def fit(self, X: Any, y: Any = None, sample_weight: ArrayLike | None = None) -> BayesianGaussianMixture:
        """Sample (NUTS) or approximate (VI) the posterior given ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Not modified. Column names of a DataFrame become the ``feature`` coordinates.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights multiplying each row's log-likelihood (weight 2 is a duplicated row).

        Returns
        -------
        self
        """
        start = time.perf_counter()
        self._check_params()
        X_input = X
        X = self._check_X(X, reset=True)
        n_samples, n_features = X.shape
        if n_samples < self.n_components:
            raise ValueError(f"n_samples={n_samples} should be >= n_components={self.n_components}")
        sample_weight = self._check_sample_weight(sample_weight, n_samples)
        missing = self._has_missing(X)
        if missing and self.inference == "gibbs":
            raise ValueError("inference='gibbs' needs complete data (its updates are conjugate on complete rows): "
                             "X has missing values; use inference='nuts' or 'vi' with missing='marginalize'")
        ct: CovarianceType = self.covariance_type
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        key = jax.random.key(seed)

        center, scale = weighted_moments(X, sample_weight)
        if form_of(ct).isotropic:  # a spherical covariance stays spherical only under one common scale
            scale = np.full(n_features, np.sqrt(np.mean(scale**2)))
        Z = jnp.asarray((X - center) / scale, jnp.float32)
        # Always weighted (ones by default): weighted and unweighted fits then share one compiled program.
        weights_fit = jnp.asarray(np.ones(n_samples) if sample_weight is None else sample_weight, jnp.float32)
        priors = self._priors(Z, center, scale, weights_fit)
        em = self._initial_mixture(X_input, sample_weight, seed)
        init_sites = sites_from_params(*self._standardised_em(em, center, scale), ct, priors.weight_concentration)
        model_args = (Z, priors)
        model_kwargs = {"covariance_type": ct, "sample_weight": weights_fit}
        if missing:  # static; absent for complete data, which keep their compiled programs
            model_kwargs["missing"] = True

        if self.inference == "nuts":
            result = infer.run_nuts(
                jax.random.fold_in(key, 0), gaussian_mixture_model, model_args, model_kwargs, init_sites,
                num_chains=self.num_chains, num_warmup=self.num_warmup, num_samples=self.num_samples,
                chain_method=self.chain_method, dense_mass=self.dense_mass,
                target_accept_prob=self.target_accept_prob, max_tree_depth=self.max_tree_depth,
                init_jitter=self.init_jitter, progress_bar=self.progress_bar)
            self.chain_method_ = result.chain_method
            self.vi_subsample_size_ = None
            self.n_divergences_ = int(np.sum(np.asarray(result.sample_stats["diverging"])))
            self.n_grad_evals_ = result.n_grad_evals
        elif self.inference == "gibbs":
            from bayesgmm.bayes import gibbs

            result = gibbs.run_gibbs(
                jax.random.fold_in(key, 3), Z, weights_fit,
                gibbs.gibbs_priors(priors, ct, sample_concentration=self._sparse_hyperprior(),
                                   n_components_prior=self.n_components_prior,
                                   concentration_prior=self._concentration_prior()),
                gibbs.init_params_from_mixture(*self._standardised_em(em, center, scale), ct, self.num_chains,
                                               self.init_jitter, seed),
                covariance_type=ct, sample_concentration=self._sparse_hyperprior(),
                sample_n_components=self.n_components_prior is not None, num_chains=self.num_chains,
                num_warmup=self.num_warmup, num_samples=self.num_samples)
            self.chain_method_ = "vectorized"
            self.vi_subsample_size_ = None
            self.n_divergences_ = 0
            self.n_grad_evals_ = 0  # no gradients: conjugate draws
        else:
            m = self.vi_subsample_size
            self.vi_subsample_size_ = None if m is None or m >= n_samples else int(m)
            draw_batch = min(self.num_samples, infer.DRAW_BATCH)
            result = infer.run_vi(
                jax.random.fold_in(key, 1), gaussian_mixture_model, model_args, model_kwargs, init_sites,
                num_steps=self.vi_steps, learning_rate=self.vi_learning_rate, num_samples=self.num_samples,
                guide=self.vi_guide, subsample_size=self.vi_subsample_size_,
                row_block=rows_per_block(n_samples, self.n_components, draw_batch))
            # The model saw (X - center) / scale: log p(x) = log p(z) - sum(log scale) per unit weight.
            shift = float(np.sum(np.log(scale)) * (n_samples if sample_weight is None else sample_weight.sum()))
            self.elbo_trace_ = np.asarray(result.elbo_trace, dtype=np.float64) - shift
            self.elbo_ = float(result.elbo) - shift
            self.n_divergences_ = 0
            self.n_grad_evals_ = self.vi_steps  # one single-particle ELBO gradient per step

        raw = draws_in_data_units(result.samples, jnp.asarray(center, jnp.float32), jnp.asarray(scale, jnp.float32), ct)
        self._store_posterior(X, sample_weight, raw, em, result.sample_stats, jax.random.fold_in(key, 2))
        if self.inference == "gibbs":
            from bayesgmm.bayes.gibbs import store_gibbs_results

            store_gibbs_results(self, X, raw, result, seed)
        self.em_ = em
        self.fit_time_ = time.perf_counter() - start
        self._warn_diagnostics()
        return self

    def _priors(self, Z: jax.Array, center: np.ndarray, scale: np.ndarray, sample_weight: jax.Array) -> GMMPriors:
        """Default priors on the standardised data, with user overrides mapped from data units."""
        d, k = center.shape[0], self.n_components
        per_component, per_feature = f"an array of shape ({k},) (one per component)", \
            f"an array of shape ({d},) (one per feature)"
        shapes = {"weight_concentration_prior": {(): "a number", (k,): per_component},
                  "mean_prior": {(d,): per_feature},
                  "mean_prior_scale": {(): "a number", (d,): per_feature},
                  "covariance_prior_scale": {(): "a number", (d,): per_feature}}
        if self._sparse_hyperprior():  # "gamma": the Dirichlet parameter is sampled (inference="gibbs")
            del shapes["weight_concentration_prior"]
        for name, allowed in shapes.items():
            _check_prior_shape(self, name, allowed)

        def standardised(value: Any, shift: bool = False) -> Any:
            if value is None:
                return None
            value = np.asarray(value, dtype=np.float64)
            return (value - center) / scale if shift else value / scale

        priors = default_priors(
            Z, self.n_components,
            weight_concentration_prior=None if self._sparse_hyperprior() else self.weight_concentration_prior,
            mean_prior=standardised(self.mean_prior, shift=True),
            mean_prior_scale=standardised(self.mean_prior_scale),
            covariance_prior_scale=standardised(self.covariance_prior_scale),
            covariance_prior_log_sd=self.covariance_prior_log_sd,
            lkj_concentration=self.lkj_concentration,
            sample_weight=sample_weight,
        )
        validate_priors(priors)
        return priors

    def _standardised_em(self, em: Any, center: np.ndarray,
                         scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ct = self.covariance_type
        cov = form_of(ct).rescale_covariances(np.asarray(em.covariances_, dtype=np.float64), 1.0 / scale)
        return np.asarray(em.weights_), (np.asarray(em.means_) - center) / scale, cov

    def _store_posterior(self, X: np.ndarray, sample_weight: np.ndarray | None, raw: MixtureDraws, em: Any,
                         sample_stats: dict[str, jax.Array], key: jax.Array) -> None:
        ct = self.covariance_type
        n_chains = raw.weights.shape[0]
        cov = jnp.asarray(em.covariances_, jnp.float32)
        reference = MixtureDraws(jnp.asarray(em.weights_, jnp.float32), jnp.asarray(em.means_, jnp.float32), cov,
                                 cov_factor_from_covariances(cov, ct))
        flat_raw = _flat(raw)
        flat, perms, _ = relabel(flat_raw, reference, ct, max_iter=self.relabel_iter)
        self.relabel_permutations_ = perms.reshape(n_chains, -1, self.n_components)

        Xj = jnp.asarray(X, jnp.float32)
        n_samples = X.shape[0]
        n_draws = flat.weights.shape[0]
        chunk = draws_per_chunk(n_draws, n_samples, self.n_components)
        rows = rows_per_block(n_samples, self.n_components, chunk)
        counts = jnp.ones(n_samples, jnp.float32) if sample_weight is None else jnp.asarray(sample_weight, jnp.float32)
        missing = self._has_missing(X)
        n_occupied, log_lik_total = occupancy_and_log_likelihood(key, flat, Xj, counts, ct, chunk, rows, missing)
        attrs = {"inference": self.inference, "covariance_type": ct, "n_components": self.n_components,
                 "inference_library": "numpyro"}
        if n_draws * n_samples <= MAX_POINTWISE_LOG_LIKELIHOOD:
            log_lik = pointwise_log_likelihood(flat, Xj, ct, chunk, missing) * counts  # counts: ones without weights
            log_lik = np.asarray(log_lik).reshape(n_chains, -1, n_samples)
        else:
            log_lik = None
            attrs["log_likelihood_omitted"] = (
                f"the pointwise log-likelihood has {n_draws} draws x {n_samples} rows = {n_draws * n_samples} "
                f"floats > MAX_POINTWISE_LOG_LIKELIHOOD = {MAX_POINTWISE_LOG_LIKELIHOOD}")
            warnings.warn(f"{attrs['log_likelihood_omitted']}: idata_ has no log_likelihood group, so arviz.loo "
                          "cannot run on it (fewer num_samples, or raise bayesgmm.bayes.estimator."
                          "MAX_POINTWISE_LOG_LIKELIHOOD to keep it)", UserWarning, stacklevel=3)
        invariant = {
            "log_lik": np.asarray(log_lik_total).reshape(n_chains, -1),
            "n_occupied": np.asarray(n_occupied).reshape(n_chains, -1),
            "weights_sorted": np.asarray(-jnp.sort(-flat.weights, axis=-1)).reshape(n_chains, -1, self.n_components),
        }
        common = dict(X=X, log_likelihood=log_lik,
                      feature_names=getattr(self, "feature_names_in_", None),
                      sample_stats={name: np.asarray(v) for name, v in sample_stats.items()},
                      label_invariant=invariant, sample_weight=sample_weight, attrs=attrs)
        self.idata_ = to_datatree(_unflat(flat, n_chains), ct, **common)
        self.idata_raw_ = to_datatree(raw, ct, **{**common, "attrs": {**common["attrs"], "relabelled": 0}})
        self.idata_.attrs["relabelled"] = 1
        self.draws_ = flat

        occupancy = np.bincount(np.asarray(n_occupied), minlength=self.n_components + 1)
        self.n_occupied_posterior_ = occupancy / occupancy.sum()
        weights = np.asarray(jnp.mean(flat.weights, axis=0), dtype=np.float64)
        self.weights_ = weights / weights.sum()
        self.means_ = np.asarray(jnp.mean(flat.means, axis=0), dtype=np.float64)
        self.covariances_ = np.asarray(jnp.mean(flat.covariances, axis=0), dtype=np.float64)
        with jax.enable_x64(True):
            self.precisions_cholesky_ = np.asarray(form_of(ct).precisions_cholesky(jnp.asarray(self.covariances_)))

    def _warn_diagnostics(self) -> None:
        if self.n_divergences_:
            warnings.warn(f"{self.n_divergences_} divergent transitions after warm-up; the posterior may be "
                          "biased (try a higher target_accept_prob or a more informative prior)", UserWarning,
                          stacklevel=3)
        if self.inference == "nuts" and self.num_chains > 1:
            worst = float(self.summary(kind="diagnostics")["r_hat"].max())
            if not worst <= 1.05:
                warnings.warn(f"worst R-hat after relabelling is {worst:.3f} > 1.05: the chains disagree; run "
                              "longer chains or check idata_", UserWarning, stacklevel=3)

    # -- posterior summaries ---------------------------------------------------------------------

    def save(self, path):
        """Write the fitted model, posterior draws included, to ``path`` (portable, no pickle);
        read it back with :func:`bayesgmm.load`."""
        from bayesgmm.io import save

        return save(self, path)

    def summary(self, var_names: list[str] | None = None, **kwargs: Any) -> pd.DataFrame:
        """ArviZ summary (mean, sd, intervals, ESS, R-hat) of the relabelled posterior.

        Parameters
        ----------
        var_names : str or list of str, optional
            Default: ``weights``, ``means``, ``covariances`` from ``posterior`` and every
            label-invariant quantity (``log_lik``, ``n_occupied``, ``weights_sorted``). A name
            the posterior does not hold is a ``ValueError``.
        **kwargs
            Passed to ``arviz.summary`` (default ``round_to="none"`` so every column is numeric).

        Returns
        -------
        pandas.DataFrame
            One row per scalar quantity.
        """
        from arviz_stats import summary

        check_is_fitted(self, "idata_")
        kwargs = {"round_to": "none", **kwargs}
        if isinstance(var_names, str):
            var_names = [var_names]
        posterior_vars = ["weights", "means", "covariances"] if var_names is None else list(var_names)
        invariant = list(self.idata_["label_invariant"].data_vars)
        known = list(self.idata_["posterior"].data_vars) + invariant
        unknown = [v for v in posterior_vars if v not in known]
        if unknown:
            raise ValueError(f"var_names has {unknown}, which the posterior does not hold; choose among {known}")
        frames = []
        with warnings.catch_warnings():
            # A constant quantity (e.g. n_occupied always equal to K) has no variance to diagnose.
            warnings.simplefilter("ignore", RuntimeWarning)
            chosen = [v for v in posterior_vars if v in self.idata_["posterior"].data_vars]
            if chosen:
                frames.append(summary(self.idata_, var_names=chosen, **kwargs))
            chosen = invariant if var_names is None else [v for v in posterior_vars if v in invariant]
            if chosen:
                frames.append(summary(self.idata_, var_names=chosen, group="label_invariant", **kwargs))
        return pd.concat(frames)

    # -- posterior predictive --------------------------------------------------------------------

    def _predictive_inputs(self, X: Any) -> tuple[jax.Array, int, bool]:
        """Validated X as float32, the draws per chunk, and whether X has missing values."""
        check_is_fitted(self, "draws_")
        X = self._check_X(X, reset=False)
        chunk = draws_per_chunk(self.draws_.weights.shape[0], X.shape[0], self.n_components)
        return jnp.asarray(X, jnp.float32), chunk, self._has_missing(X)

    def score_samples(self, X: Any) -> np.ndarray:
        """Log posterior predictive density ``log (1/S) sum_s p(x | theta_s)`` of each row: shape (n_samples,)."""
        Xj, chunk, missing = self._predictive_inputs(X)
        return np.asarray(posterior_predictive_log_density(self.draws_, Xj, self.covariance_type, chunk, missing),
                          dtype=np.float64)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples` (scikit-learn's convention)."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities averaged over posterior draws: shape (n_samples, n_components)."""
        Xj, chunk, missing = self._predictive_inputs(X)
        proba = np.asarray(mean_responsibilities(self.draws_, Xj, self.covariance_type, chunk, missing),
                           dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)  # exact row sums after float32 accumulation

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each row under :meth:`predict_proba`: shape (n_samples,)."""
        return np.argmax(self.predict_proba(X), axis=1)

    def coclustering(self, X: Any = None) -> np.ndarray:
        """Posterior probability that rows ``i`` and ``j`` belong to the same component.

        Label-invariant: ``mean_s sum_k r_ik^(s) r_jk^(s)`` for ``i != j`` (assignments are independent
        given the parameters), and 1 on the diagonal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            Default: the training data.

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_samples)
        """
        if X is None:
            check_is_fitted(self, "idata_")
            X = self.idata_["observed_data"]["obs"].values
            if hasattr(self, "feature_names_in_"):
                X = pd.DataFrame(X, columns=self.feature_names_in_)
        Xj, chunk, missing = self._predictive_inputs(X)
        chunk = max(1, min(chunk, _CHUNK_FLOATS // max(1, Xj.shape[0] ** 2)))
        together = np.asarray(coclustering_matrix(self.draws_, Xj, self.covariance_type, chunk, missing),
                              dtype=np.float64)
        together = np.clip(together, 0.0, 1.0)  # float32 sums of products can exceed 1 by ~1e-5
        np.fill_diagonal(together, 1.0)  # a row always shares its own component
        return together

    def point_score_samples(self, X: Any) -> np.ndarray:
        """``log p(x | weights_, means_, covariances_)`` per row, at the posterior means: shape (n_samples,)."""
        check_is_fitted(self, "weights_")
        Xj, _, missing = self._predictive_inputs(X)
        cov = jnp.asarray(self.covariances_, jnp.float32)
        point = MixtureDraws(jnp.asarray(self.weights_, jnp.float32)[None], jnp.asarray(self.means_, jnp.float32)[None],
                             cov[None], cov_factor_from_covariances(cov, self.covariance_type)[None])
        return np.asarray(pointwise_log_likelihood(point, Xj, self.covariance_type, 1, missing)[0], dtype=np.float64)

    def _n_parameters(self) -> int:
        from bayesgmm.covariance import n_parameters

        return n_parameters(self.covariance_type, self.n_components, self.n_features_in_)


__all__ = ["BayesianGaussianMixture"]
