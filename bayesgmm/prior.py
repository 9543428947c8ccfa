"""mclust's conjugate prior and the MAP M-steps under it, as mclust computes them.

mclust regularises EM with a conjugate prior (``priorControl()``; Fraley and Raftery 2007): each
mean has a normal prior ``mu_k | Sigma_k ~ N(mu_P, Sigma_k / kappa_P)`` and each covariance an
inverse-Wishart (inverse-gamma for the volume of the spherical models) with ``nu_P`` degrees of
freedom and scale ``Lambda_P``. The M-step then returns posterior modes instead of maximum-likelihood
estimates. This module holds

* :class:`ConjugatePrior`, the hyperparameters (a pytree);
* :func:`default_prior`, mclust's ``defaultPrior(data, G, modelName)`` (host, numpy);
* :func:`map_m_step`, the MAP means and covariances from weighted counts, means and scatter (JAX,
  jit- and vmap-able), for the models mclust supports with a prior: EII, VII, EEI, VEI, EVI, VVI,
  EEE, EEV, VEV, VVV and the 1-D E and V (mclust has none for VEE, EVE, VVE, EVV).

The formulas are mclust's Fortran (``src/mclust.f`` of mclust 6), not the paper's: they differ from
it, and from each other, in places. mclust has two sets of routines:

* ``me*p`` (``meeiip``, ``meeeip``, ...): the M-step of EM with a prior (``me()``, ``Mclust(...,
  prior = priorControl())``); :func:`map_m_step`'s default ``routine="em"``;
* ``ms*p`` (``mseiip``, ``mseeip``, ...): ``mstep(..., prior = priorControl())``; ``routine="mstep"``.

They agree except for EII (``mseiip`` takes the scatter about the shrunken means), EEI and EVI (other
denominators) and EEV (``mseevp`` resets the shrinkage to zero), and, when the shrinkage is zero, in
whether a ``+1`` (or ``+G``, ``+p``) term of a denominator is kept.

Notation: ``n_k`` weighted counts, ``xbar_k`` weighted means, ``W_k`` the scatter about them,
``n = sum_k n_k``, ``G`` the number of (real) components, ``p`` the number of features,
``kappa, mu_P, nu, Lambda`` the prior, ``c_k = kappa n_k / (kappa + n_k)``, ``d_k = xbar_k - mu_P``,
``[kappa]`` 1 when ``kappa > 0`` else 0. Means, every model but EEI (whose
routines add the prior to the scatter but leave the means at ``xbar_k``):
``mu_k = (n_k xbar_k + kappa mu_P) / (n_k + kappa)``. Covariances (routine ``em``; ``mstep`` in
brackets where it differs):

=====  ==========================================================================================
E      ``(Lambda + sum_k (W_k + c_k d_k^2)) / (nu + n + G + 2)``  [``nu + n + 2 + G[kappa]``]
V      ``(Lambda + W_k + c_k d_k^2) / (nu + n_k + 3)``  [``nu + n_k + 2 + [kappa]``]
EII    ``sum_k (tr W_k + c_k |d_k|^2) / (nu + (n + G) p + 2)``: no ``Lambda``
       [``sum_k (tr W_k + n_k |xbar_k - mu_k|^2 + c_k |d_k|^2) / (nu + n p + 2 + G p [kappa])``]
VII    ``(Lambda + tr W_k + c_k |d_k|^2) / (nu + n_k p + 2 + p [kappa])``
EEI    ``B / (nu + n + 1 + [kappa])``, ``B = Lambda + sum_k diag(W_k + c_k d_k d_k^T)``
       [``B / (nu + n + 2 + G [kappa])``]
VEI    ``lambda_k diag(a)``, alternating (from ``lambda = 1, a = 1``) until the change
       ``max |old - new| / (1 + new)`` of both is at most ``sqrt(eps)``:
       ``lambda_k = sum_j w_kj / a_j / (p n_k + nu + 2 + [kappa])``, then
       ``a = sum_k w_k / lambda_k`` over its geometric mean; ``w_k = Lambda + diag(W_k + c_k d_k d_k^T)``
EVI    ``lambda t_k / g_k``, ``t_k = Lambda + diag(W_k + c_k d_k d_k^T)``, ``g_k`` its geometric mean,
       ``lambda = sum_k g_k / (nu + n + 1 + [kappa])``  [``/ (nu + n + 2 + G [kappa])``]
VVI    ``t_k / (nu + n_k + 2 + [kappa])``
EEE    ``(Lambda + sum_k (W_k + c_k d_k d_k^T)) / (nu + n + p + 1 + G [kappa])``
EEV    ``D_k diag(A) D_k^T / (nu + n + p + 1 + [kappa])``: ``T_k = Lambda + W_k + c_k d_k d_k^T =
       D_k diag(omega_k) D_k^T`` (eigenvalues decreasing), ``A = sum_k omega_k``
       [the same with ``kappa = 0``: means ``xbar_k`` and ``T_k = Lambda + W_k``]
VEV    ``lambda_k D_k diag(a) D_k^T`` from the same ``T_k``, alternating (from ``a`` the normalised
       ``sum_k omega_k``, ``lambda_k = |sum_k omega_k|^(1/p) / n_k``) ``lambda_k = sum_j omega_kj /
       a_j / (n_k p)`` and ``a = sum_k omega_k / lambda_k`` normalised, until the change is below
       ``sqrt(eps)``: the prior's ``nu`` takes no part
VVV    ``T_k / (nu + n_k + p + 2)``  [``nu + n_k + p + 1 + [kappa]``]
=====  ==========================================================================================

In EM (``me*p``) the VEI and VEV alternations start from the previous EM iterate's volumes and shape;
:func:`map_m_step` does so when given ``previous``.

References
----------
Fraley, C. and Raftery, A. E. (2007). Bayesian regularization for normal mixture estimation and
model-based clustering. Journal of Classification 24(2), 155-181.
Scrucca, L., Fop, M., Murphy, T. B. and Raftery, A. E. (2016). mclust 5: clustering, classification
and density estimation using Gaussian finite mixture models. The R Journal 8(1), 289-317.
"""

