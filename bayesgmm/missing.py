"""Missing values (NaN) marginalised exactly, missing at random: the E-step on each row's observed
coordinates and the M-step's conditional moments of its missing ones (Ghahramani and Jordan 1994).

A row ``x`` with observed coordinates ``o`` (a 0/1 mask) has, under component k, the density of its
observed part, ``N(x_o | mu_o, Sigma_oo)``. Rows have different patterns ``o``, and looping over the
patterns would be a Python loop over data, so every (row, component) pair gets one D x D matrix,

    A = o o^T * Sigma + diag(1 - o),

which after a permutation is block-diagonal with blocks ``Sigma_oo`` and an identity. Its Cholesky
factor ``L`` is block-diagonal too (the zeros of ``A`` stay zeros), so with ``diff = o * (x - mu)``:

* ``log det A = log det Sigma_oo`` and ``|L^-1 diff|^2 = (x_o - mu_o)^T Sigma_oo^-1 (x_o - mu_o)``:
  the marginal density, normalised by the row's number of observed coordinates;
* ``z = A^-1 diff`` is ``Sigma_oo^-1 (x_o - mu_o)`` on ``o`` and 0 elsewhere, so the conditional mean
  of the missing coordinates is ``mu_m + (Sigma z)_m``;
* with ``B = L^-1 (o * Sigma)`` (the rows of ``Sigma`` in ``o``), ``B^T B = Sigma_.o Sigma_oo^-1
  Sigma_o.``, so the conditional covariance of the missing block is ``(Sigma - B^T B)_mm``.

The M-step statistics are then those of complete data in expectation: ``x_hat - mu`` in place of
``x - mu`` and ``(x_hat - mu)(x_hat - mu)^T + C`` in place of the outer product (``C``, the
conditional covariance, zero outside the missing block), so every covariance model's M-step
(:meth:`bayesgmm.covariance.CovarianceModel.covariances_from_scatter`) and the MAP M-step work
unchanged. The axis-aligned forms (diag, spherical) need no factorisation: the marginal keeps the
observed variances, the conditional mean of a missing coordinate is its mean and its conditional
variance its variance.

Work space per chunk is O(chunk x K x D x D) (never N x K x D x D). Whether X has NaN at all is
decided on the host, once: NaN-free data never take these kernels.

References
----------
Ghahramani, Z. and Jordan, M. I. (1994). Supervised learning from incomplete data via an EM
approach. Advances in Neural Information Processing Systems 6.
Little, R. J. A. and Rubin, D. B. (2002). Statistical Analysis with Missing Data, 2nd ed., ch. 8 and 11.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from bayesgmm.covariance import Form, form_of

_LOG_2PI = math.log(2 * math.pi)

def split_observed(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``x`` (..., D) with NaN replaced by 0, and the mask of its observed entries as 0/1 floats of
    ``x``'s dtype."""
    observed = ~jnp.isnan(x)
    return jnp.where(observed, x, jnp.zeros((), x.dtype)), observed.astype(x.dtype)


def kernel_covariances(form: Form, covariances: jax.Array, k: int, d: int) -> jax.Array:
    """Covariances of ``form``'s shape in the layout :func:`marginal_log_gaussian` takes: (K, D, D)
    matrices for full, (1, D, D) for tied (shared by every component), and the (K, D) variances for
    the axis-aligned forms (diag, spherical)."""
    if form.matrix:
        return covariances if form.per_component else covariances[None]
    return jnp.diagonal(form.full(covariances, k, d), axis1=-2, axis2=-1)


def marginal_log_gaussian(x: jax.Array, observed: jax.Array, means: jax.Array, covariances: jax.Array,
                          moments: bool = False):
    """log N(x_o | mu_o, Sigma_oo) of rows with missing coordinates, for every component.

    Parameters
    ----------
    x : array of shape (C, D)
        Rows with their missing entries set to 0 (:func:`split_observed`).
    observed : array of shape (C, D)
        1.0 where observed, 0.0 where missing (every row has at least one observed entry).
    means : array of shape (K, D)
    covariances : array of shape (K, D, D), (1, D, D) or (K, D)
        :func:`kernel_covariances`: matrices, or per-feature variances for the axis-aligned forms.
    moments : bool, static
        Also return the conditional moments the M-step needs.

    Returns
    -------
    log_prob : array of shape (C, K)
    expected : array of shape (C, K, D), with ``moments``
        ``E[x | x_o, k] - mu_k``: ``x - mu_k`` on the observed coordinates, the conditional mean
        less ``mu_k`` on the missing ones.
    conditional : array, with ``moments``
        ``Cov[x | x_o, k]``, zero outside the missing block: (C, K', D, D) for matrices (K' = 1 for
        tied), its diagonal (C, K, D) for variances.
    """
    missing = 1 - observed
    diff = observed[:, None, :] * (x[:, None, :] - means[None])  # (C, K, D)
    const = -0.5 * jnp.sum(observed, axis=-1)[:, None] * _LOG_2PI
    if covariances.ndim == 2:  # per-feature variances: the marginal drops the missing coordinates
        variances = covariances[None]
        log_prob = const - 0.5 * (jnp.sum(diff * diff / variances, axis=-1)
                                  + jnp.sum(observed[:, None, :] * jnp.log(variances), axis=-1))
        if not moments:
            return log_prob
        return log_prob, diff, missing[:, None, :] * variances
    log_prob, expected, conditional = _factorised(x, observed, means, covariances, moments)
    if not moments:
        return log_prob.T
    return log_prob.T, expected.transpose(2, 1, 0), conditional.transpose(3, 2, 0, 1)


