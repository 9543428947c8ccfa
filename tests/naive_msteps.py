"""Naive numpy reference ("twin") M-steps for mclust's parsimonious Gaussian mixture covariances.

Written straight from the papers, independently of ``bayesgmm``, to test a faster implementation against.
Every component covariance is decomposed as (Banfield and Raftery 1993; Celeux and Govaert 1995)

    Sigma_k = lambda_k D_k A_k D_k^T,

with volume ``lambda_k > 0`` (a scalar), shape ``A_k`` (diagonal, ``det A_k = 1``) and orientation ``D_k``
(orthogonal).  The three letters of a model name say, in that order, whether volume, shape and orientation are
Equal across components, Variable, or the Identity.  ``E`` and ``V`` are the univariate equal- and
unequal-variance models.

Given per-component weighted counts ``n_k`` and weighted scatter matrices about the component means
``W_k = sum_i z_ik (x_i - mu_k)(x_i - mu_k)^T``, the M-step maximises

    Q(Sigma) = sum_k [ -n_k / 2 * log det Sigma_k - 1/2 * tr(W_k Sigma_k^{-1}) ]

over the covariances that satisfy the model's constraint.  Closed forms (Celeux and Govaert 1995) serve
EII, VII, EEI, EVI, VVI, EEE, EEV, EVV and VVV (and E, V); VEI, VEE and VEV alternate between the
volumes and the common shape/orientation as Celeux and Govaert describe; EVE and VVE use the
majorisation-minimisation (MM) updates of the common orientation of Browne and McNicholas (2014) inside an
alternation with the shapes (and volumes), from several starts, keeping the best.

Everything is plain numpy with Python loops: clarity over speed.

Where this differs from mclust (src/mclust.f, src/mclustaddson.f, R/mclustaddson.R):

* VVE: mclust's ``msvve``/``mevve`` weight the orientation MM steps by the unit-determinant shapes ``A_k``
  alone, leaving out the volumes ``lambda_k``; the Q-optimal weights are ``(lambda_k A_k)^{-1}``, as here.
  With unequal volumes mclust's inner iteration settles at a lower ``Q`` (the MM update itself, given the
  weights, is the same as here, including its signs).  EVE is unaffected: its common volume drops out.
* Starts: mclust starts EVE and VVE from ``D = I`` only (and, inside EM, from the previous M-step); here the
  best of several starts is kept, because the orientation problem has local optima.  VEI (shape = 1,
  volumes = 1), VEE (volumes = 1) and VEV (EEV shape) start as in mclust.
* Stopping: mclust stops its inner iterations at ``tol = sqrt(machine eps)`` (emControl's ``tol[2]``), on the
  relative change of a target (VEE, EVE, VVE) or of the parameters (VEI, VEV); the rule here is far tighter.
* Ordering: mclust reports EEV/VEV/VEE shapes decreasing (from SVDs) and EVE/VVE shapes in the column order
  of the common orientation, as :func:`naive_parameters` does; :func:`decompose` always sorts.

References
----------
Banfield, J. D. and Raftery, A. E. (1993). Model-based Gaussian and non-Gaussian clustering.
Biometrics 49, 803-821.

Celeux, G. and Govaert, G. (1995). Gaussian parsimonious clustering models. Pattern Recognition 28,
781-793.

Browne, R. P. and McNicholas, P. D. (2014). Estimating common principal components in high dimensions.
Advances in Data Analysis and Classification 8, 217-226.

Examples
--------
>>> import numpy as np
>>> nk = np.array([10.0, 20.0])
>>> W = np.stack([np.diag([10.0, 40.0]), np.diag([80.0, 20.0])])
>>> np.round(naive_covariances("VVI", nk, W), 6)[1]
array([[4., 0.],
       [0., 1.]])
>>> np.round(naive_covariances("EEI", nk, W), 6)[0]
array([[3., 0.],
       [0., 2.]])
"""

from __future__ import annotations

import warnings

import numpy as np

MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
"""The 14 multivariate model names, in mclust's order."""

