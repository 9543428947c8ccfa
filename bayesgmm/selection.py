"""Model selection over the number of components and the covariance model (AIC, BIC, ICL).

The whole grid is one compiled program: components are padded to the largest K and masked
(weight 0), all K and restarts run at once (vmap), and the covariance models share the program
through a traced model index (:class:`~bayesgmm.covariance.ModelChoice`), so a grid over mclust's
14 models compiles once and a second grid of the same size compiles nothing.

Each (K, model) cell merges its restarts (by default mclust's hierarchical start and k-means ones)
and keeps the best log-likelihood among the fits without a collapsed component. A fit with a
collapsed component (a spike on repeated values: its variance along some direction is below
``COLLAPSE_RATIO`` of the data's, or fewer effective points than the model needs) has an unbounded
likelihood in theory and a huge one in practice; when every restart of a cell collapses, the cell is
flagged ``degenerate`` and never chosen, as mclust gives such fits no BIC. A fit with more free
parameters than the data have rows, or a component with fewer than D + 1 effective points (its
covariance rests on less than the D + 1 points that span D dimensions), is flagged
``overparameterised`` and is not chosen either.

Sign convention: AIC, BIC and ICL follow scikit-learn (lower is better). mclust reports
``BIC_mclust = 2 log L - p log n`` (higher is better), which is ``-table["bic"]``;
:meth:`SelectionResult.table_mclust` shows the table in mclust's layout and sign.
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

from bayesgmm import em
from bayesgmm._boundary import (check_fit_data, check_missing, column_moments, mean_imputed, iteration_limit, key_from_random_state, precision_scope,
                                trace_length)
from bayesgmm._chunks import chunk_labels, chunk_rows, data_mesh, default_chunk_size
from bayesgmm.covariance import FULL, SKLEARN_TYPES, expand_models, get_model
from bayesgmm.em import COLLAPSE_RATIO  # noqa: F401 (documented here)
from bayesgmm.estimators import NOISE_PARAMETERS, GaussianMixture, check_noise_init, hc_partitions
from bayesgmm.init import INIT_METHODS
from bayesgmm.noise import hypervolume_box
from bayesgmm.params import GMMParams
from bayesgmm.prior import PRIOR_MODELS, resolve_prior, resolve_prior_model

Criterion = Literal["bic", "aic", "icl"]


@dataclasses.dataclass(frozen=True)
class SelectionResult:
    """What :func:`select` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (covariance_type, n_components): ``log_likelihood`` (total, weighted),
        ``n_parameters``, ``aic``, ``bic``, ``icl`` (lower is better), ``converged``, ``n_iter``,
        ``degenerate`` (a component collapsed; see :data:`COLLAPSE_RATIO`), ``overparameterised``
        (more free parameters than rows, or a component with fewer than D + 1 effective points,
        its weight times the number of rows).
    best_ : GaussianMixture
        The fitted model that the criterion picks among the fits that are finite, not degenerate and
        not overparameterised (no refit: the grid's own solution).
    criterion : str
    """

    table: pd.DataFrame
    best_: GaussianMixture
    criterion: str

    def table_mclust(self) -> pd.DataFrame:
        """The BIC table as mclust prints it: rows K, columns models, ``2 log L - p log n`` (higher is
        better), NaN where the fit is degenerate or failed (mclust's NA).

        Examples
        --------
        >>> import bayesgmm as bg
        >>> sel = bg.select(bg.datasets.load_faithful(), n_components=range(1, 4), covariance_types=["EEE", "VVV"],
        ...                 random_state=0)
        >>> round(float(sel.table_mclust().loc[3, "EEE"]), 1)  # mclust: -2314.316
        -2314.3
        """
        t = self.table
        bic = np.where(t["degenerate"].astype(bool) | ~np.isfinite(t["bic"]), np.nan, -t["bic"].astype(float))
        wide = t.assign(BIC=bic).pivot(index="n_components", columns="covariance_type", values="BIC")
        return wide[list(dict.fromkeys(t["covariance_type"]))]


def select(X, n_components: Iterable[int] = range(1, 10),
           covariance_types: str | Sequence[str] = SKLEARN_TYPES, criterion: Criterion = "bic", *,
           sample_weight=None, n_init: int = 10, tol: float = 1e-6, max_iter: int = 1000,
           reg_covar: float = 1e-6, init_params: str = "hc", random_state=None,
           chunk_size: int | None = None, prior=None, missing: str = "error", noise: bool = False,
           noise_init=None) -> SelectionResult:
    """Fit a grid of mixtures and pick the best by AIC, BIC or ICL.

    The defaults (mclust's hierarchical start plus 9 k-means restarts per cell, ``tol=1e-6``, up to
    1000 iterations) are stricter than :class:`GaussianMixture`'s so that each grid point reaches the
    optimum careful tools reach (for example mclust's EEE three-component fit of Old Faithful,
    log-likelihood -1126.33).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int or iterable of int
        The numbers of components to try (an integer: that one only, as mclust's ``G``).
    covariance_types : str or sequence of str
        Model names (scikit-learn's or mclust's, see :class:`GaussianMixture`), ``"all"`` for mclust's
        14 models (E and V for one feature) or ``"sklearn"`` for scikit-learn's four.
    criterion : {"bic", "aic", "icl"}
        ICL is BIC plus twice the entropy of the hard assignments, as mclust defines it.
    sample_weight : array-like of shape (n_samples,), optional
        The n in BIC is then the sum of the weights.
    n_init : int
        Restarts per cell: with ``init_params="hc"`` the first starts from mclust's hierarchical
        partition and the others from k-means.
    init_params : {"hc", "kmeans", "k-means++", "random", "random_from_data"}
    prior : None, "conjugate" or ConjugatePrior
        MAP-EM under mclust's conjugate prior (see :class:`GaussianMixture`), with mclust's default
        hyperparameters for each K (a given :class:`~bayesgmm.prior.ConjugatePrior` needs a D x D
        scale, which the scalar-scale models take as its trace over D). ``"all"`` then means the 10
        models mclust defines the prior for; the log-likelihood, BIC and ICL are the data's at the MAP
        estimate, as mclust reports them.
    missing : {"error", "marginalize"}
        "marginalize": NaN in X are missing values, marginalised exactly (see :class:`GaussianMixture`);
        the log-likelihood is then the observed data's and BIC's n the number of rows (the sum of
        the weights).
    noise : bool
        Add mclust's uniform noise component to every cell (see :class:`GaussianMixture`): its weight
        is estimated with the others, and it counts 2 parameters (its weight and the hypervolume), as
        mclust counts them.
    noise_init : array-like of bool of shape (n_samples,), optional
        Initial noise points (implies ``noise``), as mclust's ``Mclust(X, initialization = list(noise =
        ...))``: every cell's Gaussian components start from the other rows (the hierarchical start
        runs on them only) and the noise weight from the mask's share.

    Notes
    -----
    A grid point whose every restart has a collapsed component (for example one sitting on a value
    that the data repeat, as rounded measurements do) is marked ``degenerate`` and not chosen; a
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
    ks = _component_grid(n_components)
    if criterion not in ("bic", "aic", "icl"):
        raise ValueError(f"criterion must be 'bic', 'aic' or 'icl', got {criterion!r}")
    if init_params not in INIT_METHODS:
        raise ValueError(f"init_params must be one of {INIT_METHODS}, got {init_params!r}")
    template = GaussianMixture(n_components=ks[-1], n_init=n_init, tol=tol, max_iter=max_iter, reg_covar=reg_covar,
                               random_state=random_state, chunk_size=chunk_size)
    template._validate_params()
    if missing not in ("error", "marginalize"):
        raise ValueError(f"missing must be 'error' or 'marginalize', got {missing!r}")
    X_arr, w = check_fit_data(template, X, sample_weight, ks[-1], allow_nan=missing == "marginalize")
    has_nan = missing == "marginalize" and check_missing(X_arr)
    noise_mask = check_noise_init(noise_init, X_arr.shape[0], w)
    use_noise = bool(noise) or noise_mask is not None
    if has_nan and use_noise:
        raise ValueError("noise and missing values together are not supported: the noise component's "
                         "hypervolume needs complete rows; drop or impute the NaN, or select without noise")
    X_start = mean_imputed(X_arr, w) if has_nan else X_arr  # what the hierarchical start and the prior see
    n_total, n_features = float(w.sum()), X_arr.shape[1]
    n_rows = int(np.count_nonzero(w))  # for the overparameterised flag: scale-free in the weights
    try:
        names = expand_models(covariance_types, n_features)
    except ValueError:
        names = ()
    if prior is not None and "all" in ((covariance_types,) if isinstance(covariance_types, str) else covariance_types):
        names = tuple(name for name in names if get_model(name).name in PRIOR_MODELS)
    if not names:
        raise ValueError("covariance_types must be a non-empty subset of the model names, 'all' or 'sklearn'; "
                         f"got {covariance_types!r}")
    for name in names if prior is not None else ():
        resolve_prior_model(name)
    k_max = ks[-1]
    masks = jnp.asarray(np.arange(k_max)[None, :] < np.array(ks)[:, None])
    rows, fits = [], {}
    with precision_scope(X_arr.dtype):
        chunk = chunk_size or default_chunk_size(len(ks) * n_init)
        mesh = data_mesh(X_arr.shape[0])
        Xc, wc = chunk_rows(X_arr, w, chunk, mesh)
        dtype = X_arr.dtype
        labels = None
        if init_params == "hc":
            partitions = hc_partitions(X_start, ks, random_state, noise_mask)
            labels = jnp.stack([chunk_labels(partitions[:, i], wc) for i in range(len(ks))])
        noise_args, box = {}, None
        if use_noise:
            box = hypervolume_box(X_arr, w)
            noise_args["noise_log_density"] = jnp.asarray(-box.log_volume, dtype)
            if noise_mask is not None:
                noise_args["noise_init"] = chunk_labels(noise_mask.astype(np.int32), wc) == 1
        data_var = jnp.asarray(column_moments(X_arr, w, ignore_nan=has_nan)[1], dtype)
        priors = None
        if prior is not None:
            per_k = [resolve_prior(prior, X_start, k, "VVV" if n_features > 1 else "V", w) for k in ks]
            priors = jax.tree_util.tree_map(lambda *v: jnp.asarray(np.stack(v), dtype), *per_k)
        family = tuple(names)
        keys = jax.random.split(key_from_random_state(random_state), len(names))
        for index, (key, name) in enumerate(zip(keys, names)):
            model = get_model(name)
            result, loglik, map_log_resp, degenerate = jax.device_get(_fit_grid(
                jax.random.split(key, len(ks)), Xc, wc, masks, jnp.asarray(tol, dtype),
                jnp.asarray(reg_covar, dtype), iteration_limit(max_iter), jnp.asarray(index, jnp.int32), labels, data_var,
                priors, covariance_type=family, init_method=init_params, n_init=n_init, trace_len=trace_length(max_iter),
                mesh=mesh, missing=has_nan, **noise_args))
            for i, k in enumerate(ks):
                p = model.n_parameters(k, n_features) + (NOISE_PARAMETERS if use_noise else 0)
                bic = -2 * loglik[i] + p * math.log(n_total)
                rows.append({"covariance_type": name, "n_components": k, "log_likelihood": float(loglik[i]),
                             "n_parameters": p, "aic": -2 * loglik[i] + 2 * p, "bic": bic,
                             "icl": bic - 2 * map_log_resp[i], "converged": bool(result.converged[i]),
                             "n_iter": int(result.n_iter[i]), "degenerate": bool(degenerate[i]),
                             "overparameterised": overparameterised(p, result.params.weights[i][:k], n_rows,
                                                                    n_features)})
                fits[name, k] = jax.tree_util.tree_map(lambda leaf: leaf[i], result)
    table = pd.DataFrame(rows)
    ct, k = _choose(table, criterion)
    best = GaussianMixture(n_components=k, covariance_type=ct, n_init=n_init, tol=tol, max_iter=max_iter,
                           reg_covar=reg_covar, init_params=init_params, random_state=random_state,
                           chunk_size=chunk_size, prior=prior, missing=missing, noise=bool(noise),
                           noise_init=noise_init)
    with precision_scope(X_arr.dtype):
        _install_fit(best, fits[ct, k], X, k, box)
    return SelectionResult(table=table, best_=best, criterion=criterion)


