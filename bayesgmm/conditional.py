"""Conditional mixtures and Gaussian mixture regression.

Conditioning a Gaussian mixture on observed values ``x_o`` of some features gives a Gaussian mixture
of the remaining features ``r`` (Bishop 2006, sec. 2.3.1 and 9.2): component k keeps its Gaussian
form with

* mean ``mu_r|o,k(x_o) = mu_r,k + Sigma_ro,k Sigma_oo,k^-1 (x_o - mu_o,k)``,
* covariance ``Sigma_r|o,k = Sigma_rr,k - Sigma_ro,k Sigma_oo,k^-1 Sigma_or,k`` (a Schur complement,
  the same for every ``x_o``),
* weight ``pi_k(x_o)`` proportional to ``pi_k N(x_o | mu_o,k, Sigma_oo,k)``.

All three come from one Cholesky factorisation per component, of the covariance with the observed
features first: ``chol([[S_oo, S_or], [S_ro, S_rr]]) = [[L_oo, 0], [B, L_r|o]]``, where ``B`` is
``S_ro L_oo^-T`` and ``L_r|o`` is the Cholesky factor of the Schur complement (so the conditional
covariances are positive definite by construction, not by a cancelling subtraction). With the
whitened residuals ``z = L_oo^-1 (x_o - mu_o,k)`` (one batched triangular solve for all conditioning
rows), the conditional mean is ``mu_r,k + B z`` and the log marginal density is
``-|z|^2 / 2 - sum log diag L_oo - d_o log(2 pi) / 2``; the weights are normalised in log space
(logsumexp). No matrix is inverted.

The work is done on the host in float64 (numpy and scipy: a handful of small batched factorisations,
nothing worth compiling) and the results are cast to the mixture's dtype.

References
----------
Bishop, C. M. (2006). Pattern Recognition and Machine Learning, sec. 2.3 and ch. 9.
Ghahramani, Z. and Jordan, M. I. (1994). Supervised learning from incomplete data via an EM approach.
NIPS 6.
Calinon, S. (2016). A tutorial on task-parameterized movement learning and retrieval. Intelligent
Service Robotics 9(1) (Gaussian mixture regression).
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral

import jax.numpy as jnp
import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from bayesgmm._boundary import atomic_fit, precision_scope
from bayesgmm.covariance import get_model
from bayesgmm.estimators import GaussianMixture

__all__ = ["ConditionalMixtures", "GaussianMixtureRegressor", "condition", "condition_gaussians", "marginal"]

_LOG_2PI = math.log(2 * math.pi)


# ------------------------------------------------------------------------------------------ the math

def condition_gaussians(weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, observed: np.ndarray,
                        values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Condition a mixture with full covariance matrices on observed features, for many rows at once.

    Parameters
    ----------
    weights : array of shape (K,)
        Non-negative mixture weights (zeros allowed).
    means : array of shape (K, D)
    covariances : array of shape (K, D, D)
        Positive definite covariance matrices.
    observed : int array of shape (O,)
        Indices of the observed features, distinct, 0 < O < D.
    values : array of shape (N, O)
        One row of observed values per conditioning row, in the order of ``observed``.

    Returns
    -------
    log_weights : ndarray of shape (N, K)
        Log conditional weights; ``logsumexp`` over K is 0.
    means : ndarray of shape (N, K, R)
        Conditional means of the R = D - O remaining features (in their original order).
    chol : ndarray of shape (K, R, R)
        Lower Cholesky factors of the conditional covariances, shared by all rows.

    Examples
    --------
    A single bivariate Gaussian with correlation 0.5: ``x1 | x0`` has mean ``0.5 x0`` and variance 0.75.

    >>> import numpy as np
    >>> log_w, m, chol = condition_gaussians(np.ones(1), np.zeros((1, 2)), np.array([[[1.0, 0.5], [0.5, 1.0]]]),
    ...                                      np.array([0]), np.array([[2.0]]))
    >>> float(m[0, 0, 0]), round(float(chol[0, 0, 0] ** 2), 12)
    (1.0, 0.75)
    """
    weights, means, covariances = (np.asarray(a, dtype=np.float64) for a in (weights, means, covariances))
    values = np.asarray(values, dtype=np.float64)
    d, o = means.shape[-1], len(observed)
    order = np.concatenate([observed, np.setdiff1d(np.arange(d), observed)])  # observed first
    permuted = covariances[:, order][:, :, order]
    chol = np.linalg.cholesky(permuted)  # (K, D, D)
    chol_oo, cross, chol_cond = chol[:, :o, :o], chol[:, o:, :o], chol[:, o:, o:]
    diff = values.T[None, :, :] - means[:, observed, None]  # (K, O, N)
    z = solve_triangular(chol_oo, diff, lower=True, check_finite=False)  # (K, O, N)
    log_det = np.sum(np.log(np.diagonal(chol_oo, axis1=-2, axis2=-1)), axis=-1)  # (K,)
    log_marginal = -0.5 * (np.sum(z * z, axis=1) + o * _LOG_2PI) - log_det[:, None]  # (K, N)
    with np.errstate(divide="ignore"):  # a component of weight 0 (e.g. a conditioned mixture's) stays at 0
        log_joint = (np.log(weights)[:, None] + log_marginal).T  # (N, K)
    log_weights = log_joint - logsumexp(log_joint, axis=1, keepdims=True)
    cond_means = means[None, :, order[o:]] + np.swapaxes(np.matmul(cross, z), 1, 2).transpose(1, 0, 2)
    return log_weights, cond_means, chol_cond