UNIVARIATE_MODELS = ("E", "V")
"""The two univariate model names (covariances of shape ``(K, 1, 1)``)."""

NESTINGS = (
    ("EII", "VII"), ("EII", "EEI"),
    ("VII", "VEI"),
    ("EEI", "VEI"), ("EEI", "EVI"), ("EEI", "EEE"),
    ("VEI", "VVI"), ("VEI", "VEE"),
    ("EVI", "VVI"), ("EVI", "EVE"),
    ("VVI", "VVE"),
    ("EEE", "VEE"), ("EEE", "EVE"), ("EEE", "EEV"),
    ("VEE", "VVE"), ("VEE", "VEV"),
    ("EVE", "VVE"), ("EVE", "EVV"),
    ("VVE", "VVV"),
    ("EEV", "VEV"), ("EEV", "EVV"),
    ("VEV", "VVV"),
    ("EVV", "VVV"),
)
"""Pairs ``(smaller, larger)`` of multivariate models whose constraint sets are nested (the smaller set is a
subset of the larger), so that the M-step optimum satisfies ``Q(smaller) <= Q(larger)``.  The transitive
closure of these pairs gives every nesting among the 14 models."""


# ----------------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------------

def _geomean(values):
    """Geometric mean of positive numbers, along the last axis."""
    return np.exp(np.mean(np.log(values), axis=-1))


def _eigh_decreasing(matrix):
    """Eigenvalues (decreasing) and matching eigenvectors (columns) of a symmetric matrix."""
    values, vectors = np.linalg.eigh(matrix)
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def _fix_signs(vectors):
    """Flip columns so that each column's entry of largest magnitude is positive (a convention only)."""
    vectors = np.array(vectors, dtype=float)
    for j in range(vectors.shape[1]):
        i = np.argmax(np.abs(vectors[:, j]))
        if vectors[i, j] < 0:
            vectors[:, j] = -vectors[:, j]
    return vectors


def _polar_factor(matrix):
    """The orthogonal ``X`` that maximises ``tr(X^T matrix)``: ``U V^T`` from the SVD ``matrix = U S V^T``."""
    u, _, vt = np.linalg.svd(matrix)
    return u @ vt


def _check_inputs(model, nk, W):
    if model not in MODELS and model not in UNIVARIATE_MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS + UNIVARIATE_MODELS}")
    nk = np.asarray(nk, dtype=float)
    W = np.asarray(W, dtype=float)
    if W.ndim != 3 or W.shape[1] != W.shape[2]:
        raise ValueError(f"W must have shape (K, D, D), got {W.shape}")
    if nk.shape != (W.shape[0],):
        raise ValueError(f"nk must have shape ({W.shape[0]},), got {nk.shape}")
    if np.any(nk <= 0):
        raise ValueError("every n_k must be positive")
    if model in UNIVARIATE_MODELS and W.shape[1] != 1:
        raise ValueError(f"model {model!r} is univariate but W has D = {W.shape[1]}")
    W = 0.5 * (W + np.transpose(W, (0, 2, 1)))
    return nk, W


def compose(volumes, shapes, orientations):
    """Covariances ``lambda_k D_k diag(A_k) D_k^T`` from their volume, shape and orientation.

    Parameters
    ----------
    volumes : array_like, shape (K,)
        Volumes ``lambda_k``.
    shapes : array_like, shape (K, D)
        Diagonals of the shape matrices ``A_k``, in the column order of ``orientations``.
    orientations : array_like, shape (K, D, D)
        Orthogonal matrices ``D_k`` (eigenvectors as columns).

    Returns
    -------
    ndarray, shape (K, D, D)
        The covariances.
    """
    volumes = np.asarray(volumes, dtype=float)
    shapes = np.asarray(shapes, dtype=float)
    orientations = np.asarray(orientations, dtype=float)
    K, d = shapes.shape
    out = np.empty((K, d, d))
    for k in range(K):
        Dk = orientations[k]
        out[k] = volumes[k] * (Dk * shapes[k]) @ Dk.T
        out[k] = 0.5 * (out[k] + out[k].T)
    return out