from __future__ import annotations

import functools
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from bayesgmm.covariance import SKLEARN_ALIASES, get_model

#: mclust's models with a conjugate prior (``defaultPrior`` and the ``ms*p`` / ``me*p`` routines).
PRIOR_MODELS: tuple[str, ...] = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV", "E", "V")
#: Every accepted name: those and scikit-learn's four aliases.
PRIOR_NAMES: tuple[str, ...] = tuple(SKLEARN_ALIASES) + PRIOR_MODELS
_UNIVARIATE = ("E", "V")
#: Models whose prior scale is a D x D matrix (mclust's EEE ... VVV branch of ``defaultPrior``).
_MATRIX_SCALE = ("EEE", "EEV", "VEV", "VVV")
#: Cap on the VEI and VEV alternations (mclust's is ``.Machine$integer.max``).
MAX_INNER_ITER = 10_000

Routine = Literal["em", "mstep"]


class ConjugatePrior(NamedTuple):
    """Hyperparameters of mclust's conjugate prior (a pytree: every field may be traced).

    Attributes
    ----------
    shrinkage : scalar
        ``kappa_P``: the prior mean counts as this many observations (mclust's default 0.01).
    mean : array of shape (D,)
        ``mu_P``, the prior mean of every component mean.
    dof : scalar
        ``nu_P``, the degrees of freedom of the covariance prior.
    scale : array of shape (D, D) or scalar
        ``Lambda_P``: a D x D matrix for EEE, EEV, VEV and VVV, a scalar for the other models.
    """

    shrinkage: ArrayLike = None
    mean: ArrayLike = None
    dof: ArrayLike = None
    scale: ArrayLike = None