# ------------------------------------------------------------------------------------------ results

@dataclasses.dataclass(frozen=True, eq=False)
class ConditionalMixtures:
    """A batch of conditional mixtures, one per conditioning row, as arrays with a leading row axis.

    Returned by :meth:`bayesgmm.GaussianMixture.condition` for 2-D ``values`` and by
    :meth:`GaussianMixtureRegressor.predict_distribution`. The components' covariances do not depend
    on the conditioning values, so they are stored once; weights and means have one row per
    conditioning row. ``batch[i]`` is row i's mixture as a fitted :class:`bayesgmm.GaussianMixture`
    (``list(batch)`` all of them); ``mean``, ``covariance``, ``std``, ``score_samples`` and ``sample``
    work on all rows at once.

    Attributes
    ----------
    weights : ndarray of shape (n_rows, n_components)
        Conditional weights; each row sums to one.
    means : ndarray of shape (n_rows, n_components, n_remaining)
        Conditional means of the remaining features, in their original order.
    covariances : ndarray
        Conditional covariances, shared by all rows, in the shape of ``covariance_type`` (as
        ``GaussianMixture.covariances_``): (K, R, R) for "full", (R, R) for "tied", (K, R) for
        "diag", (K,) for "spherical".
    precisions_cholesky : ndarray
        Their precision-Cholesky factors, same shape.
    covariance_type : {"full", "tied", "diag", "spherical"}
        The stored form of the conditioned mixture's model: conditioning keeps full, tied, diagonal and
        spherical covariances so, exactly. mclust's other models become the scikit-learn type of their
        form ("full" for VEV, "diag" for VEI, ...), as their constraints across components do not
        survive conditioning in general.
    feature_names : ndarray of str or None
        Names of the remaining features, when the conditioned mixture had feature names.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str
    feature_names: np.ndarray | None = None
    mixture_params: dict = dataclasses.field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.weights.shape[0]

    def __repr__(self) -> str:
        n, k, r = self.means.shape
        return (f"ConditionalMixtures(n_rows={n}, n_components={k}, n_features={r}, "
                f"covariance_type={self.covariance_type!r})")

    def __getitem__(self, index):
        """Row ``index``'s mixture as a fitted GaussianMixture (an int), or a sub-batch (a slice or an
        index array)."""
        if isinstance(index, Integral):
            return _fitted_mixture(self.mixture_params, self.covariance_type, self.weights[index], self.means[index],
                                   self.covariances, self.precisions_cholesky, self.feature_names)
        return dataclasses.replace(self, weights=self.weights[index], means=self.means[index])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def n_components(self) -> int:
        return self.weights.shape[1]

    @property
    def n_features(self) -> int:
        """Number of remaining (not conditioned) features."""
        return self.means.shape[2]

    def _full_covariances(self) -> np.ndarray:
        return np.asarray(get_model(self.covariance_type).form.full(self.covariances, self.n_components,
                                                                    self.n_features), np.float64)

    def mean(self) -> np.ndarray:
        """Mean of each row's mixture: shape (n_rows, n_remaining) (the regression prediction)."""
        return np.einsum("nk,nkr->nr", self.weights, self.means)

    def covariance(self) -> np.ndarray:
        """Covariance of each row's mixture (law of total covariance): shape (n_rows, R, R)."""
        w = self.weights.astype(np.float64)
        spread = self.means - self.mean()[:, None, :]
        total = np.einsum("nk,kij->nij", w, self._full_covariances()) + np.einsum("nk,nki,nkj->nij", w, spread, spread)
        return total.astype(self.means.dtype)

    def std(self) -> np.ndarray:
        """Standard deviation of each remaining feature under each row's mixture: shape (n_rows, R)."""
        w = self.weights.astype(np.float64)
        spread = self.means - self.mean()[:, None, :]
        variance = w @ np.diagonal(self._full_covariances(), axis1=-2, axis2=-1) + np.einsum("nk,nkr->nr", w, spread**2)
        return np.sqrt(variance).astype(self.means.dtype)

    def score_samples(self, Y) -> np.ndarray:
        """Log density of ``Y[..., n, :]`` under row n's mixture.

        Parameters
        ----------
        Y : array-like of shape (..., n_rows, n_remaining)
            Leading axes evaluate several points per row (e.g. a grid: (n_grid, n_rows, R)).

        Returns
        -------
        ndarray of shape (..., n_rows)
        """
        Y = np.asarray(Y, dtype=np.float64)
        n, k, r = self.means.shape
        if Y.ndim < 2 or Y.shape[-2:] != (n, r):
            raise ValueError(f"Y must have shape (..., {n}, {r}) (n_rows, n_remaining), got {Y.shape}")
        lead = Y.shape[:-2]
        chol = np.linalg.cholesky(self._full_covariances())  # (K, R, R)
        diff = Y[..., :, None, :] - self.means.astype(np.float64)  # (..., N, K, R)
        flat = np.moveaxis(diff.reshape(-1, k, r), 0, -1)  # (K, R, M)
        z = solve_triangular(chol, flat, lower=True, check_finite=False)
        log_det = np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        log_prob = -0.5 * (np.sum(z * z, axis=1) + r * _LOG_2PI) - log_det[:, None]  # (K, M)
        log_prob = log_prob.T.reshape(lead + (n, k))
        return logsumexp(log_prob, b=self.weights.astype(np.float64), axis=-1).astype(self.means.dtype)

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw ``n_samples`` points from each row's mixture: shape (n_rows, n_samples, n_remaining)."""
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = check_random_state(random_state)
        n, k, r = self.means.shape
        cumulative = np.cumsum(self.weights.astype(np.float64), axis=1)
        u = rng.random_sample((n, n_samples)) * cumulative[:, -1:]
        labels = np.minimum(np.sum(u[:, :, None] >= cumulative[:, None, :], axis=-1), k - 1)  # (N, S)
        chol = np.linalg.cholesky(self._full_covariances())
        noise = np.einsum("nsij,nsj->nsi", chol[labels], rng.standard_normal((n, n_samples, r)))
        return (np.take_along_axis(self.means, labels[:, :, None], axis=1) + noise).astype(self.means.dtype)