def q_objective(covariances, nk, W):
    """The M-step objective ``sum_k [-n_k/2 log det Sigma_k - 1/2 tr(W_k Sigma_k^{-1})]``.

    Parameters
    ----------
    covariances : array_like, shape (K, D, D)
        Component covariances ``Sigma_k``.
    nk : array_like, shape (K,)
        Weighted counts ``n_k = sum_i z_ik``.
    W : array_like, shape (K, D, D)
        Weighted scatter matrices about the component means.

    Returns
    -------
    float
        The objective; ``-inf`` if some ``Sigma_k`` is not positive definite.
    """
    covariances = np.asarray(covariances, dtype=float)
    nk = np.asarray(nk, dtype=float)
    W = np.asarray(W, dtype=float)
    total = 0.0
    for k in range(covariances.shape[0]):
        sign, logdet = np.linalg.slogdet(covariances[k])
        if sign <= 0 or not np.isfinite(logdet):
            return -np.inf
        total += -0.5 * nk[k] * logdet - 0.5 * np.trace(np.linalg.solve(covariances[k], W[k]))
    return float(total)


def decompose(covariances):
    """Volume, shape and orientation of each covariance matrix separately.

    Parameters
    ----------
    covariances : array_like, shape (K, D, D)
        Symmetric positive definite matrices.

    Returns
    -------
    volumes : ndarray, shape (K,)
        ``det(Sigma_k) ** (1/D)``.
    shapes : ndarray, shape (K, D)
        Eigenvalues of ``Sigma_k`` divided by its volume, sorted in decreasing order (so each row has
        product 1).
    orientations : ndarray, shape (K, D, D)
        Matching unit eigenvectors as columns; each column's entry of largest magnitude is made positive.
        With tied eigenvalues the columns of a tie are an arbitrary basis of their eigenspace.
    """
    covariances = np.asarray(covariances, dtype=float)
    K, d, _ = covariances.shape
    volumes = np.empty(K)
    shapes = np.empty((K, d))
    orientations = np.empty((K, d, d))
    for k in range(K):
        values, vectors = _eigh_decreasing(0.5 * (covariances[k] + covariances[k].T))
        volumes[k] = _geomean(values)
        shapes[k] = values / volumes[k]
        orientations[k] = _fix_signs(vectors)
    return volumes, shapes, orientations


# ----------------------------------------------------------------------------------------------------------
# the M-steps
# ----------------------------------------------------------------------------------------------------------

def _relative_change(new, old):
    return abs(new - old) / max(abs(new), 1e-300)


def _cov_change(new, old):
    return max(np.linalg.norm(new[k] - old[k]) / np.linalg.norm(new[k]) for k in range(new.shape[0]))


class _Convergence:
    """Stopping rule of the iterative M-steps.

    Stop once the relative change of ``Q`` is at most ``tol`` and the covariances have settled: the largest
    relative (Frobenius) change of a covariance, ``c_t``, is at the rounding level (``<= 1e-14``), or the
    remaining error it implies under linear convergence, ``c_t r / (1 - r)`` with ``r = c_t / c_{t-1} < 1``,
    is at most ``1e-12``.  (Monotone algorithms such as MM can make tiny changes of ``Q`` long before their
    parameters have converged, so a rule on ``Q`` alone is not enough for a reference.)
    """

    def __init__(self, tol):
        self.tol = tol
        self.q = None
        self.cov = None
        self.change = np.inf

    def __call__(self, q, cov):
        if self.cov is None:
            self.q, self.cov = q, cov
            return False
        change = _cov_change(cov, self.cov)
        ratio = change / self.change if self.change > 0 else 0.0
        q_ok = _relative_change(q, self.q) <= self.tol
        settled = change <= 1e-14 or (ratio < 1 and change * ratio / (1 - ratio) <= 1e-12)
        self.q, self.cov, self.change = q, cov, change
        return q_ok and settled


def _warn_max_iter(model, max_iter):
    warnings.warn(f"naive {model} M-step: no convergence in {max_iter} iterations", RuntimeWarning,
                  stacklevel=3)