def resolve_prior_model(covariance_type) -> str:
    """mclust's name for a model that has a conjugate prior (scikit-learn's four names are aliases).

    Raises
    ------
    ValueError
        For any other name (mclust has no prior for VEE, EVE, VVE, EVV).
    """
    name = SKLEARN_ALIASES.get(covariance_type, covariance_type) if isinstance(covariance_type, str) else None
    if name not in PRIOR_MODELS:
        raise ValueError(f"covariance_type {covariance_type!r} has no conjugate prior (mclust defines one only "
                         f"for {list(PRIOR_MODELS)}, or scikit-learn's {list(SKLEARN_ALIASES)}); "
                         f"supported: {list(PRIOR_NAMES)}")
    return name


# ------------------------------------------------------------------------------------------ defaults

def default_prior(X: ArrayLike, n_components: int, covariance_type: str,
                  sample_weight: ArrayLike | None = None) -> ConjugatePrior:
    """mclust's ``defaultPrior(data, G, modelName)`` (host, numpy, float64).

    ``shrinkage = 0.01``, ``mean`` the column means and, with ``s`` the sample covariance
    (denominator ``n - 1``):

    * E, V (one feature): ``dof = 3``, ``scale = s / G^2``;
    * EII, VII, EEI, VEI, EVI, VVI: ``dof = D + 2``, ``scale = G^(-2/D) tr(s) / D`` (a scalar);
    * EEE, EEV, VEV, VVV: ``dof = D + 2``, ``scale = G^(-2/D) s`` (its diagonal only when
      ``n <= D``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples,)
        The data (a 1-D array is one feature).
    n_components : int
        ``G``.
    covariance_type : str
        A model of :data:`PRIOR_NAMES`.
    sample_weight : array-like of shape (n_samples,), optional
        Frequency weights: weighted means and covariance with denominator ``sum(w) - 1``, so that
        integer weights give the prior of the data with rows repeated; ``n`` is then ``sum(w)``.

    Returns
    -------
    ConjugatePrior
        ``mean`` of shape (D,), ``scale`` of shape (D, D) or ().

    Raises
    ------
    ValueError
        For an unsupported model, E or V with more than one feature, bad data or weights.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    >>> prior = default_prior(X, 2, "VII")
    >>> float(prior.dof), float(prior.scale)
    (4.0, 4.25)
    """
    name = resolve_prior_model(covariance_type)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be of shape (n_samples, n_features) or (n_samples,), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite")
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    n, d = X.shape
    if name in _UNIVARIATE and d != 1:
        raise ValueError(f"covariance_type {covariance_type!r} is a model of one feature; X has {d}")
    if sample_weight is None:
        w = np.ones(n)
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"sample_weight must be of shape ({n},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("sample_weight must be finite and non-negative")
    total = w.sum()
    if total <= 1:
        raise ValueError(f"the data's variance needs a total weight above 1 (sum - 1 divides it), got {total}")
    mean = w @ X / total
    centred = X - mean
    cov = (centred * w[:, None]).T @ centred / (total - 1)
    g = float(n_components)
    if name in _UNIVARIATE:
        dof, scale = 3.0, cov[0, 0] / g**2
    elif name in _MATRIX_SCALE:
        dof, scale = d + 2.0, g ** (-2.0 / d) * (cov if total > d else np.diag(np.diag(cov)))
    else:
        dof, scale = d + 2.0, g ** (-2.0 / d) * np.trace(cov) / d
    return ConjugatePrior(shrinkage=np.float64(0.01), mean=mean, dof=np.float64(dof), scale=np.asarray(scale))


def scale_for(covariance_type: str, prior: ConjugatePrior) -> ConjugatePrior:
    """``prior`` with its scale in the shape ``covariance_type`` takes: a D x D matrix scale becomes
    ``tr(scale) / D`` for the models with a scalar scale (as mclust's defaults relate them), so that
    one matrix-scale prior serves a grid of models. Traceable."""
    scale = jnp.asarray(prior.scale)
    if resolve_prior_model(covariance_type) not in _MATRIX_SCALE and scale.ndim == 2:
        scale = jnp.trace(scale) / scale.shape[-1]
    return prior._replace(scale=scale)