def _fitted_mixture(params: dict, covariance_type: str, weights, means, covariances, precisions_cholesky,
                    feature_names) -> GaussianMixture:
    """A GaussianMixture with the given parameters set as if fitted (the covariances exactly as given;
    the attributes GaussianMixture derives from them as its ``_set_params`` does)."""
    model = get_model(covariance_type)
    gm = GaussianMixture(**{**params, "n_components": len(weights), "covariance_type": covariance_type})
    dtype = means.dtype
    k, d = means.shape
    gm.weights_ = np.array(weights, dtype)
    gm.means_ = np.array(means, dtype)
    gm.covariances_ = np.array(covariances, dtype)
    gm.precisions_cholesky_ = np.array(precisions_cholesky, dtype)
    with precision_scope(dtype):
        gm.precisions_ = np.asarray(model.form.precisions(jnp.asarray(gm.precisions_cholesky_)), dtype)
    gm.volumes_, gm.shapes_, gm.orientations_ = (
        np.asarray(a, dtype) for a in model.decompose(model.form.full(gm.covariances_, k, d)))
    gm.n_features_in_ = d
    if feature_names is not None:
        gm.feature_names_in_ = np.array(feature_names, dtype=object)
    return gm


# ------------------------------------------------------------------------------------------ the shell