def _vei(nk, W, tol, max_iter):
    """VEI: alternate volumes and the common diagonal shape (Celeux and Govaert 1995).

    Started like mclust's ``msvei``/``mevei``: shape and volumes equal to 1, so that the first volumes are
    the VII ones, ``tr(W_k) / (d n_k)``.
    """
    K, d, _ = W.shape
    w = np.array([np.diag(W[k]) for k in range(K)])          # (K, d)
    shape = np.ones(d)
    eye = np.broadcast_to(np.eye(d), (K, d, d))
    converged = _Convergence(tol)
    for _ in range(max_iter):
        volumes = (w / shape).sum(axis=1) / (d * nk)         # lambda_k = tr(W_k A^{-1}) / (d n_k)
        pooled = (w / volumes[:, None]).sum(axis=0)          # A proportional to diag(sum_k W_k / lambda_k)
        shape = pooled / _geomean(pooled)
        cov = compose(volumes, np.tile(shape, (K, 1)), eye)
        if converged(q_objective(cov, nk, W), cov):
            break
    else:
        _warn_max_iter("VEI", max_iter)
    return volumes, np.tile(shape, (K, 1)), np.array(eye)


def _vee(nk, W, tol, max_iter):
    """VEE: alternate volumes and the common shape-orientation ``C = D A D^T`` (Celeux and Govaert 1995):
    ``C`` proportional to ``sum_k W_k / lambda_k`` with ``det C = 1``, then
    ``lambda_k = tr(W_k C^{-1}) / (d n_k)``.

    Started like mclust's ``mstepVEE``: all volumes equal to 1, so that the first ``C`` is the EEE one.
    """
    K, d, _ = W.shape
    volumes = np.ones(K)
    converged = _Convergence(tol)
    for _ in range(max_iter):
        C = sum(W[k] / volumes[k] for k in range(K))
        C = C / np.linalg.det(C) ** (1.0 / d)
        C = 0.5 * (C + C.T)
        Cinv = np.linalg.inv(C)
        volumes = np.array([np.trace(W[k] @ Cinv) for k in range(K)]) / (d * nk)
        cov = np.array([volumes[k] * C for k in range(K)])
        if converged(q_objective(cov, nk, W), cov):
            break
    else:
        _warn_max_iter("VEE", max_iter)
    values, vectors = _eigh_decreasing(C)
    shape = values / _geomean(values)
    vectors = _fix_signs(vectors)
    return volumes, np.tile(shape, (K, 1)), np.tile(vectors, (K, 1, 1))


def _eigen_scatter(W):
    """Eigenvalues (decreasing, shape (K, d)) and eigenvectors (K, d, d) of each scatter matrix."""
    K, d, _ = W.shape
    omega = np.empty((K, d))
    L = np.empty((K, d, d))
    for k in range(K):
        omega[k], vectors = _eigh_decreasing(W[k])
        L[k] = _fix_signs(vectors)
    return omega, L


def _vev(nk, W, tol, max_iter):
    """VEV: with ``W_k = L_k Omega_k L_k^T`` (eigenvalues decreasing), ``D_k = L_k`` and alternate
    ``lambda_k = tr(Omega_k A^{-1}) / (d n_k)`` and ``A`` proportional to ``sum_k Omega_k / lambda_k``
    (Celeux and Govaert 1995).  Pairing the largest eigenvalue of every ``W_k`` with the largest
    entry of ``A`` is optimal (rearrangement inequality), and the updates keep ``A`` decreasing.

    Started like mclust's ``msvev``: ``A`` from the pooled eigenvalues, i.e. the EEV shape.
    """
    K, d, _ = W.shape
    omega, L = _eigen_scatter(W)
    pooled = omega.sum(axis=0)
    shape = pooled / _geomean(pooled)
    converged = _Convergence(tol)
    for _ in range(max_iter):
        volumes = (omega / shape).sum(axis=1) / (d * nk)
        pooled = (omega / volumes[:, None]).sum(axis=0)
        shape = pooled / _geomean(pooled)
        cov = compose(volumes, np.tile(shape, (K, 1)), L)
        if converged(q_objective(cov, nk, W), cov):
            break
    else:
        _warn_max_iter("VEV", max_iter)
    return volumes, np.tile(shape, (K, 1)), L


