"""Per-covariance-type kernels: Gaussian log densities, statistics, and conversions.

Every function dispatches on the static ``covariance_type`` and works on the precision-Cholesky
form ``P`` (``precision = P @ P.T``). No explicit inverses: log-determinants come from the diagonal
of ``P`` and covariances from triangular solves.

References
----------
Bishop, C. M. (2006). Pattern Recognition and Machine Learning, ch. 9.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from bayesgmm.params import CovarianceType


def n_parameters(covariance_type: CovarianceType, n_components: int, n_features: int) -> int:
    """Number of free parameters of a mixture (weights, means and covariances), as in scikit-learn."""
    k, d = n_components, n_features
    cov = {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": k * d, "spherical": k}
    return cov[covariance_type] + k * d + k - 1


def log_det_cholesky(precisions_cholesky: jax.Array, covariance_type: CovarianceType, n_features: int) -> jax.Array:
    """log det(P) per component: shape (n_components,), or () for tied."""
    p = precisions_cholesky
    if covariance_type == "full":
        return jnp.sum(jnp.log(jnp.abs(jnp.diagonal(p, axis1=-2, axis2=-1))), axis=-1)
    if covariance_type == "tied":
        return jnp.sum(jnp.log(jnp.abs(jnp.diagonal(p))))
    if covariance_type == "diag":
        return jnp.sum(jnp.log(p), axis=-1)
    return n_features * jnp.log(p)


def centered(X: jax.Array, means: jax.Array) -> jax.Array:
    """X - means per component: shape (n_components, n_samples, n_features)."""
    return X[None, :, :] - means[:, None, :]


def mahalanobis_sq(diff: jax.Array, precisions_cholesky: jax.Array, covariance_type: CovarianceType) -> jax.Array:
    """Squared Mahalanobis distances from ``diff`` of shape (K, N, D): shape (N, K)."""
    p = precisions_cholesky
    if covariance_type == "full":
        y = jnp.matmul(diff, p)  # (K, N, D)
    elif covariance_type == "tied":
        y = jnp.matmul(diff, p[None])
    elif covariance_type == "diag":
        y = diff * p[:, None, :]
    else:
        y = diff * p[:, None, None]
    return jnp.sum(y * y, axis=-1).T


def log_gaussian_prob(X: jax.Array, means: jax.Array, precisions_cholesky: jax.Array,
                      covariance_type: CovarianceType) -> jax.Array:
    """log N(x_n | mu_k, Sigma_k) for X of shape (N, D): shape (N, K)."""
    d = X.shape[-1]
    maha = mahalanobis_sq(centered(X, means), precisions_cholesky, covariance_type)
    log_det = log_det_cholesky(precisions_cholesky, covariance_type, d)
    return -0.5 * (d * math.log(2 * math.pi) + maha) + log_det


def scatter(diff: jax.Array, resp: jax.Array, covariance_type: CovarianceType) -> jax.Array:
    """Weighted scatter about the shift used in ``diff``.

    Parameters
    ----------
    diff : array of shape (K, N, D)
        Data minus a per-component shift.
    resp : array of shape (N, K)
        Responsibilities times sample weights.

    Returns
    -------
    array
        sum_n r_nk diff diff^T: full and tied (K, D, D); diag and spherical (K, D) (the diagonal only).
    """
    weighted = diff * resp.T[:, :, None]
    if covariance_type in ("full", "tied"):
        return jnp.matmul(jnp.swapaxes(weighted, -1, -2), diff)
    return jnp.sum(weighted * diff, axis=1)


def covariances_from_scatter(nk: jax.Array, centered_scatter: jax.Array, reg_covar: jax.Array,
                             covariance_type: CovarianceType) -> jax.Array:
    """Covariances (scikit-learn shapes) from per-component scatter about the component means."""
    d = centered_scatter.shape[-1]
    if covariance_type == "full":
        return centered_scatter / nk[:, None, None] + reg_covar * jnp.eye(d, dtype=nk.dtype)
    if covariance_type == "tied":
        return jnp.sum(centered_scatter, axis=0) / jnp.sum(nk) + reg_covar * jnp.eye(d, dtype=nk.dtype)
    diag = centered_scatter / nk[:, None] + reg_covar
    if covariance_type == "diag":
        return diag
    return jnp.mean(diag, axis=-1)


def precisions_cholesky_from_covariances(covariances: jax.Array, covariance_type: CovarianceType) -> jax.Array:
    """P = inv(chol(Sigma)).T, upper triangular for full and tied; 1/sqrt(Sigma) otherwise.

    A covariance that is not positive definite gives NaN (checked by the caller), never an exception
    inside compiled code.
    """
    if covariance_type in ("full", "tied"):
        chol = jnp.linalg.cholesky(covariances)
        eye = jnp.broadcast_to(jnp.eye(covariances.shape[-1], dtype=covariances.dtype), covariances.shape)
        return jnp.swapaxes(solve_triangular(chol, eye, lower=True), -1, -2)
    return jax.lax.rsqrt(covariances)


def covariances_from_precisions_cholesky(precisions_cholesky: jax.Array, covariance_type: CovarianceType) -> jax.Array:
    """Sigma = inv(P @ P.T), through the Cholesky factor of the precision and triangular solves.

    Works whether ``P`` is upper (from the M-step) or lower triangular (from ``precisions_init``).
    """
    p = precisions_cholesky
    if covariance_type in ("full", "tied"):
        chol = jnp.linalg.cholesky(precisions_from_precisions_cholesky(p, covariance_type))
        eye = jnp.broadcast_to(jnp.eye(p.shape[-1], dtype=p.dtype), p.shape)
        inv_chol = solve_triangular(chol, eye, lower=True)  # L^-1, Sigma = L^-T L^-1
        return jnp.matmul(jnp.swapaxes(inv_chol, -1, -2), inv_chol)
    return 1.0 / (p * p)


def precisions_from_precisions_cholesky(precisions_cholesky: jax.Array, covariance_type: CovarianceType) -> jax.Array:
    """Precision matrices P @ P.T (full, tied) or P**2 (diag, spherical)."""
    p = precisions_cholesky
    if covariance_type in ("full", "tied"):
        return jnp.matmul(p, jnp.swapaxes(p, -1, -2))
    return p * p