def _feature_indices(features, n_features: int, names, allow_all: bool = False) -> np.ndarray:
    """Validated ``features`` (an index, a name, a sequence of them, or a boolean mask) as distinct
    non-negative indices, in the order given."""
    if isinstance(features, (str, Integral)):
        features = [features]
    try:
        arr = np.asarray(features)
    except (TypeError, ValueError):
        arr = np.asarray(features, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"features must be an index, a name, a sequence of them or a boolean mask, got {features!r}")
    if arr.size == 0:
        raise ValueError("features is empty: name at least one feature to condition on")
    if arr.dtype == bool:
        if arr.shape != (n_features,):
            raise ValueError(f"features as a boolean mask must have shape ({n_features},), got {arr.shape}")
        index = np.flatnonzero(arr)
    elif arr.dtype.kind in "iu":
        bad = arr[(arr < -n_features) | (arr >= n_features)]
        if bad.size:
            raise ValueError(f"features has index {bad[0]} out of range for a mixture of {n_features} features "
                             f"(valid: 0 to {n_features - 1}, or negative from the end)")
        index = np.where(arr < 0, arr + n_features, arr).astype(np.intp)
    elif all(isinstance(f, str) for f in arr):
        if names is None:
            raise ValueError("features are names but the mixture was fitted without feature names; pass indices")
        position = {str(name): i for i, name in enumerate(names)}
        arr = [str(f) for f in arr]
        unknown = [f for f in arr if f not in position]
        if unknown:
            raise ValueError(f"features has unknown name {unknown[0]!r}; the mixture's features are {list(names)}")
        index = np.array([position[f] for f in arr], dtype=np.intp)
    else:
        raise ValueError(f"features must be integer indices, feature names or a boolean mask, got {features!r}")
    if index.size == 0:
        raise ValueError("features is an all-False mask: name at least one feature to condition on")
    if len(np.unique(index)) != len(index):
        raise ValueError(f"features has a repeated feature: {features!r}")
    if len(index) == n_features and not allow_all:
        raise ValueError(f"features names all {n_features} features of the mixture: conditioning on every "
                         "feature leaves nothing to predict")
    return index


def _check_values(values, n_observed: int) -> tuple[np.ndarray, bool]:
    """Values as a float64 (N, O) copy, and whether they were one row."""
    try:
        rows = np.array(values, dtype=np.float64)  # a copy: the user's array is never touched
    except (TypeError, ValueError):
        raise ValueError(f"values must be numeric, got {values!r}") from None
    single = rows.ndim <= 1
    if rows.ndim == 0:
        rows = rows.reshape(1)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2:
        raise ValueError(f"values must be 1-D (one row) or 2-D (n_rows, {n_observed}), got shape {rows.shape}")
    if rows.shape[1] != n_observed:
        hint = f"; for several rows of one feature pass shape (n_rows, 1)" if single and n_observed == 1 else ""
        raise ValueError(f"values must have {n_observed} entries per row (one per conditioning feature), "
                         f"got {rows.shape[1]}{hint}")
    if rows.shape[0] == 0:
        raise ValueError("values has no rows")
    if not np.all(np.isfinite(rows)):
        bad = int(np.argmax(~np.all(np.isfinite(rows), axis=1)))
        raise ValueError(f"values must be finite, got NaN or inf in row {bad}")
    return rows, single