def resolve_prior(prior, X: np.ndarray, n_components: int, covariance_type: str,
                  sample_weight: np.ndarray | None = None) -> ConjugatePrior | None:
    """The estimators' ``prior=`` argument as hyperparameters (host): None stays None (maximum
    likelihood), ``"conjugate"`` is mclust's :func:`default_prior`, and a :class:`ConjugatePrior`
    is used as given, with its None fields taken from the default."""
    if prior is None:
        return None
    if isinstance(prior, str) and prior == "conjugate":
        return default_prior(X, n_components, covariance_type, sample_weight)
    if not isinstance(prior, ConjugatePrior):
        raise ValueError(f"prior must be None, 'conjugate' or a bayesgmm.prior.ConjugatePrior, got {prior!r}")
    default = default_prior(X, n_components, covariance_type, sample_weight)
    filled = ConjugatePrior(*(d if v is None else np.asarray(v, dtype=np.float64) for v, d in zip(prior, default)))
    if not (np.all(np.isfinite(filled.mean)) and filled.mean.shape == default.mean.shape):
        raise ValueError(f"prior.mean must be finite of shape {default.mean.shape}, got {np.shape(filled.mean)}")
    if not (filled.shrinkage >= 0 and np.isfinite(filled.shrinkage) and np.isfinite(filled.dof)):
        raise ValueError(f"prior.shrinkage must be >= 0 and prior.dof finite, got {prior}")
    return filled


# ------------------------------------------------------------------------------------------ M-steps

def _geometric_mean(values: jax.Array) -> jax.Array:
    return jnp.exp(jnp.mean(jnp.log(values), axis=-1))


def _eigh_descending(T: jax.Array) -> tuple[jax.Array, jax.Array]:
    values, vectors = jnp.linalg.eigh(T)
    return values[..., ::-1], vectors[..., ::-1]


def _change(old: jax.Array, new: jax.Array, weight=None) -> jax.Array:
    """mclust's convergence measure of its inner iterations: max |old - new| / (1 + new)."""
    change = jnp.abs(old - new) / (1.0 + new)
    return jnp.max(change if weight is None else weight * change)


def _iterate(step, start, strict: bool, dtype):
    """Run ``state -> (new_state, change)`` from ``start`` at least once and until the change is at
    most (``strict``: below) sqrt(eps), or :data:`MAX_INNER_ITER` times; one ``lax.while_loop``."""
    tol = math.sqrt(float(jnp.finfo(dtype).eps))  # mclust: sqrt(.Machine$double.eps)

    def cond(carry):
        i, _, change = carry
        going = (change >= tol) if strict else (change > tol)
        return (i < MAX_INNER_ITER) & going

    def body(carry):
        i, state, _ = carry
        new, change = step(state)
        return i + 1, new, jnp.where(jnp.isfinite(change), change, 0.0)

    _, state, _ = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), start, jnp.asarray(jnp.inf, dtype)))
    return state


