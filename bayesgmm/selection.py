"""Model selection over the number of components and the covariance type (AIC, BIC, ICL).

Each covariance type is one compiled program: the grid over K is padded to the largest K, the
missing components are masked (weight 0), and all grid points and restarts run at once (vmap).

A fit with a collapsed component (a spike on repeated values: its variance along some direction is
below ``COLLAPSE_RATIO`` of the data's) has an unbounded likelihood in theory and a huge one in
practice; it is flagged ``degenerate`` in the table and never chosen, as mclust gives such fits no BIC.

Sign convention: AIC, BIC and ICL follow scikit-learn (lower is better). mclust reports
``BIC_mclust = 2 log L - p log n`` (higher is better), which is ``-table["bic"]``; the table carries
``log_likelihood`` and ``n_parameters`` so either convention is one line away.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayesgmm import covariance as cov
from bayesgmm import em
from bayesgmm._chunks import chunk_rows, data_mesh, default_chunk_size
from bayesgmm.estimators import (GaussianMixture, check_fit_data, column_moments, key_from_random_state,
                                  precision_scope, trace_length)
from bayesgmm.params import COVARIANCE_TYPES, GMMParams

Criterion = Literal["bic", "aic", "icl"]

#: A component has collapsed when its variance along some direction, in units of the data's
#: variance (per feature), is below this: a standard deviation under 1/1000 of the data's.
COLLAPSE_RATIO = 1e-6


@dataclasses.dataclass(frozen=True)
class SelectionResult:
    """What :func:`select` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (covariance_type, n_components): ``log_likelihood`` (total, weighted),
        ``n_parameters``, ``aic``, ``bic``, ``icl`` (lower is better), ``converged``, ``n_iter``,
        ``degenerate`` (a component collapsed; see :data:`COLLAPSE_RATIO`).
    best_ : GaussianMixture
        The fitted model that the criterion picks among the fits that are finite and not degenerate
        (no refit: the grid's own solution).
    criterion : str
    """

    table: pd.DataFrame
    best_: GaussianMixture
    criterion: str


def select(X, n_components: Iterable[int] = range(1, 10),
           covariance_types: Sequence[str] = COVARIANCE_TYPES, criterion: Criterion = "bic", *,
           sample_weight=None, n_init: int = 10, tol: float = 1e-6, max_iter: int = 1000,
           reg_covar: float = 1e-6, init_params: str = "kmeans", random_state=None,
           chunk_size: int | None = None) -> SelectionResult:
    """Fit a grid of mixtures and pick the best by AIC, BIC or ICL.

    The defaults (10 k-means restarts, ``tol=1e-6``, up to 1000 iterations) are stricter than
    :class:`GaussianMixture`'s so that each grid point reaches the optimum careful tools reach
    (for example mclust's EEE three-component fit of Old Faithful, log-likelihood -1126.33).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int
    covariance_types : sequence of {"full", "tied", "diag", "spherical"}
    criterion : {"bic", "aic", "icl"}
        ICL is BIC plus twice the entropy of the hard assignments, as mclust defines it.
    sample_weight : array-like of shape (n_samples,), optional
        The n in BIC is then the sum of the weights.

    Notes
    -----
    A grid point whose fit has a collapsed component (for example one sitting on a value that the
    data repeat, as rounded measurements do) is marked ``degenerate`` and not chosen; a
    ``UserWarning`` says so when it would otherwise have won.

    Returns
    -------
    SelectionResult

    Examples
    --------
    >>> import bayesgmm as bg
    >>> X = bg.datasets.load_faithful()
    >>> sel = bg.select(X, n_components=range(1, 4), covariance_types=("tied",), random_state=0)
    >>> sel.best_.n_components, sel.best_.covariance_type
    (3, 'tied')
    """
    ks = sorted({int(k) for k in n_components})
    if not ks or ks[0] < 1:
        raise ValueError(f"n_components must be a non-empty collection of integers >= 1, got {ks}")
    covariance_types = tuple(covariance_types)
    unknown = [ct for ct in covariance_types if ct not in COVARIANCE_TYPES]
    if unknown or not covariance_types:
        raise ValueError(f"covariance_types must be a non-empty subset of {COVARIANCE_TYPES}, got {unknown or '()'}")
    if criterion not in ("bic", "aic", "icl"):
        raise ValueError(f"criterion must be 'bic', 'aic' or 'icl', got {criterion!r}")
    template = GaussianMixture(n_components=ks[-1], n_init=n_init, tol=tol, max_iter=max_iter, reg_covar=reg_covar,
                               init_params=init_params, random_state=random_state, chunk_size=chunk_size)
    template._validate_params()
    X_arr, w = check_fit_data(template, X, sample_weight, ks[-1])
    n_total, n_features = float(w.sum()), X_arr.shape[1]
    data_var = column_moments(X_arr, w)[1]
    k_max = ks[-1]
    masks = jnp.asarray(np.arange(k_max)[None, :] < np.array(ks)[:, None])
    rows, fits = [], {}
    with precision_scope(X_arr.dtype):
        chunk = chunk_size or default_chunk_size()
        mesh = data_mesh()
        Xc, wc = chunk_rows(X_arr, w, chunk, mesh)
        dtype = X_arr.dtype
        keys = jax.random.split(key_from_random_state(random_state), len(covariance_types))
        for key, ct in zip(keys, covariance_types):
            result, loglik, map_log_resp = jax.device_get(_fit_grid(
                jax.random.split(key, len(ks)), Xc, wc, masks, jnp.asarray(tol, dtype),
                jnp.asarray(reg_covar, dtype), jnp.asarray(max_iter), covariance_type=ct, init_method=init_params,
                n_init=n_init, trace_len=trace_length(max_iter), mesh=mesh))
            for i, k in enumerate(ks):
                p = cov.n_parameters(ct, k, n_features)
                bic = -2 * loglik[i] + p * math.log(n_total)
                rows.append({"covariance_type": ct, "n_components": k, "log_likelihood": float(loglik[i]),
                             "n_parameters": p, "aic": -2 * loglik[i] + 2 * p, "bic": bic,
                             "icl": bic - 2 * map_log_resp[i], "converged": bool(result.converged[i]),
                             "n_iter": int(result.n_iter[i])})
                fits[ct, k] = jax.tree_util.tree_map(lambda leaf: leaf[i], result)
                rows[-1]["degenerate"] = smallest_variance_ratio(fits[ct, k].params, k, data_var) < COLLAPSE_RATIO
    table = pd.DataFrame(rows)
    ct, k = _choose(table, criterion)
    best = GaussianMixture(n_components=k, covariance_type=ct, n_init=n_init, tol=tol, max_iter=max_iter,
                           reg_covar=reg_covar, init_params=init_params, random_state=random_state,
                           chunk_size=chunk_size)
    with precision_scope(X_arr.dtype):
        _install_fit(best, fits[ct, k], X, k)
    return SelectionResult(table=table, best_=best, criterion=criterion)


def smallest_variance_ratio(params: GMMParams, k: int, data_var: np.ndarray) -> float:
    """Smallest variance along any direction of the first ``k`` components, in units of the data's
    per-feature variance ``data_var`` (shape (n_features,)): min_k lambda_min(S^-1/2 Sigma_k S^-1/2),
    computed as 1 / lambda_max of the standardised precision S^1/2 P_k S^1/2 (no inverse)."""
    ct = params.covariance_type
    chol = np.asarray(params.precisions_cholesky, dtype=np.float64)
    chol = chol if ct == "tied" else chol[:k]
    root_var = np.sqrt(data_var)
    if ct in ("full", "tied"):
        scaled = root_var[:, None] * chol  # S^1/2 L, so that S^1/2 P S^1/2 = (S^1/2 L)(S^1/2 L)^T
        largest = np.max(np.linalg.svd(np.reshape(scaled, (-1,) + scaled.shape[-2:]), compute_uv=False)) ** 2
    else:
        precisions = chol**2 if ct == "diag" else chol[:, None] ** 2
        largest = np.max(precisions * data_var)
    return float(1.0 / largest) if np.isfinite(largest) and largest > 0 else 0.0


def chosen_row(table: pd.DataFrame, criterion: str) -> pd.Series | None:
    """The row with the lowest finite criterion among the fits that are not ``degenerate`` (among all
    finite fits when every one is degenerate or the table has no such column); None when no value
    is finite."""
    finite = table[np.isfinite(table[criterion].astype(float))]
    if finite.empty:
        return None
    if "degenerate" in finite:
        sound = finite[~finite["degenerate"].astype(bool)]
        finite = finite if sound.empty else sound
    return finite.loc[finite[criterion].idxmin()]


def _choose(table: pd.DataFrame, criterion: str) -> tuple[str, int]:
    """:func:`chosen_row` as (covariance_type, n_components); warns when a degenerate fit had the lowest
    value, or when every fit is degenerate."""
    best = chosen_row(table, criterion)
    if best is None:
        raise ValueError("every fit in the grid failed with non-finite values; try a larger reg_covar")
    if best["degenerate"]:
        warnings.warn("every fit in the grid has a collapsed component (is a column constant or nearly so?); "
                      "choosing among them anyway", UserWarning, stacklevel=3)
    finite = table[np.isfinite(table[criterion])]
    lowest = finite.loc[finite[criterion].idxmin()]
    if lowest.name != best.name:
        warnings.warn(f"{lowest['covariance_type']} with {int(lowest['n_components'])} components has the lowest "
                      f"{criterion.upper()} ({lowest[criterion]:.2f}) but a collapsed component (a spike on repeated "
                      f"values); it is not chosen. Chosen: {best['covariance_type']} with "
                      f"{int(best['n_components'])} components ({best[criterion]:.2f})", UserWarning, stacklevel=3)
    return str(best["covariance_type"]), int(best["n_components"])


def _install_fit(estimator: GaussianMixture, result: em.EMResult, X, k: int) -> None:
    """Set the fitted attributes of ``estimator`` from one grid point, dropping the padded components."""
    check_fit_data(estimator, X, None, k)  # sets n_features_in_ and feature_names_in_
    p = result.params
    chol = p.precisions_cholesky if p.covariance_type == "tied" else p.precisions_cholesky[:k]
    weights = p.weights[:k] / np.sum(p.weights[:k])
    estimator._set_params(GMMParams(weights, p.means[:k], chol, p.covariance_type), p.means.dtype)
    estimator.converged_ = bool(result.converged)
    estimator.n_iter_ = int(result.n_iter)
    estimator.lower_bound_ = float(result.lower_bound)
    estimator.lower_bounds_ = [float(v) for v in result.lower_bounds[: estimator.n_iter_]]


@functools.partial(jax.jit, static_argnames=("covariance_type", "init_method", "n_init", "trace_len", "mesh"))
def _fit_grid(keys, X, sample_weight, masks, tol, reg_covar, max_iter, *, covariance_type, init_method, n_init,
              trace_len, mesh):
    """Fit every grid point (a mask over the padded components) at once.

    Returns the best EM result per grid point, the total weighted log-likelihood of its final
    parameters, and sum_n w_n log max_k r_nk (for ICL).
    """
    no_init = {"weights": None, "means": None, "precisions_cholesky": None}

    def one(key, mask):
        best, _ = em.fit(key, X, sample_weight, mask, tol, reg_covar, max_iter, -jnp.inf, no_init,
                         covariance_type=covariance_type, init_method=init_method, n_init=n_init, trace_len=trace_len,
                         mesh=mesh)
        log_prob, log_resp = jax.lax.map(lambda x: em.e_step(x, best.params), X)
        loglik = jnp.sum(sample_weight * log_prob)
        map_log_resp = jnp.sum(sample_weight * jnp.max(log_resp, axis=-1))
        return best, loglik, map_log_resp

    return jax.vmap(one)(keys, masks)