def condition(gm: GaussianMixture, features, values) -> GaussianMixture | ConditionalMixtures:
    """The mixture of the remaining features of ``gm`` given observed ``values`` of ``features``.

    Parameters
    ----------
    gm : GaussianMixture
        A fitted mixture (or a conditioned one: conditioning again works).
    features : int, str, sequence of int or str, or boolean mask of shape (n_features,)
        The observed features: indices (negative from the end, as numpy), or names when ``gm`` has
        ``feature_names_in_``. At least one, not all, none repeated. ``values`` follow this order;
        the remaining features keep their original order.
    values : array-like of shape (n_observed,) or (n_rows, n_observed)
        The observed values: one row, or many (vectorised, no Python loop over rows).

    Returns
    -------
    GaussianMixture or ConditionalMixtures
        For one row, a fitted-looking :class:`bayesgmm.GaussianMixture` over the remaining features
        (``weights_``, ``means_``, ``covariances_`` and the derived attributes, ``n_features_in_``,
        ``feature_names_in_``), so it can ``sample``, ``score_samples``, ``predict`` and be conditioned
        again. Its constructor parameters are ``gm``'s, with ``covariance_type`` its stored form's
        scikit-learn name and no initial values or prior. For 2-D ``values``, a
        :class:`ConditionalMixtures`: weights (n_rows, K) and means (n_rows, K, R) with the shared
        covariances; ``result[i]`` is row i's GaussianMixture.

    Raises
    ------
    ValueError
        For features out of range, unknown, repeated, empty or all of them, and for values of the wrong
        length or shape, non-numeric or not finite.

    Examples
    --------
    Two branches, y = +sqrt(x) and y = -sqrt(x), fitted jointly; given x = 2.25 the likely components
    sit on y = +1.5 and y = -1.5, with about half the weight each.

    >>> import numpy as np
    >>> import bayesgmm as bg
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(1, 4, 600)
    >>> y = rng.choice([-1.0, 1.0], 600) * np.sqrt(x) + rng.normal(0, 0.05, 600)
    >>> gm = bg.GaussianMixture(n_components=6, random_state=0).fit(np.column_stack([x, y]))
    >>> given = gm.condition(0, [2.25])                # p(y | x = 2.25), a GaussianMixture over y
    >>> given.means_.shape
    (6, 1)
    >>> likely = given.weights_ > 0.1
    >>> np.round(given.means_[likely, 0], 1), np.round(given.weights_[likely], 1)
    (array([ 1.5, -1.5]), array([0.4, 0.5]))
    >>> batch = gm.condition([0], [[1.5], [2.25], [3.5]])   # three rows at once
    >>> batch.weights.shape, batch.means.shape
    ((3, 6), (3, 6, 1))
    >>> np.round(batch.std()[:, 0], 1)                 # close to sqrt(x): the spread between the branches
    array([1.2, 1.5, 1.9])
    """
    check_is_fitted(gm)
    names = getattr(gm, "feature_names_in_", None)
    weights, means, covariances = _fitted_arrays(gm)
    k, d = means.shape
    observed = _feature_indices(features, d, names)
    rows, single = _check_values(values, len(observed))
    form = get_model(gm.covariance_type).form
    dtype = means.dtype
    full = np.asarray(form.full(covariances, k, d), np.float64)
    log_weights, means, chol = condition_gaussians(weights, means, full, observed, rows)
    remaining = np.setdiff1d(np.arange(d), observed)
    # full stays full, tied stays tied (equal covariances have equal Schur complements); diagonal and
    # spherical covariances keep the remaining features' variances, exactly
    schur = np.matmul(chol, np.swapaxes(chol, -1, -2)) if form.matrix else full[:, remaining][:, :, remaining]
    covariances, precisions_cholesky = _stored(form, schur, chol, dtype)
    batch = ConditionalMixtures(
        weights=np.exp(log_weights).astype(dtype), means=means.astype(dtype), covariances=covariances,
        precisions_cholesky=precisions_cholesky, covariance_type=form.name,
        feature_names=None if names is None else np.asarray(names, dtype=object)[remaining],
        mixture_params=_derived_params(gm))
    return batch[0] if single else batch