def _mm_orientation_step(D, weights, W, omega_max):
    """One MM1 and one MM2 update (Browne and McNicholas 2014) of the common orientation ``D`` for the
    objective ``f(D) = sum_k tr(W_k D B_k D^T)``, ``B_k = diag(weights[k])`` fixed.

    MM1 majorises through ``W_k <= omega_k I`` (``omega_k`` the largest eigenvalue of ``W_k``): the new ``D``
    maximises ``tr(X^T G)`` with ``G = sum_k (omega_k I - W_k) D B_k``.  MM2 majorises through
    ``B_k <= beta_k I`` (``beta_k`` the largest weight): ``G = sum_k W_k D (beta_k I - B_k)``.  Browne and
    McNicholas write ``F = -G^T`` (MM1) and ``F = -G`` (MM2) and take ``D = R P^T``, resp. ``P R^T``, from
    ``F = P S R^T``: that is ``-X``, which leaves ``f`` (even in ``D``) and the covariances unchanged.
    """
    K, d, _ = W.shape
    G = np.zeros((d, d))
    for k in range(K):
        G += (omega_max[k] * np.eye(d) - W[k]) @ D * weights[k]
    D = _polar_factor(G)
    G = np.zeros((d, d))
    for k in range(K):
        G += W[k] @ D * (weights[k].max() - weights[k])
    return _polar_factor(G)


def _common_orientation(model, nk, W, D0, tol, max_iter):
    """EVE or VVE from the starting orientation ``D0``: alternate one MM1+MM2 update of the common
    orientation with the exact shapes (and volumes) given the orientation.

    Given ``D``, with ``T_k = diag(D^T W_k D)``:

    * EVE: ``A_k = T_k / det(T_k)^(1/d)`` and ``lambda = sum_k det(T_k)^(1/d) / n``;
      the weights of the orientation problem are ``1 / A_k`` (the common ``lambda`` drops out).
    * VVE: ``lambda_k A_k = T_k / n_k``; the weights are ``n_k / T_k``.
    """
    K, d, _ = W.shape
    n = nk.sum()
    omega_max = np.array([np.linalg.eigvalsh(W[k])[-1] for k in range(K)])

    def given(D):
        """Shapes, volumes, orientation weights and Q at the best shapes and volumes for orientation D."""
        T = np.array([np.diag(D.T @ W[k] @ D) for k in range(K)])      # (K, d)
        if model == "EVE":
            g = _geomean(T)
            shapes = T / g[:, None]
            volumes = np.full(K, g.sum() / n)
            weights = 1.0 / shapes
        else:
            delta = T / nk[:, None]
            volumes = _geomean(delta)
            shapes = delta / volumes[:, None]
            weights = 1.0 / delta
        # tr(W_k Sigma_k^{-1}) sums to n d at these shapes and volumes
        q = float(np.sum(-0.5 * nk * d * np.log(volumes)) - 0.5 * n * d)
        return volumes, shapes, weights, q

    D = np.array(D0, dtype=float)
    volumes, shapes, weights, q = given(D)
    converged = _Convergence(tol)
    converged(q, compose(volumes, shapes, np.tile(D, (K, 1, 1))))
    for _ in range(max_iter):
        D = _mm_orientation_step(D, weights, W, omega_max)
        volumes, shapes, weights, q = given(D)
        if converged(q, compose(volumes, shapes, np.tile(D, (K, 1, 1)))):
            break
    else:
        _warn_max_iter(model, max_iter)
    return q, (volumes, shapes, np.tile(D, (K, 1, 1)))