def _component_grid(n_components) -> list[int]:
    """The sorted distinct K of ``n_components`` (an integer, as mclust's ``G = 3``, or a collection of
    integers >= 1); anything else is a ValueError that says what was given."""
    def is_int(k) -> bool:
        return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))

    values = [n_components] if is_int(n_components) else (
        list(n_components) if isinstance(n_components, Iterable) and not isinstance(n_components, (str, bytes))
        else None)
    if not values or not all(is_int(k) and k >= 1 for k in values):
        raise ValueError(f"n_components must be an integer >= 1 or a non-empty collection of them, got {n_components!r}")
    return sorted({int(k) for k in values})


def smallest_variance_ratio(params: GMMParams, k: int, data_var: np.ndarray) -> float:
    """Smallest variance along any direction of the first ``k`` components, in units of the data's
    per-feature variance ``data_var`` (shape (n_features,)): min_k lambda_min(S^-1/2 Sigma_k S^-1/2),
    computed as 1 / lambda_max of the standardised precision S^1/2 P_k S^1/2 (no inverse)."""
    form = get_model(params.covariance_type).form
    with jax.enable_x64(True):
        chol = jnp.asarray(np.asarray(params.precisions_cholesky, np.float64))
        largest = np.asarray(form.standardised_precision_max(chol, jnp.asarray(np.asarray(data_var, np.float64))))
    largest = float(np.max(largest if not form.per_component else largest[:k]))
    return float(1.0 / largest) if np.isfinite(largest) and largest > 0 else 0.0


