"""Expectation-maximisation for Gaussian mixtures as pure functions over :class:`GMMParams`.

The data arrive in row chunks, ``X`` of shape (n_chunks, chunk_size, n_features) and ``sample_weight``
of shape (n_chunks, chunk_size) (padding rows have weight 0), so one EM iteration is a single pass
(a loop over the chunks that hold data, :func:`bayesgmm._chunks.scan_chunks`) whose work space is
O(chunk_size x n_components x n_features), whatever n_samples is.

One pass computes, for the current parameters, the responsibilities, the lower bound (the weighted
mean log-likelihood) and the sufficient statistics of the M-step. The scatter is accumulated about
the *current* means and corrected to the new means, ``S = sum r (x - m)(x - m)^T - s s^T / n_k`` with
``s = sum r (x - m)``; the correction is small because the means move little, so there is no
E[xx^T] - mu mu^T cancellation.

References
----------
Bishop, C. M. (2006). Pattern Recognition and Machine Learning, ch. 9.
McLachlan, G. J. and Peel, D. (2000). Finite Mixture Models, ch. 2-3.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from bayesgmm import covariance as cov
from bayesgmm import missing as marginal
from bayesgmm._chunks import map_chunks, scan_chunks
from bayesgmm.covariance import form_of, get_model
from bayesgmm.init import initial_responsibilities, label_responsibilities
from bayesgmm.params import GMMParams


DATA_AXIS = "data"  # the mesh axis along which rows (chunks) are sharded

#: A component has collapsed when its variance along some direction, in units of the data's
#: variance (per feature), is below this: a standard deviation under 1/1000 of the data's.
COLLAPSE_RATIO = 1e-6


def _tiny(dtype) -> float:
    """The 10 * eps that scikit-learn adds to n_k so that an empty component divides by no zero."""
    return 10 * float(jnp.finfo(dtype).eps)


#: Without ``noise_init``, the noise component starts with this weight (the Gaussian components'
#: weights from ``init_params`` are scaled by 1 - NOISE_START).
NOISE_START = 0.1


def noise_log_prob(params: GMMParams) -> jax.Array | None:
    """log(noise_weight / V), the noise component's weighted log density (the same at every x); None
    without a noise component."""
    if params.noise_weight is None:
        return None
    return jnp.log(params.noise_weight) + params.noise_log_density


def weighted_log_prob(X: jax.Array, params: GMMParams, missing: bool = False) -> jax.Array:
    """log pi_k + log N(x_n | mu_k, Sigma_k) for X of shape (N, D): shape (N, K); with a noise
    component, (N, K + 1) with log(noise_weight / V) in the last column. With ``missing`` (static),
    X has NaN where values are missing and each row's density is that of its observed coordinates
    (:mod:`bayesgmm.missing`)."""
    log_gaussian_prob = marginal.log_gaussian_prob if missing else cov.log_gaussian_prob
    wlp = log_gaussian_prob(X, params.means, params.precisions_cholesky, params.covariance_type) + jnp.log(
        params.weights
    )
    noise = noise_log_prob(params)
    _check_noise_and_missing(noise, missing)
    if noise is None:
        return wlp
    return jnp.concatenate([wlp, jnp.broadcast_to(noise.astype(wlp.dtype), (wlp.shape[0], 1))], axis=1)


def _check_noise_and_missing(noise, missing: bool) -> None:
    if noise is not None and missing:  # the marginal of the noise box over a row's observed coordinates
        raise NotImplementedError("a noise component and missing values together are not supported")


def e_step(X: jax.Array, params: GMMParams, missing: bool = False) -> tuple[jax.Array, jax.Array]:
    """E-step on unchunked data (``missing``: X has NaN, see :func:`weighted_log_prob`).

    Returns
    -------
    log_prob : array of shape (N,)
        log p(x_n), the per-sample log-likelihood.
    log_resp : array of shape (N, K), or (N, K + 1) with a noise component (noise last)
        log responsibilities; ``exp(log_resp)`` sums to one over components.
    """
    wlp = weighted_log_prob(X, params, missing)
    log_prob = logsumexp(wlp, axis=1)
    return log_prob, wlp - log_prob[:, None]


def e_step_chunks(X: jax.Array, sample_weight: jax.Array, params: GMMParams,
                  missing: bool = False) -> tuple[jax.Array, jax.Array]:
    """:func:`e_step` over chunked data (n_chunks, chunk_size, D), one chunk at a time: log p(x) of
    shape (n_chunks, chunk_size) and log responsibilities (n_chunks, chunk_size, K); zero in the
    trailing chunks of padding (see :func:`bayesgmm._chunks.map_chunks`). ``missing`` (static): X
    has NaN where values are missing (:mod:`bayesgmm.missing`)."""
    X, sample_weight = jnp.asarray(X), jnp.asarray(sample_weight)
    return map_chunks(lambda i: e_step(X[i], params, missing), sample_weight)


def _recenter(nk, sum_diff, scatter, covariance_type):
    """Move statistics accumulated about a shift m to the new means m + sum_diff / n_k.

    Returns (n_k + tiny, the change of means (K, D), the scatter about the new means).
    """
    nk = nk + _tiny(nk.dtype)
    delta = sum_diff / nk[:, None]
    if form_of(covariance_type).matrix:
        centered_scatter = scatter - sum_diff[:, :, None] * delta[:, None, :]
    else:
        centered_scatter = jnp.maximum(scatter - sum_diff * delta, 0.0)
    return nk, delta, centered_scatter


def _params_from_statistics(nk, sum_diff, scatter, shift, reg_covar, mask, covariance_type, model_index=0,
                            previous_cholesky: jax.Array | None = None, prior=None, noise_count=None,
                            noise_log_density=None) -> GMMParams:
    """M-step from statistics accumulated about ``shift`` (K, D).

    ``previous_cholesky``, the last iterate's precision-Cholesky factor, starts the inner iterations of
    the models without a closed-form M-step; ``model_index`` picks the model of a
    :class:`~bayesgmm.covariance.ModelChoice`. With a :class:`~bayesgmm.prior.ConjugatePrior` the
    M-step gives the MAP estimates (and ``reg_covar`` is not used). With ``noise_count`` (the noise
    component's summed responsibility) the weights are shares of the Gaussian and noise counts
    together, and the result carries the noise weight and ``noise_log_density``.
    """
    model = get_model(covariance_type)
    form = model.form
    nk, delta, centered_scatter = _recenter(nk, sum_diff, scatter, covariance_type)
    k, d = shift.shape
    previous = None if previous_cholesky is None else (
        lambda: form.full(form.covariances(previous_cholesky), k, d))
    means = shift + delta
    if prior is None:
        covariances = model.covariances_from_scatter(nk, centered_scatter, reg_covar, mask, previous, model_index)
    else:
        means, covariances = model.map_from_scatter(nk, means, centered_scatter, prior, mask, previous, model_index)
    weights = jnp.where(mask, nk, 0.0)
    if noise_count is None:
        return GMMParams(
            weights=weights / jnp.sum(weights),
            means=means,
            precisions_cholesky=form.precisions_cholesky(covariances),
            covariance_type=covariance_type,
        )
    total = jnp.sum(weights) + noise_count
    return GMMParams(weights / total, means, form.precisions_cholesky(covariances), covariance_type,
                     noise_weight=noise_count / total, noise_log_density=noise_log_density)


def m_step(X: jax.Array, resp, reg_covar, covariance_type, mask: jax.Array | None = None,
           model_index=0, prior=None, sample_weight: jax.Array | None = None) -> GMMParams:
    """M-step from weighted responsibilities, in two passes (means, then scatter about them).

    Parameters
    ----------
    X : array of shape (N, D), or chunked (n_chunks, chunk_size, D)
    resp : array of shape (N, K) or (n_chunks, chunk_size, K), or a function ``i -> (chunk_size, K)``
        Responsibilities already multiplied by the sample weights (a function computes them one
        chunk at a time, so that no N x K array is formed).
    reg_covar : float
        Added to the diagonal of every covariance.
    covariance_type : str or tuple of str
        A model name (see :func:`bayesgmm.covariance.get_model`), or a tuple of names for a
        :class:`~bayesgmm.covariance.ModelChoice`.
    mask : bool array of shape (K,), optional
        Components that exist; the others get weight 0 (used to pad grids to one shape).
    model_index : int, optional
        Which model of a tuple of names (traced).
    prior : ConjugatePrior, optional
        MAP instead of maximum-likelihood estimates (:mod:`bayesgmm.prior`).
    sample_weight : array of shape (n_chunks, chunk_size), optional
        The chunked data's weights: the passes then skip the trailing chunks of padding.
    """
    X = jnp.asarray(X)
    if not callable(resp):
        resp = jnp.asarray(resp)
    if X.ndim == 2:
        X = X[None]
        resp = resp if callable(resp) else resp[None]
    resp_of_chunk = resp if callable(resp) else (lambda i: resp[i])
    d = X.shape[-1]
    k = jax.eval_shape(resp_of_chunk, 0).shape[-1]
    if mask is None:
        mask = jnp.ones(k, dtype=bool)

    if sample_weight is None:
        sample_weight = jnp.ones(X.shape[:2], X.dtype)

    def first_moments(carry, i):
        nk, sums = carry
        r = resp_of_chunk(i)
        return nk + jnp.sum(r, axis=0), sums + r.T @ X[i]

    zeros = (jnp.zeros(k, X.dtype), jnp.zeros((k, d), X.dtype))
    nk, sums = scan_chunks(first_moments, zeros, sample_weight)
    nk = nk + _tiny(X.dtype)
    means = sums / nk[:, None]

    form = form_of(covariance_type)

    def accumulate(scatter, i):
        return scatter + form.scatter(cov.centered(X[i], means), resp_of_chunk(i))

    scatter = scan_chunks(accumulate, jnp.zeros(form.scatter_shape(k, d), X.dtype), sample_weight)
    return _params_from_statistics(nk, jnp.zeros_like(means), scatter, means, reg_covar, mask, covariance_type,
                                   model_index, prior=prior)


def pass_statistics(X: jax.Array, sample_weight: jax.Array, params: GMMParams,
                    missing: bool = False) -> tuple[jax.Array, ...]:
    """One pass over chunked data: (sum_n w_n log p(x_n), sum w, n_k, sum r (x - m), scatter about m),
    and with a noise component a sixth, the noise's summed responsibility sum_n w_n r_n0.

    ``m`` are the current means; the statistics add over rows, so over chunks and devices. The
    Gaussian statistics use the Gaussian responsibilities (the noise column takes its share of
    each row), so every covariance model's M-step is unchanged. With ``missing`` (static), X has NaN
    where values are missing: log p is each row's observed-data likelihood and the statistics use
    the conditional moments of its missing coordinates (:func:`bayesgmm.missing.chunk_statistics`).
    """
    X, sample_weight = jnp.asarray(X), jnp.asarray(sample_weight)
    form = form_of(params.covariance_type)
    k, d = params.means.shape
    dtype = params.means.dtype
    log_det = form.log_det(params.precisions_cholesky, d)
    log_norm = log_det + jnp.log(params.weights) - 0.5 * d * math.log(2 * math.pi)
    statistics = _chunk_statistics_feature_major if d <= FEATURE_MAJOR_MAX_FEATURES else _chunk_statistics_matmul
    noise = noise_log_prob(params)
    if missing:
        _check_noise_and_missing(noise, missing)
        covariances = marginal.kernel_covariances(form, form.covariances(params.precisions_cholesky), k, d)
        log_weights = jnp.log(params.weights)

        def statistics(x, w, *_):
            return marginal.chunk_statistics(x, w, params.means, log_weights, covariances, form.matrix)

    def accumulate(carry, i):
        return tuple(a + b for a, b in zip(carry, statistics(X[i], sample_weight[i], params, log_norm, noise)))

    init = (jnp.zeros((), dtype), jnp.zeros(k, dtype), jnp.zeros((k, d), dtype), jnp.zeros(form.scatter_shape(k, d), dtype))
    if noise is not None:
        init = (*init, jnp.zeros((), dtype))
    total, nk, sum_diff, scatter, *noise_count = scan_chunks(accumulate, init, sample_weight)
    return (total, jnp.sum(sample_weight), nk, sum_diff, scatter, *noise_count)


def em_step(X: jax.Array, sample_weight: jax.Array, params: GMMParams, reg_covar, mask: jax.Array,
            mesh: Mesh | None = None, model_index=0, prior=None, missing: bool = False) -> tuple[GMMParams, jax.Array]:
    """One EM iteration in one pass over chunked data.

    Parameters
    ----------
    X : array of shape (n_chunks, chunk_size, D)
    sample_weight : array of shape (n_chunks, chunk_size)
    params : GMMParams
    reg_covar : float
    mask : bool array of shape (K,)
    mesh : jax.sharding.Mesh with one axis named "data", optional
        When given, the chunks are split across its devices, each device makes its own pass, and the
        statistics are summed across devices (``psum``); parameters stay replicated.
    model_index : int, optional
        Which model of a :class:`~bayesgmm.covariance.ModelChoice` (traced).
    prior : ConjugatePrior, optional
        MAP-EM under mclust's conjugate prior.
    missing : bool, optional (static)
        X has NaN where values are missing: the exact EM of Ghahramani and Jordan (1994), see
        :mod:`bayesgmm.missing`.

    Returns
    -------
    new_params : GMMParams
        Parameters after the M-step.
    lower_bound : scalar array
        Weighted mean log-likelihood of ``params`` (before the M-step), as scikit-learn reports it.
    """
    if mesh is None:
        stats = pass_statistics(X, sample_weight, params, missing)
    else:
        def sharded_pass(X, sample_weight, params):
            return jax.lax.psum(pass_statistics(X, sample_weight, params, missing), DATA_AXIS)

        stats = jax.shard_map(sharded_pass, mesh=mesh, in_specs=(P(DATA_AXIS), P(DATA_AXIS), P()), out_specs=P(),
                              check_vma=False)(
            X, sample_weight, params)
    total, total_weight, nk, sum_diff, scatter, *noise_count = stats
    noise = {"noise_count": noise_count[0], "noise_log_density": params.noise_log_density} if noise_count else {}
    new_params = _params_from_statistics(nk, sum_diff, scatter, params.means, reg_covar, mask,
                                         params.covariance_type, model_index, params.precisions_cholesky, prior,
                                         **noise)
    return new_params, total / total_weight


# Up to this many features, a chunk is processed feature-major (D, K, C) with the D x D products
# unrolled, so every operation runs along the long sample axis; above it, batched matmuls win
# (measured on a 2-core CPU: 3-4x faster at D=2, 3x slower at D=8).
FEATURE_MAJOR_MAX_FEATURES = 2


def _chunk_statistics_matmul(x, w, params: GMMParams, log_norm, noise=None):
    """Per-chunk (sum w log p, n_k, sum r (x - m), scatter about m) with batched matmuls, (K, C, D) layout;
    with ``noise`` (the noise column's log(noise_weight / V)), also the noise's sum of w r."""
    form = form_of(params.covariance_type)
    diff = cov.centered(x, params.means)
    y = form.whiten(diff, params.precisions_cholesky)
    wlp = log_norm - 0.5 * jnp.sum(y * y, axis=-1).T
    log_prob = logsumexp(wlp, axis=1)
    if noise is not None:
        log_prob = jnp.logaddexp(log_prob, noise)
    resp = jnp.exp(wlp - log_prob[:, None]) * w[:, None]
    total = jnp.sum(jnp.where(w > 0, w * log_prob, 0.0))
    stats = total, jnp.sum(resp, axis=0), jnp.einsum("nk,knd->kd", resp, diff), form.scatter(diff, resp)
    return stats if noise is None else (*stats, jnp.sum(jnp.exp(noise - log_prob) * w))


def _chunk_statistics_feature_major(x, w, params: GMMParams, log_norm, noise=None):
    """The same statistics as :func:`_chunk_statistics_matmul`, feature-major (D, K, C), for small D."""
    form = form_of(params.covariance_type)
    d = x.shape[1]
    diff = x.T[:, None, :] - params.means.T[:, :, None]  # (D, K, C)
    y = form.whiten_feature_major([diff[i] for i in range(d)], params.precisions_cholesky)
    wlp = log_norm[:, None] - 0.5 * sum(yj * yj for yj in y)  # (K, C)
    top = jnp.max(wlp, axis=0)
    if noise is not None:
        top = jnp.maximum(top, noise)
    unnormalised = jnp.exp(wlp - top)
    norm = jnp.sum(unnormalised, axis=0)
    if noise is not None:
        noise_unnormalised = jnp.exp(noise - top)
        norm = norm + noise_unnormalised
    log_prob = top + jnp.log(norm)
    resp = unnormalised * (w / norm)  # (K, C)
    total = jnp.sum(jnp.where(w > 0, w * log_prob, 0.0))
    weighted = diff * resp  # (D, K, C)
    sum_diff = jnp.sum(weighted, axis=-1).T
    stats = total, jnp.sum(resp, axis=1), sum_diff, form.scatter_feature_major(weighted, diff)
    return stats if noise is None else (*stats, jnp.sum(noise_unnormalised * (w / norm)))


class EMResult(NamedTuple):
    """Outcome of one EM run (or of a batch of runs, with a leading axis).

    Attributes
    ----------
    params : GMMParams
    lower_bound : scalar
        Lower bound at the last iteration (scikit-learn's ``lower_bound_``).
    n_iter : int scalar
    converged : bool scalar
        True only when the change fell below ``tol`` with finite values.
    lower_bounds : array of shape (trace_len,)
        Lower bound per iteration, NaN past ``n_iter``.
    """

    params: GMMParams
    lower_bound: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    lower_bounds: jax.Array


def _all_finite(params: GMMParams) -> jax.Array:
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(params)]))


def run_em(X, sample_weight, params: GMMParams, tol, reg_covar, max_iter, mask, initial_lower_bound,
           trace_len: int, mesh: Mesh | None = None, model_index=0, prior=None, missing: bool = False) -> EMResult:
    """Iterate :func:`em_step` in one ``lax.while_loop`` until ``|change| < tol``, NaN, or ``max_iter``."""
    dtype = params.means.dtype

    def cond(state: EMResult):
        running = (state.n_iter < max_iter) & ~state.converged
        return running & ~jnp.isnan(state.lower_bound) & (state.lower_bound < jnp.inf)

    def body(state: EMResult):
        new_params, lower_bound = em_step(X, sample_weight, state.params, reg_covar, mask, mesh, model_index, prior,
                                          missing)
        finite = jnp.isfinite(lower_bound) & _all_finite(new_params)
        converged = (jnp.abs(lower_bound - state.lower_bound) < tol) & finite
        return EMResult(
            params=new_params,
            lower_bound=jnp.where(finite, lower_bound, jnp.nan),
            n_iter=state.n_iter + 1,
            converged=converged,
            lower_bounds=state.lower_bounds.at[state.n_iter].set(lower_bound, mode="drop"),
        )

    start = EMResult(
        params=params,
        lower_bound=jnp.asarray(initial_lower_bound, dtype),
        n_iter=jnp.zeros((), jnp.int32),
        converged=jnp.zeros((), bool),
        lower_bounds=jnp.full(trace_len, jnp.nan, dtype),
    )
    return jax.lax.while_loop(cond, body, start)


def degenerate(params: GMMParams, mask: jax.Array, total_weight, data_var: jax.Array, model_index=0,
               count_points: bool = True) -> jax.Array:
    """True when a component that exists has collapsed: its variance along some direction is below
    :data:`COLLAPSE_RATIO` of the data's (``data_var``, shape (D,)), or (with ``count_points``; not
    under a prior, which defines every component's covariance) its effective number of points
    ``weight * total_weight`` is below what its model needs
    (:meth:`~bayesgmm.covariance.CovarianceModel.min_points`)."""
    model = get_model(params.covariance_type)
    d = params.means.shape[-1]
    largest = model.form.standardised_precision_max(params.precisions_cholesky, data_var)
    collapsed = ~(largest * COLLAPSE_RATIO < 1.0)  # NaN counts as collapsed
    few = params.weights * total_weight < model.min_points_at(d, model_index) * (1 - 1e-6)
    few = few & count_points
    return jnp.any((collapsed | few) & mask)


def best_run(results: EMResult, sound: jax.Array | None = None) -> EMResult:
    """The run with the largest finite lower bound from a batch (first one on ties, as scikit-learn);
    with ``sound`` (bool per run), the best sound run when there is one."""
    finite = jnp.isfinite(results.lower_bound) & jax.vmap(_all_finite)(results.params)
    if sound is not None:
        finite = jnp.where(jnp.any(finite & sound), finite & sound, finite)
    best = jnp.argmax(jnp.where(finite, results.lower_bound, -jnp.inf))
    return jax.tree_util.tree_map(lambda leaf: leaf[best], results)


def fit(key: jax.Array, X: jax.Array, sample_weight: jax.Array, mask: jax.Array, tol, reg_covar, max_iter,
        initial_lower_bound, init: dict, *, covariance_type, init_method, n_init: int, trace_len: int,
        mesh: Mesh | None = None, model_index=0, init_labels: jax.Array | None = None,
        data_var: jax.Array | None = None, prior=None, noise_log_density: jax.Array | None = None,
        noise_init: jax.Array | None = None, missing: bool = False) -> tuple[EMResult, jax.Array]:
    """Initialise ``n_init`` times and run EM on all restarts at once (vmap); keep the best.

    Parameters
    ----------
    key : PRNG key
    X : array of shape (n_chunks, chunk_size, D)
    sample_weight : array of shape (n_chunks, chunk_size)
        Zero for padding rows.
    mask : bool array of shape (K,)
    tol, reg_covar, max_iter, initial_lower_bound : scalars (traced: changing them does not recompile)
    init : dict
        Optional ``weights``, ``means``, ``precisions_cholesky`` that replace the initial estimates,
        as scikit-learn's ``*_init`` arguments do. When all three are given and ``init_method`` is
        None, they are the starting point (warm start).
    covariance_type, init_method, n_init, trace_len : static
        ``init_method="hc"`` starts the first restart from ``init_labels`` and the others from k-means.
    mesh : jax.sharding.Mesh, optional (static)
        Shard the data passes across devices (see :func:`em_step`); X must be split along its
        first axis over the mesh's "data" axis.
    model_index : int, optional
        Which model of a tuple ``covariance_type`` (traced).
    init_labels : int array of shape (n_chunks, chunk_size), optional
        Initial labels for ``init_method="hc"`` (-1: the row takes no part in the first M-step).
    data_var : array of shape (D,), optional
        Per-feature variance of the data: when given, restarts that end :func:`degenerate` lose to
        any restart that does not.
    prior : ConjugatePrior, optional
        MAP-EM under mclust's conjugate prior (:mod:`bayesgmm.prior`); ``reg_covar`` is then unused.
    noise_log_density : scalar array, optional
        log(1 / V): adds mclust's uniform noise component of density 1 / V (traced; whether it is
        given is static). Its weight starts at the share of ``noise_init``, else :data:`NOISE_START`
        (or at ``init["noise_weight"]`` when that is given), the Gaussian weights scaled to the rest.
    noise_init : bool or float array of shape (n_chunks, chunk_size), optional
        Initial noise rows (mclust's ``initialization=list(noise=...)``): the Gaussian components are
        initialised on the other rows (their labels in ``init_labels`` should be -1).
    missing : bool, optional (static)
        X has NaN where values are missing (never in a whole row): the initialisations and the first
        M-step see X with each NaN replaced by its feature's weighted mean
        (:func:`bayesgmm.missing.impute_column_means`), EM the real data (:mod:`bayesgmm.missing`).

    Returns
    -------
    best : EMResult
        The chosen restart.
    lower_bounds : array of shape (n_init,)
        Final lower bound of every restart.
    """
    # the Gaussian components start from the rows outside the initial noise
    init_weight = sample_weight if noise_init is None else sample_weight * (1 - jnp.asarray(noise_init, X.dtype))
    X_start = marginal.impute_column_means(X, sample_weight) if missing else X  # what the starts see

    def one_restart(key, first):
        if init_method is None:
            params = GMMParams(init["weights"], init["means"], init["precisions_cholesky"], covariance_type)
        else:
            if init_method == "hc":
                given = label_responsibilities(init_labels, init_weight, mask)
                if n_init == 1:
                    resp_of_chunk = given
                else:
                    others = initial_responsibilities(key, X_start, init_weight, mask, "kmeans")
                    resp_of_chunk = lambda i: jnp.where(first, given(i), others(i))  # noqa: E731
            else:
                resp_of_chunk = initial_responsibilities(key, X_start, init_weight, mask, init_method)
            params = m_step(X_start, resp_of_chunk, reg_covar, covariance_type, mask, model_index, prior, init_weight)
            params = params.replace(**{name: value for name, value in init.items()
                                       if value is not None and name != "noise_weight"})
        if noise_log_density is not None:
            params = _with_noise(params, init.get("noise_weight"), noise_log_density, sample_weight, noise_init)
        return run_em(X, sample_weight, params, tol, reg_covar, max_iter, mask, initial_lower_bound, trace_len, mesh,
                      model_index, prior, missing)

    results = jax.vmap(one_restart)(jax.random.split(key, n_init), jnp.arange(n_init) == 0)
    sound = None
    if data_var is not None:
        total_weight = jnp.sum(sample_weight)
        sound = ~jax.vmap(lambda p: degenerate(p, mask, total_weight, data_var, model_index, prior is None))(
            results.params)
    return best_run(results, sound), results.lower_bound


def _with_noise(params: GMMParams, noise_weight, noise_log_density, sample_weight, noise_init) -> GMMParams:
    """``params`` with the noise component added: its weight ``noise_weight`` when given (a warm start,
    whose Gaussian weights already leave room for it), else the weighted share of ``noise_init`` (as
    mclust's M-step from the initial noise labels) or :data:`NOISE_START`, with the Gaussian weights
    scaled to the rest."""
    dtype = params.means.dtype
    log_density = jnp.asarray(noise_log_density, dtype)
    if noise_weight is not None:
        return params.replace(noise_weight=jnp.asarray(noise_weight, dtype), noise_log_density=log_density)
    if noise_init is None:
        share = jnp.asarray(NOISE_START, dtype)
    else:
        share = jnp.sum(sample_weight * jnp.asarray(noise_init, dtype)) / jnp.sum(sample_weight)
    return params.replace(weights=params.weights * (1 - share), noise_weight=share, noise_log_density=log_density)


fit_jit = jax.jit(fit, static_argnames=("covariance_type", "init_method", "n_init", "trace_len", "mesh", "missing"))


class StreamState(NamedTuple):
    """Running sufficient statistics of stepwise EM, per unit of sample weight.

    Attributes
    ----------
    nk : array of shape (K,)
        Running expected share of each component.
    scatter : array
        Running scatter about the current means (K, D, D) for full and tied, (K, D) otherwise.
    n_steps : int scalar
    """

    nk: jax.Array
    scatter: jax.Array
    n_steps: jax.Array


@functools.partial(jax.jit, static_argnames="missing")
def stepwise_em_step(X: jax.Array, sample_weight: jax.Array, params: GMMParams, state: StreamState,
                     step_size, reg_covar, missing: bool = False) -> tuple[GMMParams, StreamState, jax.Array]:
    """One stepwise (online) EM update from a mini-batch (Cappe and Moulines 2009).

    The running statistics s move towards the mini-batch's statistics, ``s <- (1 - g) s + g s_batch``,
    then the M-step maps them to parameters. With ``step_size = 1`` this is one batch EM step on the
    mini-batch. The statistics are kept about the current means, so no E[xx^T] cancellation builds up.

    Parameters
    ----------
    X : array of shape (n_chunks, chunk_size, D)
    sample_weight : array of shape (n_chunks, chunk_size)
    params : GMMParams
    state : StreamState
    step_size : float in (0, 1]
    reg_covar : float
    missing : bool, optional (static)
        X has NaN where values are missing (:mod:`bayesgmm.missing`).

    Returns
    -------
    params, state, lower_bound
        The new parameters and running statistics, and the mini-batch's mean log-likelihood under
        the old parameters.

    References
    ----------
    Cappe, O. and Moulines, E. (2009). On-line expectation-maximization algorithm for latent data
    models. JRSS B 71(3), 593-613.
    """
    ct = params.covariance_type
    total, total_weight, nk, sum_diff, scatter = pass_statistics(X, sample_weight, params, missing)
    g = step_size
    nk = (1 - g) * state.nk + g * nk / total_weight
    sum_diff = g * sum_diff / total_weight  # the running statistics have no offset about the current means
    scatter = (1 - g) * state.scatter + g * scatter / total_weight
    new_params = _params_from_statistics(nk, sum_diff, scatter, params.means, reg_covar,
                                         jnp.ones(nk.shape[0], bool), ct, 0, params.precisions_cholesky)
    _, _, centered = _recenter(nk, sum_diff, scatter, ct)
    return new_params, StreamState(nk, centered, state.n_steps + 1), total / total_weight