def _orientation_starts(W):
    """Starting orientations: the identity (mclust's start), the eigenvectors of the pooled scatter and
    those of every ``W_k``."""
    K, d, _ = W.shape
    starts = [np.eye(d), _eigh_decreasing(W.sum(axis=0))[1]]
    starts += [_eigh_decreasing(W[k])[1] for k in range(K)]
    return starts


def _eve_vve(model, nk, W, tol, max_iter):
    """EVE / VVE: the best of the MM alternations from every start of :func:`_orientation_starts`."""
    best_q, best = -np.inf, None
    for D0 in _orientation_starts(W):
        q, params = _common_orientation(model, nk, W, D0, tol, max_iter)
        if q > best_q:
            best_q, best = q, params
    volumes, shapes, orientations = best
    D = orientations[0]
    # tidy: a sign convention for the columns of D (shapes keep their columns)
    D = _fix_signs(D)
    return volumes, shapes, np.tile(D, (W.shape[0], 1, 1))


def naive_parameters(model, nk, W, *, tol=1e-12, max_iter=10_000):
    """The M-step optimum as volumes, shapes and orientations laid out as the model constrains them.

    Parameters
    ----------
    model : str
        One of :data:`MODELS` or :data:`UNIVARIATE_MODELS`.
    nk : array_like, shape (K,)
        Weighted counts ``n_k = sum_i z_ik`` (positive).
    W : array_like, shape (K, D, D)
        Weighted scatter matrices about the component means (``D = 1`` for ``E`` and ``V``).
    tol : float, optional
        Iterative models (VEI, VEE, VEV, EVE, VVE) stop once the relative change of ``Q`` is at most ``tol``
        and the covariances have settled to about ``1e-12`` relative (see ``_Convergence``).
    max_iter : int, optional
        Iteration limit of every iterative run (a ``RuntimeWarning`` says when it is reached).

    Returns
    -------
    volumes : ndarray, shape (K,)
        ``lambda_k``; exactly equal across ``k`` when the first letter is E.
    shapes : ndarray, shape (K, D)
        Diagonal of ``A_k`` (product 1), in the column order of ``orientations``: exactly equal rows when
        the second letter is E, ones when it is I.  Decreasing except for EVE, VVE and the ``..I`` models,
        whose columns follow the common orientation (for ``..I``, the coordinate axes).
    orientations : ndarray, shape (K, D, D)
        ``D_k``: exactly equal across ``k`` when the third letter is E, the identity when it is I.

    Notes
    -----
    EVE and VVE are non-convex in the orientation: the MM alternation runs from the identity (as mclust
    does), from the eigenvectors of ``sum_k W_k`` and from those of every ``W_k``, and the best ``Q`` wins.
    """
    nk, W = _check_inputs(model, nk, W)
    K, d, _ = W.shape
    n = nk.sum()
    eye = np.tile(np.eye(d), (K, 1, 1))
    ones = np.ones((K, d))

    if model == "E":
        return np.full(K, W[:, 0, 0].sum() / n), ones, eye
    if model == "V":
        return W[:, 0, 0] / nk, ones, eye
    if model == "EII":                                   # lambda = tr(sum_k W_k) / (n d)
        return np.full(K, sum(np.trace(W[k]) for k in range(K)) / (n * d)), ones, eye
    if model == "VII":                                   # lambda_k = tr(W_k) / (n_k d)
        return np.array([np.trace(W[k]) for k in range(K)]) / (nk * d), ones, eye
    if model == "EEI":                                   # lambda A = diag(sum_k W_k) / n
        B = np.diag(W.sum(axis=0)) / n
        return np.full(K, _geomean(B)), np.tile(B / _geomean(B), (K, 1)), eye
    if model == "VEI":
        return _vei(nk, W, tol, max_iter)
    if model == "EVI":                                   # A_k = diag(W_k) / det(diag W_k)^(1/d)
        T = np.array([np.diag(W[k]) for k in range(K)])
        g = _geomean(T)
        return np.full(K, g.sum() / n), T / g[:, None], eye
    if model == "VVI":                                   # lambda_k A_k = diag(W_k) / n_k
        B = np.array([np.diag(W[k]) for k in range(K)]) / nk[:, None]
        g = _geomean(B)
        return g, B / g[:, None], eye
    if model == "EEE":                                   # Sigma = sum_k W_k / n
        values, vectors = _eigh_decreasing(W.sum(axis=0) / n)
        g = _geomean(values)
        return np.full(K, g), np.tile(values / g, (K, 1)), np.tile(_fix_signs(vectors), (K, 1, 1))
    if model == "VEE":
        return _vee(nk, W, tol, max_iter)
    if model in ("EVE", "VVE"):
        return _eve_vve(model, nk, W, tol, max_iter)
    if model == "EEV":                                   # D_k = L_k, lambda A = sum_k Omega_k / n
        omega, L = _eigen_scatter(W)
        pooled = omega.sum(axis=0)
        g = _geomean(pooled)
        return np.full(K, g / n), np.tile(pooled / g, (K, 1)), L
    if model == "VEV":
        return _vev(nk, W, tol, max_iter)
    if model == "EVV":                                   # C_k = W_k / det(W_k)^(1/d), lambda = sum_k det^(1/d) / n
        omega, L = _eigen_scatter(W)
        g = _geomean(omega)
        return np.full(K, g.sum() / n), omega / g[:, None], L
    if model == "VVV":                                   # Sigma_k = W_k / n_k
        omega, L = _eigen_scatter(W / nk[:, None, None])
        g = _geomean(omega)
        return g, omega / g[:, None], L
    raise AssertionError(model)  # pragma: no cover