def _factorised(x, observed, means, covariances, moments):
    """The matrix case of :func:`marginal_log_gaussian`, feature-major: the Cholesky factor of A and
    the triangular solves column by column in ``fori_loop``s over the D features, each step an
    elementwise operation on (D, K', C) arrays along the chunk's rows (the arithmetic of batched
    routines without a call per small matrix, and a program whose size does not grow with D).

    Returns log_prob (K, C) and, with ``moments`` (else None), ``expected`` (D, K, C) and
    ``conditional`` (D, D, K', C).
    """
    d = x.shape[1]
    dtype = x.dtype
    idx = jnp.arange(d)
    o = observed.T[:, None, :]  # (D, 1, C)
    m = 1 - o
    S = jnp.moveaxis(covariances, 0, -1)[..., None]  # (D, D, K', 1)
    r = o * (x.T[:, None, :] - means.T[:, :, None])  # (D, K, C)
    A = o[:, None] * o[None] * S + jnp.eye(d, dtype=dtype)[:, :, None, None] * m[None]  # (D, D, K', C)

    def is_(i, ndim):
        return (idx == i).reshape((d,) + (1,) * (ndim - 1))

    def cholesky_column(j, L):  # column j of L from A and the columns before it (the others are 0)
        row = L[j]  # (D, K', C)
        pivot = jnp.sqrt(A[j, j] - jnp.sum(row * row, axis=0))
        column = (A[:, j] - jnp.sum(L * row[None], axis=1)) / pivot
        column = jnp.where((idx > j)[:, None, None], column, 0.0)
        column = jnp.where(is_(j, 3), pivot[None], column)
        return jnp.where(is_(j, 4).reshape(1, d, 1, 1), column[:, None], L)

    L = jax.lax.fori_loop(0, d, cholesky_column, jnp.zeros(A.shape, dtype))
    diagonal = L[idx, idx]  # (D, K', C)

    def forward(i, y):  # y = L^-1 r, entry by entry
        value = (r[i] - jnp.sum(L[i] * y, axis=0)) / diagonal[i]
        return jnp.where(is_(i, 3), value[None], y)

    y = jax.lax.fori_loop(0, d, forward, jnp.zeros(r.shape, dtype))
    log_det = 2 * jnp.sum(jnp.log(diagonal), axis=0)
    log_prob = -0.5 * (jnp.sum(o, axis=0) * _LOG_2PI + jnp.sum(y * y, axis=0) + log_det)
    if not moments:
        return log_prob, None, None

    def backward(t, z):  # z = L^-T y = A^-1 diff
        i = d - 1 - t
        value = (y[i] - jnp.sum(L[:, i] * z, axis=0)) / diagonal[i]
        return jnp.where(is_(i, 3), value[None], z)

    z = jax.lax.fori_loop(0, d, backward, jnp.zeros(r.shape, dtype))
    expected = r + m * jnp.sum(S * z[None], axis=1)
    rhs = o[:, None] * S  # rows of Sigma in o: (D, D, K', C)

    def forward_rows(i, B):  # B = L^-1 (o * Sigma), row by row
        value = (rhs[i] - jnp.sum(L[i][:, None] * B, axis=0)) / diagonal[i][None]
        return jnp.where(is_(i, 4), value[None], B)

    B = jax.lax.fori_loop(0, d, forward_rows, jnp.zeros(jnp.broadcast_shapes(rhs.shape, L.shape), dtype))
    explained = jax.lax.fori_loop(0, d, lambda p, total: total + B[p][:, None] * B[p][None], jnp.zeros_like(B))
    conditional = m[:, None] * m[None] * (S - explained)  # Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om
    return log_prob, expected, conditional