def overparameterised(n_parameters: int, weights, n_rows: int, n_features: int) -> bool:
    """True when a fit has more free parameters than ``n_rows``, or a component (``weights``, shape (K,))
    has fewer than D + 1 effective points (weight times ``n_rows``)."""
    points = np.asarray(weights, np.float64) * n_rows
    return bool(n_parameters > n_rows or np.min(points) < (n_features + 1) * (1 - 1e-6))


#: The table's flags of a fit that is not chosen while a fit without them is finite.
REJECTED_FLAGS = ("degenerate", "overparameterised")


def rejected(table: pd.DataFrame) -> pd.Series:
    """Per row: any of :data:`REJECTED_FLAGS` set (the columns the table has)."""
    flags = [table[name].astype(bool) for name in REJECTED_FLAGS if name in table]
    return functools.reduce(lambda a, b: a | b, flags, pd.Series(False, index=table.index))


def chosen_row(table: pd.DataFrame, criterion: str) -> pd.Series | None:
    """The row with the lowest finite criterion among the fits that are neither ``degenerate`` nor
    ``overparameterised`` (among all finite fits when every one is flagged or the table has no such
    columns); None when no value is finite."""
    finite = table[np.isfinite(table[criterion].astype(float))]
    if finite.empty:
        return None
    sound = finite[~rejected(finite)]
    finite = finite if sound.empty else sound
    return finite.loc[finite[criterion].idxmin()]


