"""Covariance models: the one home of everything that depends on the covariance structure.

A mixture's covariances follow one of mclust's 14 parsimonious models, from the eigen-decomposition
``Sigma_k = lambda_k D_k A_k D_k^T`` (volume ``lambda_k``, shape ``A_k`` diagonal with det 1,
orientation ``D_k`` orthogonal), each part Equal or Variable across components, I for identity;
E and V are the two models of one feature. scikit-learn's four types are four of them:
spherical = VII, diag = VVI, tied = EEE, full = VVV.

Two objects carry the math:

* a :class:`Form` is how the Cholesky factor of the precision ``P`` (``precision = P @ P.T``) is
  stored: ``full`` (K, D, D), ``tied`` (D, D), ``diag`` (K, D) or ``spherical`` (K,), scikit-learn's
  shapes. It owns log-determinants, Mahalanobis terms, the scatter statistics an E-step pass
  accumulates, and conversions between precision-Cholesky, covariance, covariance-factor and full
  (K, D, D) matrices.
* a :class:`CovarianceModel` is one member of the family. It names its form, and owns its M-step
  (covariances from weighted scatter matrices), its number of free parameters, the number of points
  a component needs, and its decomposition into volumes, shapes and orientations.

Every other module asks :func:`get_model` and never branches on a model's name. No explicit
inverses: log-determinants come from the diagonal of ``P``, covariances from triangular solves.

References
----------
Banfield, J. D. and Raftery, A. E. (1993). Model-based Gaussian and non-Gaussian clustering.
Biometrics 49(3).
Celeux, G. and Govaert, G. (1995). Gaussian parsimonious clustering models. Pattern Recognition 28(5).
Browne, R. P. and McNicholas, P. D. (2014). Estimating common principal components in high
dimensions. Advances in Data Analysis and Classification 8(2).
Bishop, C. M. (2006). Pattern Recognition and Machine Learning, ch. 9.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

CovarianceType = Literal[
    "full", "tied", "diag", "spherical",
    "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV", "E", "V",
]
#: scikit-learn's four names, each an alias of an mclust model.
SKLEARN_TYPES: tuple[str, ...] = ("full", "tied", "diag", "spherical")
#: mclust's 14 multivariate models, in mclust's order.
MCLUST_MODELS: tuple[str, ...] = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV",
                                  "EVV", "VVV")
#: mclust's models of one feature.
UNIVARIATE_MODELS: tuple[str, ...] = ("E", "V")
SKLEARN_ALIASES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
#: Every accepted name.
COVARIANCE_NAMES: tuple[str, ...] = SKLEARN_TYPES + MCLUST_MODELS + UNIVARIATE_MODELS

#: Cap on the inner iterations of the M-steps without a closed form, from a cold start (a single
#: M-step, or EM's first), and from the previous EM iterate. Each inner step increases the M-step's
#: objective, so EM stays monotone when the cap stops the inner iterations early (a generalised EM
#: step), and the inner problem converges along with EM's iterations.
INNER_MAX_ITER = 1000
INNER_WARM_MAX_ITER = 10


# ---------------------------------------------------------------------------------------------- forms

class Form:
    """How the precision-Cholesky factor ``P`` of every component is stored (see the module doc)."""

    name: str
    #: The stored factor is a D x D matrix (full, tied): scatter statistics are then (K, D, D).
    matrix: bool
    #: Each component has its own stored factor (False for tied).
    per_component: bool
    #: One variance per component (spherical).
    isotropic: bool = False
    #: Names of the axes of the covariances (for labelled arrays, e.g. ArviZ).
    covariance_dims: tuple[str, ...]

    def chol_shape(self, k: int, d: int) -> tuple[int, ...]:
        raise NotImplementedError

    def scatter_shape(self, k: int, d: int) -> tuple[int, ...]:
        """Shape of the scatter statistics an E-step pass accumulates for this form."""
        return (k, d, d) if self.matrix else (k, d)

    def log_det(self, p: jax.Array, d: int) -> jax.Array:
        """log det(P) per component: shape (K,), or () for tied."""
        raise NotImplementedError

    def whiten(self, diff: jax.Array, p: jax.Array) -> jax.Array:
        """``diff`` (K, N, D) times P: the squared norm over D is the Mahalanobis distance."""
        raise NotImplementedError

    def whiten_feature_major(self, diff: list[jax.Array], p: jax.Array) -> list[jax.Array]:
        """The same for feature-major ``diff`` (a list of D arrays of shape (K, C)), unrolled over D."""
        raise NotImplementedError

    def scatter(self, diff: jax.Array, resp: jax.Array) -> jax.Array:
        """sum_n r_nk diff diff^T for ``diff`` (K, N, D) and ``resp`` (N, K): :meth:`scatter_shape`."""
        weighted = diff * resp.T[:, :, None]
        if self.matrix:
            return jnp.matmul(jnp.swapaxes(weighted, -1, -2), diff)
        return jnp.sum(weighted * diff, axis=1)

    def scatter_feature_major(self, weighted: jax.Array, diff: jax.Array) -> jax.Array:
        """The same from feature-major ``weighted = diff * resp`` and ``diff``, both (D, K, C)."""
        d = diff.shape[0]
        if self.matrix:
            rows = [[jnp.sum(weighted[i] * diff[j], axis=-1) for j in range(d)] for i in range(d)]
            return jnp.stack([jnp.stack(row, axis=-1) for row in rows], axis=1)  # (K, D, D)
        return jnp.sum(weighted * diff, axis=-1).T  # (K, D)

    def precisions_cholesky(self, covariances: jax.Array) -> jax.Array:
        """P from covariances of this form's shape; NaN (never an exception) when not positive definite."""
        raise NotImplementedError

    def covariances(self, p: jax.Array) -> jax.Array:
        """Sigma = inv(P P^T), through triangular solves (P upper or lower triangular)."""
        raise NotImplementedError

    def precisions(self, p: jax.Array) -> jax.Array:
        raise NotImplementedError

    def full(self, covariances, k: int, d: int):
        """Covariances of this form as (..., K, D, D) matrices (any leading axes; numpy or JAX)."""
        raise NotImplementedError

    def from_full(self, covariances):
        """The inverse of :meth:`full` for matrices that have this form's structure: (K, D, D) -> form."""
        raise NotImplementedError

    def cov_factor(self, covariances: jax.Array) -> jax.Array:
        """A square root of the covariances: lower Cholesky factor (full, tied) or standard deviations."""
        raise NotImplementedError

    def covariances_from_factor(self, factor: jax.Array) -> jax.Array:
        raise NotImplementedError

    def rescale_factor(self, factor: jax.Array, scale: jax.Array) -> jax.Array:
        """The covariance factor of ``diag(scale) Sigma diag(scale)`` (for spherical, ``scale`` must be
        one common value repeated)."""
        raise NotImplementedError

    def rescale_covariances(self, covariances, scale):
        """``diag(scale) Sigma diag(scale)`` in this form's shape (numpy or JAX; spherical uses scale[0])."""
        raise NotImplementedError

    def stddevs(self, factor: jax.Array, d: int) -> jax.Array:
        """Per-feature standard deviations (..., K, D) from the factor of an axis-aligned form."""
        raise NotImplementedError

    def standardised_precision_max(self, p: jax.Array, data_var: jax.Array) -> jax.Array:
        """Largest eigenvalue of S^1/2 Precision_k S^1/2, S = diag(data_var): shape (K,) or () for tied.

        Its inverse is the smallest variance of a component along any direction, in units of the data's.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Form({self.name!r})"


def _eye_like(x: jax.Array) -> jax.Array:
    return jnp.broadcast_to(jnp.eye(x.shape[-1], dtype=x.dtype), x.shape)


class _MatrixForm(Form):
    matrix = True

    def log_det(self, p, d):
        return jnp.sum(jnp.log(jnp.abs(jnp.diagonal(p, axis1=-2, axis2=-1))), axis=-1)

    def whiten_feature_major(self, diff, p):
        d = len(diff)
        if self.per_component:
            return [sum(diff[i] * p[:, i, j, None] for i in range(d)) for j in range(d)]
        return [sum(diff[i] * p[i, j] for i in range(d)) for j in range(d)]

    def precisions_cholesky(self, covariances):
        chol = jnp.linalg.cholesky(covariances)
        return jnp.swapaxes(solve_triangular(chol, _eye_like(covariances), lower=True), -1, -2)

    def covariances(self, p):
        chol = jnp.linalg.cholesky(self.precisions(p))
        inv_chol = solve_triangular(chol, _eye_like(p), lower=True)  # L^-1, Sigma = L^-T L^-1
        return jnp.matmul(jnp.swapaxes(inv_chol, -1, -2), inv_chol)

    def precisions(self, p):
        return jnp.matmul(p, jnp.swapaxes(p, -1, -2))

    def cov_factor(self, covariances):
        return jnp.linalg.cholesky(covariances)

    def covariances_from_factor(self, factor):
        return factor @ jnp.swapaxes(factor, -1, -2)

    def rescale_factor(self, factor, scale):
        return scale[:, None] * factor

    def rescale_covariances(self, covariances, scale):
        return covariances * (scale[:, None] * scale[None, :])

    def standardised_precision_max(self, p, data_var):
        scaled = jnp.sqrt(data_var)[:, None] * p  # S^1/2 P, so that S^1/2 Prec S^1/2 = (S^1/2 P)(S^1/2 P)^T
        return jnp.max(jnp.linalg.eigvalsh(scaled @ jnp.swapaxes(scaled, -1, -2)), axis=-1)


class _Full(_MatrixForm):
    name, per_component = "full", True
    covariance_dims = ("component", "feature", "feature_bis")

    def chol_shape(self, k, d):
        return (k, d, d)

    def whiten(self, diff, p):
        return jnp.matmul(diff, p)

    def full(self, covariances, k, d):
        return covariances

    def from_full(self, covariances):
        return covariances


class _Tied(_MatrixForm):
    name, per_component = "tied", False
    covariance_dims = ("feature", "feature_bis")

    def chol_shape(self, k, d):
        return (d, d)

    def whiten(self, diff, p):
        return jnp.matmul(diff, p[None])

    def full(self, covariances, k, d):
        xp = jnp if isinstance(covariances, jax.Array) else np
        c = xp.asarray(covariances)
        return xp.broadcast_to(c[..., None, :, :], c.shape[:-2] + (k, d, d))

    def from_full(self, covariances):
        return covariances[..., 0, :, :]


class _Diag(Form):
    name, matrix, per_component = "diag", False, True
    covariance_dims = ("component", "feature")

    def chol_shape(self, k, d):
        return (k, d)

    def log_det(self, p, d):
        return jnp.sum(jnp.log(p), axis=-1)

    def whiten(self, diff, p):
        return diff * p[:, None, :]

    def whiten_feature_major(self, diff, p):
        return [diff[j] * p[:, j, None] for j in range(len(diff))]

    def precisions_cholesky(self, covariances):
        return jax.lax.rsqrt(covariances)

    def covariances(self, p):
        return 1.0 / (p * p)

    def precisions(self, p):
        return p * p

    def full(self, covariances, k, d):
        xp = jnp if isinstance(covariances, jax.Array) else np
        c = xp.asarray(covariances)
        return c[..., :, None] * xp.eye(d, dtype=c.dtype)

    def from_full(self, covariances):
        return jnp.diagonal(covariances, axis1=-2, axis2=-1) if isinstance(covariances, jax.Array) else \
            np.diagonal(covariances, axis1=-2, axis2=-1).copy()

    def cov_factor(self, covariances):
        return jnp.sqrt(covariances)

    def covariances_from_factor(self, factor):
        return factor**2

    def rescale_factor(self, factor, scale):
        return scale * factor

    def rescale_covariances(self, covariances, scale):
        return covariances * scale**2

    def stddevs(self, factor, d):
        return factor

    def standardised_precision_max(self, p, data_var):
        return jnp.max(p * p * data_var, axis=-1)


class _Spherical(_Diag):
    name, isotropic = "spherical", True
    covariance_dims = ("component",)

    def chol_shape(self, k, d):
        return (k,)

    def log_det(self, p, d):
        return d * jnp.log(p)

    def whiten(self, diff, p):
        return diff * p[:, None, None]

    def whiten_feature_major(self, diff, p):
        return [diff[j] * p[:, None] for j in range(len(diff))]

    def full(self, covariances, k, d):
        xp = jnp if isinstance(covariances, jax.Array) else np
        c = xp.asarray(covariances)
        return c[..., None, None] * xp.eye(d, dtype=c.dtype)

    def from_full(self, covariances):
        return super().from_full(covariances)[..., 0]

    def rescale_factor(self, factor, scale):
        return scale[0] * factor

    def rescale_covariances(self, covariances, scale):
        return covariances * scale[0] ** 2

    def stddevs(self, factor, d):
        return factor[..., None] * jnp.ones(d, factor.dtype)

    def standardised_precision_max(self, p, data_var):
        return p * p * jnp.max(data_var)


FULL, TIED, DIAG, SPHERICAL = _Full(), _Tied(), _Diag(), _Spherical()
FORMS = {form.name: form for form in (FULL, TIED, DIAG, SPHERICAL)}


# ------------------------------------------------------------------------------------------ M-steps
# Each takes the per-component weights ``nk`` (K,), the regularised scatter matrices ``W`` about the
# component means (K, D, D), or their diagonals (K, D) for the axis-aligned models, the component
# mask ``m`` (K,) as 0/1 floats (padded components take no part in pooled estimates), and a
# zero-argument ``previous`` that gives the last iterate's covariances as (K, D, D) matrices (or
# None at the first M-step): the models without a closed form start their inner iterations there.
# Each returns covariances in its form's shape. Notation of Celeux and Govaert (1995): W_k is their
# scatter W_k, n_k their n_k.


def _geometric_mean(values: jax.Array) -> jax.Array:
    """exp(mean(log v)) over the last axis: the d-th root of a product, without overflow."""
    return jnp.exp(jnp.mean(jnp.log(values), axis=-1))


def _det_root(W: jax.Array) -> jax.Array:
    """det(W_k)^(1/d) of positive definite (K, D, D) matrices, from their Cholesky factors."""
    chol = jnp.linalg.cholesky(W)
    return jnp.exp(2.0 * jnp.mean(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1))


def _inner_tol(dtype) -> float:
    return math.sqrt(float(jnp.finfo(dtype).eps))


def _iterate(step: Callable, start, measure: Callable, dtype, warm: bool):
    """Apply ``step`` from ``start`` until ``measure`` (a positive vector) changes by less than
    sqrt(eps) relatively, or :data:`INNER_MAX_ITER` times (:data:`INNER_WARM_MAX_ITER` from a
    ``warm`` start): one ``lax.while_loop``."""
    tol = _inner_tol(dtype)
    max_iter = INNER_WARM_MAX_ITER if warm else INNER_MAX_ITER

    def cond(state):
        i, _, change = state
        return (i < max_iter) & (change > tol)

    def body(state):
        i, x, _ = state
        new = step(x)
        old_m, new_m = measure(x), measure(new)
        change = jnp.max(jnp.abs(new_m - old_m) / jnp.maximum(jnp.abs(old_m), jnp.finfo(dtype).tiny))
        return i + 1, new, jnp.where(jnp.isfinite(change), change, 0.0)

    _, x, _ = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), start, jnp.asarray(jnp.inf, dtype)))
    return x


def _previous_volumes(previous, nk, W_trace_or_diag, d):
    """Volumes det(Sigma_k)^(1/d) of the previous iterate, or the per-component ones of W at the start."""
    if previous is None:
        base = W_trace_or_diag / (d * nk) if W_trace_or_diag.ndim == 1 else jnp.mean(W_trace_or_diag, -1) / nk
        return base
    return _det_root(previous())


def _mstep_EII(nk, W, m, previous):
    d = W.shape[-1]
    lam = jnp.sum(m * jnp.sum(W, -1)) / (d * jnp.sum(m * nk))
    return jnp.broadcast_to(lam, nk.shape)


def _mstep_VII(nk, W, m, previous):
    return jnp.mean(W, -1) / nk


def _mstep_EEI(nk, W, m, previous):
    return jnp.broadcast_to(jnp.sum(m[:, None] * W, 0) / jnp.sum(m * nk), W.shape)


def _mstep_VVI(nk, W, m, previous):
    return W / nk[:, None]


def _mstep_EVI(nk, W, m, previous):
    g = _geometric_mean(W)  # |diag W_k|^(1/d)
    lam = jnp.sum(m * g) / jnp.sum(m * nk)
    return lam * W / g[:, None]


def _mstep_VEI(nk, W, m, previous):
    """lambda_k B with B diagonal, det 1: alternate lambda_k = tr(W_k B^-1) / (d n_k) and
    B = diag(sum_k W_k / lambda_k) / |.|^(1/d) (Celeux and Govaert 1995, section 4)."""
    d = W.shape[-1]

    def shape_given(lam):
        b = jnp.sum(m[:, None] * W / lam[:, None], 0)
        return b / _geometric_mean(b)

    def step(lam):
        return jnp.sum(W / shape_given(lam), -1) / (d * nk)

    lam = _iterate(step, _previous_volumes(previous, nk, W, d), lambda x: x, W.dtype, previous is not None)
    return lam[:, None] * shape_given(lam)


def _mstep_EEE(nk, W, m, previous):
    return jnp.sum(m[:, None, None] * W, 0) / jnp.sum(m * nk)


def _mstep_VVV(nk, W, m, previous):
    return W / nk[:, None, None]


def _mstep_EVV(nk, W, m, previous):
    g = _det_root(W)
    lam = jnp.sum(m * g) / jnp.sum(m * nk)
    return lam * W / g[:, None, None]


def _mstep_VEE(nk, W, m, previous):
    """lambda_k C with C common, det 1: alternate C = sum_k W_k / lambda_k normalised and
    lambda_k = tr(W_k C^-1) / (d n_k)."""
    d = W.shape[-1]

    def shape_given(lam):
        c = jnp.sum((m / lam)[:, None, None] * W, 0)
        return c / _det_root(c[None])[0]

    def step(lam):
        c_chol = jnp.linalg.cholesky(shape_given(lam))
        c_inv_w = jax.scipy.linalg.cho_solve((c_chol, True), jnp.swapaxes(W, 0, 1).reshape(d, -1))
        trace = jnp.trace(c_inv_w.reshape(d, -1, d).swapaxes(0, 1), axis1=-2, axis2=-1)
        return trace / (d * nk)

    start = _previous_volumes(previous, nk, jnp.trace(W, axis1=-2, axis2=-1), d)
    lam = _iterate(step, start, lambda x: x, W.dtype, previous is not None)
    return lam[:, None, None] * shape_given(lam)[None]


def _eigh_descending(W):
    values, vectors = jnp.linalg.eigh(W)
    return values[..., ::-1], vectors[..., ::-1]


def _mstep_EEV(nk, W, m, previous):
    """lambda D_k A D_k^T: D_k the eigenvectors of W_k, A lambda = sum_k Omega_k / n (eigenvalues in
    decreasing order)."""
    omega, vectors = _eigh_descending(W)
    a = jnp.sum(m[:, None] * omega, 0) / jnp.sum(m * nk)
    return jnp.einsum("kij,j,klj->kil", vectors, a, vectors)


def _mstep_VEV(nk, W, m, previous):
    """lambda_k D_k A D_k^T: alternate A = sum_k Omega_k / lambda_k normalised and
    lambda_k = tr(Omega_k A^-1) / (d n_k)."""
    d = W.shape[-1]
    omega, vectors = _eigh_descending(W)

    def shape_given(lam):
        a = jnp.sum(m[:, None] * omega / lam[:, None], 0)
        return a / _geometric_mean(a)

    def step(lam):
        return jnp.sum(omega / shape_given(lam), -1) / (d * nk)

    lam = _iterate(step, _previous_volumes(previous, nk, jnp.sum(omega, -1), d), lambda x: x, W.dtype,
                   previous is not None)
    return jnp.einsum("kij,kj,klj->kil", vectors, lam[:, None] * shape_given(lam), vectors)


def _common_orientation(nk, W, m, previous, rotated_covariances):
    """Covariances D diag(c_k) D^T with a common orientation D (EVE, VVE).

    Maximises Q over D by Jacobi sweeps: for each plane (i, j) the rotation of columns i and j of D
    that minimises sum_k tr(W_k D B_k D^T), with B_k = diag(1 / c_k), is found exactly (the objective
    is ``a + b cos 2t + c sin 2t`` in the angle t), and ``c_k = rotated_covariances(diag(D^T W_k D))``
    is re-solved in closed form after every rotation. Each rotation and each re-solve increases Q,
    as the majorisation-minimisation steps of Browne and McNicholas (2014) do, but a sweep moves D
    much further than one of their steps.
    """
    d = W.shape[-1]
    start = jnp.linalg.eigh(jnp.sum(m[:, None, None] * W, 0))[1] if previous is None else \
        jnp.linalg.eigh(previous()[0])[1]
    first, second = (jnp.asarray(a, jnp.int32) for a in np.triu_indices(d, 1))

    def diagonals(D):
        return rotated_covariances(jnp.einsum("ij,kil,lj->kj", D, W, D))

    def rotate(p, D):
        i, j = first[p], second[p]
        b = 1.0 / diagonals(D)  # (K, D)
        di, dj = D[:, i], D[:, j]
        w_di, w_dj = W @ di, W @ dj  # (K, D)
        u, v, w = w_di @ di, w_dj @ dj, w_di @ dj
        gap = m * (b[:, i] - b[:, j])
        angle = 0.5 * jnp.arctan2(-jnp.sum(gap * w), -0.5 * jnp.sum(gap * (u - v)))
        c, s = jnp.cos(angle), jnp.sin(angle)
        return D.at[:, i].set(c * di + s * dj).at[:, j].set(c * dj - s * di)

    def sweep(D):
        return jax.lax.fori_loop(0, first.shape[0], rotate, D)

    D = _iterate(sweep, start, diagonals, W.dtype, previous is not None)
    return jnp.einsum("ij,kj,lj->kil", D, diagonals(D), D)


def _mstep_EVE(nk, W, m, previous):
    def rotated(diagonals):  # lambda A_k: A_k = diag / |diag|^(1/d), lambda = sum_k |diag_k|^(1/d) / n
        g = _geometric_mean(diagonals)
        return (jnp.sum(m * g) / jnp.sum(m * nk)) * diagonals / g[:, None]

    return _common_orientation(nk, W, m, previous, rotated)


def _mstep_VVE(nk, W, m, previous):
    return _common_orientation(nk, W, m, previous, lambda diagonals: diagonals / nk[:, None])


# ------------------------------------------------------------------------------------------- models

@dataclasses.dataclass(frozen=True, eq=False)
class CovarianceModel:
    """One member of the family ``Sigma_k = lambda_k D_k A_k D_k^T``.

    Attributes
    ----------
    name : str
        mclust's name (``"VEV"``); scikit-learn's four names resolve to their mclust twins.
    volume, shape, orientation : {"E", "V", "I"}
        Equal, variable or identity (shape and orientation only) across components.
    form : Form
        How the precision-Cholesky factor is stored.
    """

    name: str
    form: Form
    mstep: Callable = dataclasses.field(repr=False)

    @property
    def volume(self) -> str:
        return self.name[0]

    @property
    def shape(self) -> str:
        return self.name[1] if len(self.name) == 3 else "I"

    @property
    def orientation(self) -> str:
        return self.name[2] if len(self.name) == 3 else "I"

    def n_covariance_parameters(self, k: int, d: int) -> int:
        """Free parameters of the covariances (mclust's ``nVarParams``)."""
        volume = 1 if self.volume == "E" else k
        shape = {"I": 0, "E": d - 1, "V": k * (d - 1)}[self.shape]
        orientation = {"I": 0, "E": d * (d - 1) // 2, "V": k * (d * (d - 1) // 2)}[self.orientation]
        return volume + shape + orientation

    def n_parameters(self, k: int, d: int) -> int:
        """Free parameters of the mixture: covariances, means and weights (mclust's ``nMclustParams``)."""
        return self.n_covariance_parameters(k, d) + k * d + k - 1

    def min_points(self, d: int) -> int:
        """Effective points (sum of responsibilities) below which a component is degenerate: D + 1 for
        VVV, whose covariance is its own scatter over them alone, else 1 (a component with less
        than one point's weight, which mclust rejects as a vanishing mixing proportion). In the
        other models a component borrows volume, shape or orientation from the others: mclust's
        solutions on real data have components of 1.3 points (EVI, EVE) or D + 0.9 (EVV), and
        singular ones are caught by their vanishing variance instead."""
        return d + 1 if self.name == "VVV" else 1

    def min_points_at(self, d: int, model_index=0) -> int:
        """:meth:`min_points` (``model_index`` is for :class:`ModelChoice`'s signature)."""
        return self.min_points(d)

    def covariances_from_scatter(self, nk: jax.Array, scatter: jax.Array, reg_covar, mask: jax.Array,
                                 previous: Callable[[], jax.Array] | None = None, model_index=0) -> jax.Array:
        """The M-step: covariances (this model's form) from weights and scatter about the new means.

        Parameters
        ----------
        nk : array of shape (K,)
            Weighted counts (positive).
        scatter : array of shape ``form.scatter_shape(K, D)``
            sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T (diagonals only for the axis-aligned forms).
        reg_covar : float
            Added to the diagonal of every covariance (as ``reg_covar * n_k`` to the scatter, so that
            for scikit-learn's four types this is scikit-learn's ``Sigma + reg_covar I``).
        mask : bool array of shape (K,)
            Components that exist; the others take no part in pooled estimates.
        previous : callable, optional
            Returns the last iterate's covariances as (K, D, D); starts the inner iterations.
        model_index : ignored
            (:class:`ModelChoice` picks its model by it.)
        """
        d = scatter.shape[-1]
        if not self.form.matrix and scatter.ndim == 3:  # an axis-aligned model given full scatter matrices
            scatter = jnp.diagonal(scatter, axis1=-2, axis2=-1)
        m = mask.astype(nk.dtype)
        if scatter.ndim == 3:
            eye = jnp.eye(d, dtype=nk.dtype)
            W = scatter + (reg_covar * nk)[:, None, None] * eye
            W = jnp.where(mask[:, None, None], W, nk[:, None, None] * eye)  # padded components: identity
        else:
            W = scatter + (reg_covar * nk)[:, None]
            W = jnp.where(mask[:, None], W, nk[:, None])
        return self.mstep(nk, W, m, previous)

    def map_from_scatter(self, nk, means, scatter, prior, mask, previous=None, model_index=0):
        """The M-step under mclust's conjugate prior (:func:`bayesgmm.prior.map_m_step`): MAP means
        (K, D) and covariances (this model's form) from the weighted means and the scatter about
        them; a D x D prior scale serves the scalar-scale models as its trace over D."""
        from bayesgmm.prior import map_m_step, scale_for

        return map_m_step(self.name, nk, means, scatter, scale_for(self.name, prior), mask,
                          None if previous is None else previous())

    def decompose(self, covariances_full: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """mclust's decomposition of (K, D, D) covariances (host, numpy).

        Returns
        -------
        volumes : ndarray of shape (K,)
            det(Sigma_k)^(1/D).
        shapes : ndarray of shape (K, D)
            Eigenvalues over the volume, decreasing (in feature order for axis-aligned models).
        orientations : ndarray of shape (K, D, D)
            Eigenvectors as columns, in the order of ``shapes`` (identity for axis-aligned models).
        """
        c = np.asarray(covariances_full, dtype=np.float64)
        k, d = c.shape[0], c.shape[-1]
        if self.orientation == "I":
            values, vectors = np.diagonal(c, axis1=-2, axis2=-1), np.broadcast_to(np.eye(d), (k, d, d)).copy()
        else:
            values, vectors = np.linalg.eigh(c)
            values, vectors = values[:, ::-1], vectors[:, :, ::-1]
        volumes = np.exp(np.mean(np.log(values), axis=-1))
        return volumes, values / volumes[:, None], vectors


def _models() -> dict[str, CovarianceModel]:
    forms = {"EII": SPHERICAL, "VII": SPHERICAL, "EEI": DIAG, "VEI": DIAG, "EVI": DIAG, "VVI": DIAG, "EEE": TIED,
             "E": SPHERICAL, "V": SPHERICAL}
    steps = {name: globals()[f"_mstep_{name}"] for name in MCLUST_MODELS}
    steps.update(E=_mstep_EII, V=_mstep_VII)
    return {name: CovarianceModel(name, forms.get(name, FULL), steps[name]) for name in MCLUST_MODELS + ("E", "V")}


MODELS: dict[str, CovarianceModel] = _models()


@dataclasses.dataclass(frozen=True, eq=False)
class ModelChoice:
    """Several models in one compiled program: stored in the full form, the M-step picked by a traced
    index (``lax.switch``), so that a whole selection grid compiles once.

    Attributes
    ----------
    models : tuple of CovarianceModel
    """

    models: tuple[CovarianceModel, ...]
    form: Form = FULL

    def covariances_from_scatter(self, nk, scatter, reg_covar, mask, previous=None, model_index=0):
        k, d = scatter.shape[0], scatter.shape[-1]

        def branch(model):
            return lambda: model.form.full(model.covariances_from_scatter(nk, scatter, reg_covar, mask, previous), k, d)

        return jax.lax.switch(model_index, [branch(model) for model in self.models])

    def map_from_scatter(self, nk, means, scatter, prior, mask, previous=None, model_index=0):
        k, d = means.shape

        def branch(model):
            def run():
                map_means, covariances = model.map_from_scatter(nk, means, scatter, prior, mask, previous)
                return map_means, model.form.full(covariances, k, d)
            return run

        return jax.lax.switch(model_index, [branch(model) for model in self.models])

    def min_points_at(self, d: int, model_index) -> jax.Array:
        return jnp.asarray([model.min_points(d) for model in self.models])[model_index]


def resolve(name: str) -> str:
    """mclust's name for ``name`` (scikit-learn's four names are aliases)."""
    return SKLEARN_ALIASES.get(name, name)


@functools.cache
def get_model(covariance_type: str | tuple[str, ...]) -> CovarianceModel | ModelChoice:
    """The model for a name (mclust's or scikit-learn's), or a :class:`ModelChoice` for a tuple.

    scikit-learn's names keep their own stored forms; ``"VVV"`` and ``"full"`` are the same model.

    Examples
    --------
    >>> get_model("tied").name, get_model("tied").form.name
    ('EEE', 'tied')
    >>> get_model("VEV").n_parameters(2, 4)  # mclust's BIC-chosen model of iris
    26
    """
    if isinstance(covariance_type, tuple):
        return ModelChoice(tuple(get_model(name) for name in covariance_type))
    try:
        return MODELS[resolve(covariance_type)]
    except (KeyError, TypeError):
        raise ValueError(f"covariance_type must be one of {list(COVARIANCE_NAMES)}, "
                         f"got {covariance_type!r}") from None


def form_of(covariance_type: str | tuple[str, ...]) -> Form:
    """The storage form of a model name (or of a :class:`ModelChoice`'s tuple)."""
    return get_model(covariance_type).form


def expand_models(covariance_types: str | Sequence[str], n_features: int) -> tuple[str, ...]:
    """Names in a user's list, with ``"all"`` for mclust's family (E and V for one feature) and
    ``"sklearn"`` for scikit-learn's four types; duplicates (``"full"`` and ``"VVV"``) kept once."""
    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    names: list[str] = []
    for name in covariance_types:
        group = {"all": MCLUST_MODELS if n_features > 1 else UNIVARIATE_MODELS, "sklearn": SKLEARN_TYPES}
        for member in group.get(name, (name,)):
            get_model(member)
            if resolve(member) not in {resolve(n) for n in names}:
                names.append(member)
    return tuple(names)


# ------------------------------------------------------- functions of a name (kept for their callers)

def n_parameters(covariance_type: str, n_components: int, n_features: int) -> int:
    """Number of free parameters of a mixture (weights, means and covariances), as scikit-learn and mclust."""
    return get_model(covariance_type).n_parameters(n_components, n_features)


def log_det_cholesky(precisions_cholesky: jax.Array, covariance_type, n_features: int) -> jax.Array:
    """log det(P) per component: shape (n_components,), or () for tied."""
    return form_of(covariance_type).log_det(precisions_cholesky, n_features)


def centered(X: jax.Array, means: jax.Array) -> jax.Array:
    """X - means per component: shape (n_components, n_samples, n_features)."""
    return X[None, :, :] - means[:, None, :]


def mahalanobis_sq(diff: jax.Array, precisions_cholesky: jax.Array, covariance_type) -> jax.Array:
    """Squared Mahalanobis distances from ``diff`` of shape (K, N, D): shape (N, K)."""
    y = form_of(covariance_type).whiten(diff, precisions_cholesky)
    return jnp.sum(y * y, axis=-1).T


def log_gaussian_prob(X: jax.Array, means: jax.Array, precisions_cholesky: jax.Array, covariance_type) -> jax.Array:
    """log N(x_n | mu_k, Sigma_k) for X of shape (N, D): shape (N, K)."""
    d = X.shape[-1]
    maha = mahalanobis_sq(centered(X, means), precisions_cholesky, covariance_type)
    log_det = log_det_cholesky(precisions_cholesky, covariance_type, d)
    return -0.5 * (d * math.log(2 * math.pi) + maha) + log_det


def precisions_cholesky_from_covariances(covariances: jax.Array, covariance_type) -> jax.Array:
    """P = inv(chol(Sigma)).T (upper triangular) for matrix forms, 1/sqrt(Sigma) otherwise."""
    return form_of(covariance_type).precisions_cholesky(jnp.asarray(covariances))


def covariances_from_precisions_cholesky(precisions_cholesky: jax.Array, covariance_type) -> jax.Array:
    """Sigma = inv(P @ P.T), through triangular solves; P upper or lower triangular."""
    return form_of(covariance_type).covariances(jnp.asarray(precisions_cholesky))


def precisions_from_precisions_cholesky(precisions_cholesky: jax.Array, covariance_type) -> jax.Array:
    """Precision matrices P @ P.T (matrix forms) or P**2."""
    return form_of(covariance_type).precisions(jnp.asarray(precisions_cholesky))