def marginal(gm: GaussianMixture, features) -> GaussianMixture:
    """The marginal mixture of ``features`` (same weights, the sub-vectors and sub-matrices).

    Parameters
    ----------
    gm : GaussianMixture
        A fitted mixture.
    features : int, str, sequence of int or str, or boolean mask
        The features to keep, in the order given (as in :func:`condition`; all of them allowed).

    Returns
    -------
    GaussianMixture
        Fitted-looking, with ``covariance_type`` the stored form's scikit-learn name.

    Examples
    --------
    >>> import numpy as np
    >>> import bayesgmm as bg
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(1, 4, 600)
    >>> y = rng.choice([-1.0, 1.0], 600) * np.sqrt(x) + rng.normal(0, 0.05, 600)
    >>> gm = bg.GaussianMixture(n_components=6, random_state=0).fit(np.column_stack([x, y]))
    >>> marginal(gm, [1]).means_.shape                 # the mixture of y alone
    (6, 1)
    >>> points = np.array([[2.25, 1.5], [2.25, 0.0]])  # p(x, y) = p(x) p(y | x):
    >>> joint = gm.score_samples(points)
    >>> given = gm.condition(0, points[:, :1])
    >>> bool(np.allclose(joint, marginal(gm, 0).score_samples(points[:, :1]) + given.score_samples(points[:, 1:])))
    True
    """
    check_is_fitted(gm)
    names = getattr(gm, "feature_names_in_", None)
    weights, means, covariances = _fitted_arrays(gm)
    k, d = means.shape
    keep = _feature_indices(features, d, names, allow_all=True)
    form = get_model(gm.covariance_type).form
    dtype = means.dtype
    sub = np.asarray(form.full(covariances, k, d), np.float64)[:, keep][:, :, keep]
    covariances, precisions_cholesky = _stored(form, sub, np.linalg.cholesky(sub) if form.matrix else None, dtype)
    return _fitted_mixture(_derived_params(gm), form.name, weights, means[:, keep], covariances,
                           precisions_cholesky, None if names is None else np.asarray(names, dtype=object)[keep])