def _volume_shape_start(values: jax.Array, m: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Volumes (K,) and a common shape (D,) of geometric mean 1 from per-component eigenvalues or
    variances ``values`` (K, D) of a previous iterate (real components ``m`` only for the shape)."""
    volumes = _geometric_mean(values)
    shape = jnp.exp(jnp.sum(m[:, None] * jnp.log(values / volumes[:, None]), 0) / jnp.sum(m))
    return volumes, shape / _geometric_mean(shape)


def _vei(w, m, denominator, start):
    """VEI's alternation (``msveip`` / ``meveip``): ``w`` (K, D), returns (volumes (K,), shape (D,))."""

    def step(state):
        volumes, shape = state
        new_volumes = jnp.sum(w / shape, -1) / denominator
        s = jnp.sum(m[:, None] * w / new_volumes[:, None], 0)
        new_shape = s / _geometric_mean(s)
        return (new_volumes, new_shape), jnp.maximum(_change(volumes, new_volumes, m), _change(shape, new_shape))

    return _iterate(step, start, strict=False, dtype=w.dtype)


def _vev(omega, nk, m, start):
    """VEV's alternation (``msvevp`` / ``mevevp``): eigenvalues ``omega`` (K, D), decreasing."""
    p = omega.shape[-1]

    def step(state):
        volumes, shape = state
        new_volumes = jnp.sum(omega / shape, -1) / (nk * p)
        a = jnp.sum(m[:, None] * omega / new_volumes[:, None], 0)
        new_shape = a / _geometric_mean(a)
        return (new_volumes, new_shape), jnp.maximum(_change(shape, new_shape), _change(volumes, new_volumes, m))

    return _iterate(step, start, strict=True, dtype=omega.dtype)


def map_m_step(covariance_type: str, nk: ArrayLike, means: ArrayLike, scatter: ArrayLike, prior: ConjugatePrior,
               mask: ArrayLike | None = None, previous: ArrayLike | None = None,
               routine: Routine = "em") -> tuple[jax.Array, jax.Array]:
    """MAP means and covariances under mclust's conjugate prior, as mclust computes them.

    Traceable: ``jax.jit(functools.partial(map_m_step, "VEV"))`` compiles it (``covariance_type`` and
    ``routine`` are static), and it vmaps over the array arguments and the prior. The formulas per
    model are in the module docstring.

    Parameters
    ----------
    covariance_type : str
        A model of :data:`PRIOR_NAMES` (mclust's name or scikit-learn's alias).
    nk : array of shape (K,)
        Weighted counts ``n_k = sum_n r_nk w_n`` (positive for the real components).
    means : array of shape (K, D)
        Weighted component means ``xbar_k``.
    scatter : array of shape (K, D, D) or (K, D)
        ``W_k = sum_n r_nk w_n (x_n - xbar_k)(x_n - xbar_k)^T`` about ``xbar_k``: (K, D, D) for the
        full and tied forms, its diagonals (K, D) for the diagonal and spherical forms (which also
        take (K, D, D) and use the diagonals).
    prior : ConjugatePrior
        ``scale`` of shape (D, D) for EEE, EEV, VEV, VVV (tied, full), a scalar otherwise.
    mask : bool array of shape (K,), optional
        Real components (default: all). The others take no part in the pooled estimates, nor in
        ``n`` and ``G``; they get identity covariances and their means back unchanged.
    previous : array, optional
        Covariances of the previous iterate, in the form's shape or as (K, D, D): VEI and VEV start
        their alternation from its volumes and shape, as mclust's EM does (default: mclust's start
        of a single M-step). Ignored by the other models.
    routine : {"em", "mstep"}
        mclust's ``me*p`` routines (the M-step that EM with a prior iterates) or its ``ms*p``
        routines (``mstep()``).

    Returns
    -------
    map_means : array of shape (K, D)
        ``(n_k xbar_k + kappa mu_P) / (n_k + kappa)`` (``xbar_k`` for EEI, and for EEV with
        ``routine="mstep"``, as mclust).
    covariances : array
        In the model's form: (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical (E, V, EII,
        VII).

    Raises
    ------
    ValueError
        Unsupported model or routine, or arguments of inconsistent shapes.

    References
    ----------
    Fraley, C. and Raftery, A. E. (2007). Bayesian regularization for normal mixture estimation and
    model-based clustering. Journal of Classification 24(2).
    """
    name = resolve_prior_model(covariance_type)
    if routine not in ("em", "mstep"):
        raise ValueError(f"routine must be 'em' or 'mstep', got {routine!r}")
    form = get_model(name).form
    nk, means, scatter = jnp.asarray(nk), jnp.asarray(means), jnp.asarray(scatter)
    dtype = jnp.result_type(nk, means, scatter, float)
    nk, means, scatter = nk.astype(dtype), means.astype(dtype), scatter.astype(dtype)
    if nk.ndim != 1 or means.ndim != 2 or means.shape[0] != nk.shape[0]:
        raise ValueError(f"nk must be of shape (K,) and means (K, D), got {nk.shape} and {means.shape}")
    k, p = means.shape
    if name in _UNIVARIATE and p != 1:
        raise ValueError(f"covariance_type {covariance_type!r} is a model of one feature; means have D = {p}")
    if not form.matrix and scatter.shape == (k, p, p):
        scatter = jnp.diagonal(scatter, axis1=-2, axis2=-1)
    expected = (k, p, p) if form.matrix else (k, p)
    if scatter.shape != expected:
        raise ValueError(f"scatter must be of shape {expected} for {name}, got {scatter.shape}")
    mask = jnp.ones(k, bool) if mask is None else jnp.asarray(mask, bool)
    if mask.shape != (k,):
        raise ValueError(f"mask must be of shape ({k},), got {mask.shape}")
    kappa, mu0, nu, scale = (jnp.asarray(v, dtype) for v in prior)
    if mu0.shape != (p,):
        raise ValueError(f"prior.mean must be of shape ({p},), got {mu0.shape}")
    scale_shape = (p, p) if form.matrix else ()
    if scale.shape != scale_shape and not (scale_shape == () and scale.size == 1):
        raise ValueError(f"prior.scale must be of shape {scale_shape} for {name}, got {scale.shape}")
    scale = scale.reshape(scale_shape)
    if kappa.shape != () or nu.shape != ():
        raise ValueError("prior.shrinkage and prior.dof must be scalars")

    return _map_m_step(name, routine, nk, means, scatter, (kappa, mu0, nu, scale), mask,
                       None if previous is None else _as_full(previous, form, k, p, dtype))


@functools.partial(jax.jit, static_argnames=("name", "routine"))
def _map_m_step(name, routine, nk, means, scatter, prior, mask, previous):
    """:func:`map_m_step` after validation (``previous``: None or (K, D, D))."""
    kappa, mu0, nu, scale = prior
    k, p = means.shape
    dtype = means.dtype
    form = get_model(name).form
    if name == "EEV" and routine == "mstep":
        kappa = jnp.zeros((), dtype)  # mseevp: "if (pshrnk .gt. zero) pshrnk = zero"
    shrink_means = name != "EEI"  # meeeip and mseeip shrink the scatter, never the means
    em = routine == "em"
    m = mask.astype(dtype)
    eye = jnp.eye(p, dtype=dtype)
    nk_r = jnp.where(mask, nk, 1.0)  # padded components: harmless stand-ins, masked out below
    xbar = jnp.where(mask[:, None], means, mu0)
    if form.matrix:
        W = jnp.where(mask[:, None, None], scatter, eye)
    else:
        W = jnp.where(mask[:, None], scatter, 1.0)
    positive = (kappa > 0).astype(dtype)  # mclust's "if (pshrnk .gt. zero)" terms
    c = kappa * nk_r / (kappa + nk_r)
    diff = xbar - mu0
    map_means = (nk_r[:, None] * xbar + kappa * mu0) / (nk_r + kappa)[:, None]
    if not shrink_means:
        map_means = xbar
    map_means = jnp.where(mask[:, None], map_means, means)
    n = jnp.sum(m * nk_r)
    g = jnp.sum(m)

    if form.matrix:  # T_k = Lambda + W_k + c_k d_k d_k^T
        T = scale + W + c[:, None, None] * diff[:, :, None] * diff[:, None, :]
    else:  # its diagonal, t_k = Lambda + diag(W_k) + c_k d_k^2
        t = scale + W + c[:, None] * diff**2

    if name == "E":
        denominator = nu + n + 2.0 + g * (1.0 if em else positive)
        cov = jnp.broadcast_to((scale + jnp.sum(m * (W + c[:, None] * diff**2)[:, 0])) / denominator, (k,))
    elif name == "V":
        cov = t[:, 0] / (nu + nk_r + 2.0 + (1.0 if em else positive))
    elif name == "EII":
        spread = jnp.sum(W, -1) + c * jnp.sum(diff**2, -1)
        if em:
            cov = jnp.sum(m * spread) / (nu + (n + g) * p + 2.0)
        else:  # mseiip: scatter about the shrunken mean, i.e. plus n_k |xbar_k - mu_k|^2
            spread = spread + nk_r * jnp.sum((xbar - map_means) ** 2, -1)
            cov = jnp.sum(m * spread) / (nu + n * p + 2.0 + g * p * positive)
        cov = jnp.broadcast_to(cov, (k,))
    elif name == "VII":
        spread = jnp.sum(W, -1) + c * jnp.sum(diff**2, -1)  # Lambda once, not once per feature
        cov = (scale + spread) / (nu + nk_r * p + 2.0 + p * positive)
    elif name == "EEI":
        pooled = scale + jnp.sum(m[:, None] * (t - scale), 0)
        denominator = nu + n + 1.0 + positive if em else nu + n + 2.0 + g * positive
        cov = jnp.broadcast_to(pooled / denominator, (k, p))
    elif name == "VEI":
        denominator = p * nk_r + nu + 2.0 + positive
        if previous is None:
            start = (jnp.ones(k, dtype), jnp.ones(p, dtype))
        else:
            start = _volume_shape_start(_diagonals(previous, mask), m)
        volumes, shape = _vei(t, m, denominator, start)
        cov = volumes[:, None] * shape
    elif name == "EVI":
        gk = _geometric_mean(t)
        denominator = nu + n + 1.0 + positive if em else nu + n + 2.0 + g * positive
        cov = (jnp.sum(m * gk) / denominator) * t / gk[:, None]
    elif name == "VVI":
        cov = t / (nu + nk_r + 2.0 + positive)[:, None]
    elif name == "EEE":
        pooled = scale + jnp.sum(m[:, None, None] * (T - scale), 0)
        cov = pooled / (nu + n + p + 1.0 + g * positive)
    elif name == "EEV":
        omega, vectors = _eigh_descending(T)
        a = jnp.sum(m[:, None] * omega, 0) / (nu + n + p + 1.0 + positive)
        cov = jnp.einsum("kij,j,klj->kil", vectors, a, vectors)
    elif name == "VEV":
        omega, vectors = _eigh_descending(T)
        if previous is None:
            total = jnp.sum(m[:, None] * omega, 0)
            volume = _geometric_mean(total)
            start = (volume / nk_r, total / volume)
        else:
            start = _volume_shape_start(_eigenvalues(previous, mask), m)
        volumes, shape = _vev(omega, nk_r, m, start)
        cov = jnp.einsum("kij,kj,klj->kil", vectors, volumes[:, None] * shape, vectors)
    else:  # VVV
        denominator = nu + nk_r + p + 2.0 if em else nu + nk_r + p + 1.0 + positive
        cov = T / denominator[:, None, None]

    if form.name == "full":
        cov = jnp.where(mask[:, None, None], cov, eye)
    elif form.name == "diag":
        cov = jnp.where(mask[:, None], cov, 1.0)
    elif form.name == "spherical":
        cov = jnp.where(mask, cov, 1.0)
    return map_means, cov


def _as_full(previous, form, k: int, p: int, dtype) -> jax.Array:
    """Previous covariances in the form's shape or (K, D, D), as (K, D, D)."""
    previous = jnp.asarray(previous, dtype)
    if previous.shape == (k, p, p):
        return previous
    if previous.shape != form.chol_shape(k, p):
        raise ValueError(f"previous must be of shape {form.chol_shape(k, p)} or {(k, p, p)}, got {previous.shape}")
    return form.full(previous, k, p)


def _diagonals(previous: jax.Array, mask: jax.Array) -> jax.Array:
    """Variances (K, D) of previous (K, D, D) covariances (1 for padded components)."""
    return jnp.where(mask[:, None], jnp.diagonal(previous, axis1=-2, axis2=-1), 1.0)


def _eigenvalues(previous: jax.Array, mask: jax.Array) -> jax.Array:
    """Eigenvalues (K, D), decreasing, of previous (K, D, D) covariances (1 for padded components)."""
    eye = jnp.eye(previous.shape[-1], dtype=previous.dtype)
    return jnp.linalg.eigvalsh(jnp.where(mask[:, None, None], previous, eye))[..., ::-1]