def _flag_words(row: pd.Series) -> str:
    return " and ".join({"degenerate": "a collapsed component (a spike on repeated values)",
                         "overparameterised": "more parameters than the data support (more than the rows, or a "
                                              "component with fewer than D + 1 effective points)"}[name]
                        for name in REJECTED_FLAGS if bool(row.get(name, False)))


def _choose(table: pd.DataFrame, criterion: str) -> tuple[str, int]:
    """:func:`chosen_row` as (covariance_type, n_components); warns when a degenerate fit had the lowest
    value, or when every fit is degenerate."""
    best = chosen_row(table, criterion)
    if best is None:
        raise ValueError("every fit in the grid failed with non-finite values; try a larger reg_covar")
    if best["degenerate"]:
        warnings.warn("every fit in the grid has a collapsed component (is a column constant or nearly so?); "
                      "choosing among them anyway", UserWarning, stacklevel=3)
    elif bool(best.get("overparameterised", False)):
        warnings.warn("every fit in the grid has more parameters than the data support (more than the rows, or a "
                      "component with fewer than D + 1 effective points); choosing among them anyway: try fewer "
                      "components or a simpler covariance model", UserWarning, stacklevel=3)
    finite = table[np.isfinite(table[criterion])]
    lowest = finite.loc[finite[criterion].idxmin()]
    if lowest.name != best.name:
        warnings.warn(f"{lowest['covariance_type']} with {int(lowest['n_components'])} components has the lowest "
                      f"{criterion.upper()} ({lowest[criterion]:.2f}) but {_flag_words(lowest)}; it is not chosen. "
                      f"Chosen: {best['covariance_type']} with "
                      f"{int(best['n_components'])} components ({best[criterion]:.2f})", UserWarning, stacklevel=3)
    return str(best["covariance_type"]), int(best["n_components"])