def naive_covariances(model, nk, W, *, tol=1e-12, max_iter=10_000):
    """The M-step optimum: covariances maximising :func:`q_objective` under the model's constraint.

    Parameters
    ----------
    model : str
        One of :data:`MODELS` or :data:`UNIVARIATE_MODELS`.
    nk : array_like, shape (K,)
        Weighted counts ``n_k = sum_i z_ik`` (positive).
    W : array_like, shape (K, D, D)
        Weighted scatter matrices about the component means (``D = 1`` for ``E`` and ``V``).
    tol, max_iter
        Stopping rule of the iterative models, see :func:`naive_parameters`.

    Returns
    -------
    ndarray, shape (K, D, D)
        The covariances ``Sigma_k = lambda_k D_k A_k D_k^T``.  For VVV these are ``W_k / n_k`` exactly.
    """
    nk_arr, W_arr = _check_inputs(model, nk, W)
    if model == "VVV":
        return W_arr / nk_arr[:, None, None]
    if model == "EEE":
        return np.tile(W_arr.sum(axis=0) / nk_arr.sum(), (W_arr.shape[0], 1, 1))
    return compose(*naive_parameters(model, nk_arr, W_arr, tol=tol, max_iter=max_iter))


# ----------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------

def _all_equal(rows, rtol):
    rows = np.asarray(rows, dtype=float)
    scale = np.max(np.abs(rows))
    return bool(np.all(np.abs(rows - rows[0]) <= rtol * scale))