def log_gaussian_prob(X: jax.Array, means: jax.Array, precisions_cholesky: jax.Array, covariance_type) -> jax.Array:
    """:func:`bayesgmm.covariance.log_gaussian_prob` for X of shape (N, D) with NaN where values are
    missing: log N(x_o | mu_k, Sigma_k) over each row's observed coordinates, shape (N, K).

    Examples
    --------
    A row whose second value is missing has the density of its first value under the first
    coordinate's marginal, N(0 | 0, 4):

    >>> import jax.numpy as jnp
    >>> from bayesgmm.covariance import precisions_cholesky_from_covariances
    >>> p = precisions_cholesky_from_covariances(jnp.array([[[4.0, 1.0], [1.0, 1.0]]]), "full")
    >>> X = jnp.array([[0.0, jnp.nan]])
    >>> round(float(log_gaussian_prob(X, jnp.zeros((1, 2)), p, "full")[0, 0]), 4)  # -log(2 sqrt(2 pi))
    -1.6121
    """
    form = form_of(covariance_type)
    k, d = means.shape
    covariances = kernel_covariances(form, form.covariances(precisions_cholesky), k, d)
    return marginal_log_gaussian(*split_observed(X), means, covariances)


def chunk_statistics(x: jax.Array, w: jax.Array, means: jax.Array, log_weights: jax.Array,
                     covariances: jax.Array, matrix: bool) -> tuple[jax.Array, ...]:
    """The EM pass's per-chunk statistics for rows with NaN entries.

    Parameters
    ----------
    x : array of shape (C, D), NaN where missing
    w : array of shape (C,)
        Sample weights (0 for padding rows).
    means : array of shape (K, D)
        The current means ``m``.
    log_weights : array of shape (K,)
    covariances : array
        The current covariances (:func:`kernel_covariances`).
    matrix : bool, static
        Whether the scatter is (K, D, D) (the matrix forms) or its diagonal (K, D).

    Returns
    -------
    (sum w log p(x_o), n_k, sum r (x_hat - m), scatter about m)
        As :func:`bayesgmm.em.pass_statistics` accumulates them, with the conditional expectations
        of the missing coordinates and, in the scatter, their conditional covariances.
    """
    x0, observed = split_observed(x)
    if matrix:
        return _factorised_statistics(x0, observed, w, means, log_weights, covariances)
    log_gauss, expected, conditional = marginal_log_gaussian(x0, observed, means, covariances, moments=True)
    wlp = log_gauss + log_weights
    log_prob = logsumexp(wlp, axis=1)
    resp = jnp.exp(wlp - log_prob[:, None]) * w[:, None]  # (C, K)
    total = jnp.sum(jnp.where(w > 0, w * log_prob, 0.0))
    sum_diff = jnp.einsum("ck,ckd->kd", resp, expected)
    scatter = jnp.einsum("ck,ckd->kd", resp, expected * expected + conditional)  # the diagonal forms
    return total, jnp.sum(resp, axis=0), sum_diff, scatter


def _factorised_statistics(x, observed, w, means, log_weights, covariances):
    """:func:`chunk_statistics` for the matrix forms from :func:`_factorised`, feature-major: every
    sum runs along the chunk's rows, and no (C, K, D, D) array is formed."""
    log_gauss, expected, conditional = _factorised(x, observed, means, covariances, True)
    wlp = log_gauss + log_weights[:, None]  # (K, C)
    top = jnp.max(wlp, axis=0)
    unnormalised = jnp.exp(wlp - top)
    norm = jnp.sum(unnormalised, axis=0)
    resp = unnormalised * (w / norm)
    total = jnp.sum(jnp.where(w > 0, w * (top + jnp.log(norm)), 0.0))
    weighted = resp * expected  # (D, K, C)
    sum_diff = jnp.sum(weighted, axis=-1).T  # (K, D)
    scatter = jnp.einsum("ikc,jkc->kij", weighted, expected)
    if conditional.shape[2] == 1:  # tied: one conditional covariance per row
        return total, jnp.sum(resp, axis=-1), sum_diff, scatter + jnp.einsum("kc,ijc->kij", resp, conditional[:, :, 0])
    return total, jnp.sum(resp, axis=-1), sum_diff, scatter + jnp.einsum("kc,ijkc->kij", resp, conditional)
    return total, jnp.sum(resp, axis=-1), sum_diff, scatter


def column_means(X: jax.Array, sample_weight: jax.Array) -> jax.Array:
    """Weighted mean of each feature over its observed entries, for chunked X (n_chunks, chunk, D)
    with NaN where missing: shape (D,)."""
    x0, observed = split_observed(X)
    weight = observed * sample_weight[..., None]
    return jnp.sum(weight * x0, axis=(0, 1)) / jnp.sum(weight, axis=(0, 1))


def impute_column_means(X: jax.Array, sample_weight: jax.Array) -> jax.Array:
    """X with each NaN replaced by its feature's weighted mean (:func:`column_means`): what the
    initialisations (k-means, random, the first M-step) see; EM itself uses the real data."""
    return jnp.where(jnp.isnan(X), column_means(X, sample_weight), X)