def _install_fit(estimator: GaussianMixture, result: em.EMResult, X, k: int, box=None) -> None:
    """Set the fitted attributes of ``estimator`` from one grid point (stored in the full form),
    dropping the padded components and converting to the model's own form; ``box``: the noise
    component's (:func:`bayesgmm.noise.hypervolume_box`), when the grid has one."""
    check_fit_data(estimator, X, None, k, allow_nan=estimator.missing == "marginalize")  # n_features_in_, feature_names_in_
    p = result.params
    form = get_model(estimator.covariance_type).form
    covariances = form.from_full(FULL.covariances(jnp.asarray(p.precisions_cholesky[:k])))
    if p.noise_weight is None:
        weights = p.weights[:k] / np.sum(p.weights[:k])
        params = GMMParams(weights, p.means[:k], form.precisions_cholesky(covariances), estimator.covariance_type)
    else:
        total = np.sum(p.weights[:k]) + p.noise_weight
        params = GMMParams(p.weights[:k] / total, p.means[:k], form.precisions_cholesky(covariances),
                           estimator.covariance_type, noise_weight=p.noise_weight / total)
        estimator._set_noise_box(box)
    estimator._set_params(params, p.means.dtype)
    estimator.converged_ = bool(result.converged)
    estimator.n_iter_ = int(result.n_iter)
    estimator.lower_bound_ = float(result.lower_bound)
    estimator.lower_bounds_ = [float(v) for v in result.lower_bounds[: estimator.n_iter_]]


@functools.partial(jax.jit, static_argnames=("covariance_type", "init_method", "n_init", "trace_len", "mesh",
                                             "missing"))
def _fit_grid(keys, X, sample_weight, masks, tol, reg_covar, max_iter, model_index, labels, data_var, priors, *,
              covariance_type, init_method, n_init, trace_len, mesh, missing=False, noise_log_density=None,
              noise_init=None):
    """Fit every grid point (a mask over the padded components) of one model of ``covariance_type``
    (a tuple of names; ``model_index`` picks one) at once.

    Returns the best EM result per grid point (restarts without a collapsed component preferred),
    the total weighted log-likelihood of its final parameters, sum_n w_n log max_k r_nk (for ICL),
    and whether it is :func:`~bayesgmm.em.degenerate`. ``labels`` (hierarchical starts) and
    ``priors`` (MAP-EM) have a leading grid axis, or are None. ``noise_log_density`` and
    ``noise_init`` add a noise component to every grid point (see :func:`bayesgmm.em.fit`).
    """
    no_init = {"weights": None, "means": None, "precisions_cholesky": None}
    total_weight = jnp.sum(sample_weight)

    def one(key, mask, init_labels, prior):
        best, _ = em.fit(key, X, sample_weight, mask, tol, reg_covar, max_iter, -jnp.inf, no_init,
                         covariance_type=covariance_type, init_method=init_method, n_init=n_init, trace_len=trace_len,
                         mesh=mesh, model_index=model_index, init_labels=init_labels, data_var=data_var, prior=prior,
                         missing=missing, noise_log_density=noise_log_density, noise_init=noise_init)
        log_prob, log_resp = em.e_step_chunks(X, sample_weight, best.params, missing)
        loglik = jnp.sum(sample_weight * log_prob)
        map_log_resp = jnp.sum(sample_weight * jnp.max(log_resp, axis=-1))
        return best, loglik, map_log_resp, em.degenerate(best.params, mask, total_weight, data_var, model_index,
                                                         prior is None)

    return jax.vmap(one)(keys, masks, labels, priors)