def satisfies(model, covariances, rtol=1e-6):
    """Whether covariance matrices obey a model's constraint, to a relative tolerance.

    Parameters
    ----------
    model : str
        One of :data:`MODELS` or :data:`UNIVARIATE_MODELS`.
    covariances : array_like, shape (K, D, D)
        Candidate covariances.
    rtol : float, optional
        Relative tolerance of every comparison.

    Returns
    -------
    bool
        True when the matrices are symmetric positive definite and

        * first letter E: the volumes ``det(Sigma_k)^(1/D)`` are equal;
        * second letter I: ``Sigma_k / volume_k`` is the identity;
        * second letter E: the shapes are equal, compared as ``Sigma_k / volume_k`` when the third letter is
          also E (VEE, EEE), as ``diag(Sigma_k) / volume_k`` in axis order when it is I (EEI, VEI), and as
          sorted eigenvalues over volume when it is V (EEV, VEV);
        * third letter I: the matrices are diagonal (``|Sigma_ij| <= rtol sqrt(Sigma_ii Sigma_jj)``);
        * third letter E: the orientations are equal up to column signs and order, tested as pairwise
          commutation, ``||S_i S_j - S_j S_i|| <= rtol ||S_i|| ||S_j||`` (symmetric matrices commute exactly
          when they share a basis of eigenvectors, which also copes with tied eigenvalues).

        ``E`` needs ``D = 1`` and equal variances; ``V`` needs ``D = 1``.
    """
    if model not in MODELS and model not in UNIVARIATE_MODELS:
        raise ValueError(f"unknown model {model!r}")
    S = np.asarray(covariances, dtype=float)
    if S.ndim != 3 or S.shape[1] != S.shape[2]:
        return False
    K, d, _ = S.shape
    for k in range(K):
        if not np.allclose(S[k], S[k].T, rtol=0, atol=rtol * np.max(np.abs(S[k]))):
            return False
        if np.linalg.eigvalsh(0.5 * (S[k] + S[k].T))[0] <= 0:
            return False
    S = 0.5 * (S + np.transpose(S, (0, 2, 1)))
    if model in UNIVARIATE_MODELS:
        return d == 1 and (model == "V" or _all_equal(S[:, 0, 0], rtol))

    volumes, shapes, _ = decompose(S)
    volume_letter, shape_letter, orientation_letter = model
    if volume_letter == "E" and not _all_equal(volumes, rtol):
        return False
    normalised = S / volumes[:, None, None]
    if orientation_letter == "I":
        for k in range(K):
            scale = np.sqrt(np.outer(np.diag(S[k]), np.diag(S[k])))
            off = np.abs(S[k] - np.diag(np.diag(S[k])))
            if np.any(off > rtol * scale):
                return False
    if shape_letter == "I":
        if np.any(np.abs(normalised - np.eye(d)) > rtol):
            return False
    elif shape_letter == "E":
        if orientation_letter == "E":
            ok = _all_equal(normalised.reshape(K, -1), rtol)
        elif orientation_letter == "I":
            ok = _all_equal([np.diag(normalised[k]) for k in range(K)], rtol)
        else:
            ok = _all_equal(shapes, rtol)
        if not ok:
            return False
    if orientation_letter == "E":
        for i in range(K):
            for j in range(i + 1, K):
                commutator = S[i] @ S[j] - S[j] @ S[i]
                if np.linalg.norm(commutator) > rtol * np.linalg.norm(S[i]) * np.linalg.norm(S[j]):
                    return False
    return True


def n_var_params(model, d, K):
    """Number of free covariance parameters, as mclust's ``nVarParams(modelName, d, G)``.

    Parameters
    ----------
    model : str
        One of :data:`MODELS` or :data:`UNIVARIATE_MODELS`.
    d : int
        Dimension.
    K : int
        Number of components (mclust's ``G``).

    Returns
    -------
    int
        Volumes (1 or K), shapes (0, ``d - 1`` or ``K (d - 1)``) and orientations (0, ``d (d - 1) / 2`` or
        ``K d (d - 1) / 2``), except that EVV and VVV are counted as ``1 + K (d (d + 1) / 2 - 1)`` and
        ``K d (d + 1) / 2`` (the same numbers).
    """
    table = {
        "E": 1,
        "V": K,
        "EII": 1,
        "VII": K,
        "EEI": d,
        "VEI": K + (d - 1),
        "EVI": 1 + K * (d - 1),
        "VVI": K * d,
        "EEE": d * (d + 1) // 2,
        "VEE": K + (d - 1) + d * (d - 1) // 2,
        "EVE": 1 + K * (d - 1) + d * (d - 1) // 2,
        "VVE": K + K * (d - 1) + d * (d - 1) // 2,
        "EEV": 1 + (d - 1) + K * d * (d - 1) // 2,
        "VEV": K + (d - 1) + K * d * (d - 1) // 2,
        "EVV": 1 + K * (d * (d + 1) // 2 - 1),
        "VVV": K * d * (d + 1) // 2,
    }
    if model not in table:
        raise ValueError(f"unknown model {model!r}")
    return table[model]