def _fitted_arrays(gm: GaussianMixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``weights_``, ``means_`` and ``covariances_`` as NumPy arrays (a mixture fitted under
    scikit-learn's ``array_api_dispatch`` holds them in its input's namespace)."""
    return tuple(np.asarray(getattr(gm, name)) for name in ("weights_", "means_", "covariances_"))


def _stored(form, covariances_full: np.ndarray, chol: np.ndarray | None, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Covariances and precision-Cholesky factors in ``form``'s shape from (K, R, R) covariances (and,
    for the matrix forms, their lower Cholesky factors: P = inv(L)^T by a triangular solve)."""
    covariances = form.from_full(covariances_full)
    if form.matrix:
        eye = np.broadcast_to(np.eye(chol.shape[-1]), chol.shape)
        precisions_cholesky = form.from_full(np.swapaxes(solve_triangular(chol, eye, lower=True), -1, -2))
    else:
        precisions_cholesky = 1.0 / np.sqrt(covariances)
    return covariances.astype(dtype), precisions_cholesky.astype(dtype)


def _derived_params(gm: GaussianMixture) -> dict:
    """Constructor parameters of a mixture derived from ``gm``: its own, less what is tied to its shape
    or its fit (initial values, prior)."""
    return {**gm.get_params(deep=False), "weights_init": None, "means_init": None, "precisions_init": None,
            "prior": None}


# ------------------------------------------------------------------------------------------ regression

class GaussianMixtureRegressor(RegressorMixin, BaseEstimator):
    """Gaussian mixture regression: a :class:`bayesgmm.GaussianMixture` fitted on the joint (X, y),
    conditioned on X to predict y.

    The prediction for a row x is the conditional mixture p(y | x), a mixture of Gaussians whose
    weights, means (linear in x per component) and covariances come from the joint fit in closed form
    (:func:`condition`). ``predict`` gives its mean, ``predict(X, return_std=True)`` also its standard
    deviation, and :meth:`predict_distribution` the whole mixture, which may be multimodal where the
    mean falls between two likely values.

    The parameters are :class:`bayesgmm.GaussianMixture`'s, for the joint mixture of the
    n_features + n_targets columns ``[X, y]`` (features first; initial values included).

    Parameters
    ----------
    n_components : int, default=1
        Components of the joint mixture (1: a joint Gaussian, i.e. linear regression).
    covariance_type : str, default="full"
        Any of GaussianMixture's. With "diag" or "spherical" the features carry no information
        about the targets within a component (only the weights depend on x): use full or tied
        covariances for regression.
    tol, reg_covar, max_iter, n_init, init_params, weights_init, means_init, precisions_init, \
random_state, warm_start, verbose, verbose_interval, chunk_size, prior
        As for :class:`bayesgmm.GaussianMixture`.

    Attributes
    ----------
    mixture_ : GaussianMixture
        The joint mixture, features first then targets.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string column names.
    n_targets_ : int
        Number of target columns (1 for a 1-D y).
    n_iter_ : int
    converged_ : bool
        The joint mixture's ``n_iter_`` and ``converged_``.

    Examples
    --------
    Two branches, y = +sqrt(x) and y = -sqrt(x): the mean is near 0, the conditional mixture has its
    modes on the branches.

    >>> import numpy as np
    >>> import bayesgmm as bg
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(1, 4, 600)
    >>> y = rng.choice([-1.0, 1.0], 600) * np.sqrt(x) + rng.normal(0, 0.05, 600)
    >>> reg = bg.GaussianMixtureRegressor(n_components=6, random_state=0).fit(x[:, None], y)
    >>> mean, std = reg.predict([[2.25]], return_std=True)
    >>> abs(float(mean[0])) < 0.3, round(float(std[0]), 1)
    (True, 1.5)
    >>> grid = np.linspace(-3, 3, 601)[:, None, None]          # (n_grid, n_rows, n_targets)
    >>> density = np.exp(reg.predict_distribution([[2.25]]).score_samples(grid))[:, 0]
    >>> peaks = grid[1:-1, 0, 0][(density[1:-1] > density[:-2]) & (density[1:-1] > density[2:])]
    >>> np.round(peaks, 1)
    array([-1.5,  1.5])

    References
    ----------
    Ghahramani, Z. and Jordan, M. I. (1994). Supervised learning from incomplete data via an EM approach.
    Calinon, S. (2016). A tutorial on task-parameterized movement learning and retrieval.
    """

    _parameter_constraints: dict = dict(GaussianMixture._parameter_constraints)

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100,
                 n_init=1, init_params="kmeans", weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10, chunk_size=None, prior=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.prior = prior

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @atomic_fit
    def fit(self, X, y, sample_weight=None):
        """Fit the joint mixture of ``[X, y]`` by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            float32 X keeps the fit in float32 (y is cast to X's dtype).
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=True, y_numeric=True,
                             ensure_min_samples=2)
        y = np.asarray(y, dtype=X.dtype)
        self._single_target = y.ndim == 1
        Y = y.reshape(len(y), -1)
        self.n_targets_ = Y.shape[1]
        params = self.get_params(deep=False)
        if self.warm_start and isinstance(getattr(self, "mixture_", None), GaussianMixture) \
                and self.mixture_.means_.shape[1] == X.shape[1] + Y.shape[1]:
            mixture = self.mixture_.set_params(**params)
        else:
            mixture = GaussianMixture(**params)
        self.mixture_ = mixture.fit(np.hstack([X, Y]), sample_weight=sample_weight)
        self.n_iter_, self.converged_ = self.mixture_.n_iter_, self.mixture_.converged_
        return self

    def save(self, path):
        """Write the fitted model to ``path`` (portable, no pickle); read it back with :func:`bayesgmm.load`."""
        from bayesgmm.io import save

        return save(self, path)

    def predict_distribution(self, X) -> ConditionalMixtures:
        """The conditional mixtures p(y | x), one per row of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ConditionalMixtures
            Over the n_targets_ target columns (one column for a 1-D y): weights (n_samples, K), means
            (n_samples, K, n_targets_) and covariances; ``result[i]`` is row i's GaussianMixture.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return condition(self.mixture_, np.arange(self.n_features_in_), X)

    def predict(self, X, return_std: bool = False):
        """The conditional mean E[y | x] (and standard deviation) of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviation of each target under the conditional mixture (the
            spread within components and between their means).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Shaped as the y given to ``fit``.
        y_std : ndarray, same shape, only with ``return_std=True``
        """
        distribution = self.predict_distribution(X)
        mean = distribution.mean()
        if self._single_target:
            mean = mean[:, 0]
        if not return_std:
            return mean
        std = distribution.std()
        return mean, std[:, 0] if self._single_target else std
