"""EM, NUTS and VI fits of the same data, side by side in one table."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from jax.typing import ArrayLike

from bayesgmm.covariance import n_parameters

COLUMNS = [
    "inference", "n_components", "covariance_type", "log_likelihood", "n_parameters", "aic", "bic",
    "elpd_loo", "elpd_loo_se", "p_loo", "pareto_k_max", "elbo", "r_hat_max", "ess_bulk_min", "n_divergences",
    "fit_time",
]


def _as_array(X: Any) -> np.ndarray:
    return np.asarray(X.to_numpy() if isinstance(X, pd.DataFrame) else X, dtype=np.float64)


def _posterior_columns(fit: Any, X: np.ndarray) -> dict[str, float]:
    """LOO, ELBO and convergence diagnostics of a fitted ``BayesianGaussianMixture``."""
    from arviz_stats import loo, loo_approximate_posterior

    tree = fit.idata_
    columns: dict[str, float] = {"elbo": float(getattr(fit, "elbo_", math.nan)),
                                 "n_divergences": float(fit.n_divergences_) if fit.inference == "nuts" else math.nan}
    diagnostics = fit.summary(var_names=["weights", "means", "covariances"], kind="diagnostics")
    columns["r_hat_max"] = float(diagnostics["r_hat"].max()) if tree["posterior"].sizes["chain"] > 1 else math.nan
    columns["ess_bulk_min"] = float(diagnostics["ess_bulk"].min())
    observed = tree["observed_data"]["obs"].values
    reason = None
    if observed.shape != X.shape or not np.allclose(observed, X):
        reason = "X is not the data the posterior was fitted to"
    elif "log_likelihood" not in tree.children:
        reason = tree.attrs.get("log_likelihood_omitted", "no pointwise log-likelihood")
    if reason is not None:
        warnings.warn(f"{reason}: elpd_loo and p_loo are left out", UserWarning, stacklevel=3)
        return {**columns, "elpd_loo": math.nan, "elpd_loo_se": math.nan, "p_loo": math.nan,
                "pareto_k_max": math.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # high Pareto k is reported in its own column
        if fit.inference == "vi":
            # Draws come from the guide q, not the posterior: correct the importance ratios by p / q.
            stats = tree["sample_stats"]
            result = loo_approximate_posterior(tree, stats["lp"], stats["log_q"], pointwise=True)
        else:
            result = loo(tree, pointwise=True)
    return {**columns, "elpd_loo": float(result.elpd), "elpd_loo_se": float(result.se), "p_loo": float(result.p),
            "pareto_k_max": float(np.max(result.pareto_k.values))}


def compare(fits: Mapping[str, Any], X: ArrayLike, sample_weight: ArrayLike | None = None) -> pd.DataFrame:
    """One row per fitted mixture: fit, complexity, predictive accuracy and sampler health.

    Parameters
    ----------
    fits : mapping of str to fitted estimators
        ``GaussianMixture`` (EM; scikit-learn's or bayesgmm's) and ``BayesianGaussianMixture``
        (NUTS or VI) fits of the same data, e.g. ``{"em": gm, "nuts": bgm, "vi": vgm}``.
    X : array-like of shape (n_samples, n_features)
        The data the models were fitted to.
    sample_weight : array-like of shape (n_samples,), optional
        Weights of the point-estimate log-likelihood (use the weights the models were fitted with).
        A weight counts as that many copies of its row, so BIC's ``log n`` is the log of the weights'
        sum, as in :func:`bayesgmm.select`.

    Returns
    -------
    pandas.DataFrame
        Indexed by the keys of ``fits``, with columns

        - ``inference``: "em", "nuts" or "vi"; ``n_components``; ``covariance_type``
        - ``log_likelihood``: at the point estimate (EM: the maximum-likelihood fit; Bayesian fits:
          the posterior means of weights, means and covariances)
        - ``n_parameters``, ``aic`` (``-2 log L + 2 p``), ``bic`` (``-2 log L + p log n``, n the
          number of rows or, with ``sample_weight``, the weights' sum)
        - ``elpd_loo``, ``elpd_loo_se``, ``p_loo``, ``pareto_k_max``: PSIS-LOO (posteriors only; VI
          draws are importance-corrected by ``p / q`` with ``arviz.loo_approximate_posterior``;
          NaN, with a warning, when the fit left its pointwise log-likelihood out for size)
        - ``elbo``: VI only
        - ``r_hat_max``, ``ess_bulk_min``: over weights, means and covariances after relabelling
          (R-hat needs several chains, so NUTS only)
        - ``n_divergences``: NUTS only
        - ``fit_time``: seconds, compilation included (NaN when the estimator does not record it)

        A column that does not apply to a fit is NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.estimators import GaussianMixture
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> table = compare({"em1": GaussianMixture(1).fit(X), "em2": GaussianMixture(2, random_state=0).fit(X)}, X)
    >>> int(table.loc["em1", "n_parameters"]), bool(table.loc["em1", "bic"] < table.loc["em2", "bic"])
    (5, True)
    """
    if not isinstance(fits, Mapping) or not fits:
        raise TypeError(f"fits must be a non-empty mapping of names to fitted estimators, e.g. {{'em': gm}}; "
                        f"got {type(fits).__name__}")
    X_np = _as_array(X)
    n_samples, n_features = X_np.shape
    w = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    n_total = float(w.sum())  # select's n: a weight of 2 is a duplicated row
    rows = {}
    for name, fit in fits.items():
        bayesian = hasattr(fit, "idata_")
        k, covariance_type = int(fit.n_components), str(fit.covariance_type)
        log_lik = float(np.sum(w * fit.point_score_samples(X))) if bayesian else float(
            np.sum(w * fit.score_samples(X)))
        p = n_parameters(covariance_type, k, n_features)
        row: dict[str, Any] = {
            "inference": fit.inference if bayesian else "em",
            "n_components": k,
            "covariance_type": covariance_type,
            "log_likelihood": log_lik,
            "n_parameters": p,
            "aic": -2.0 * log_lik + 2.0 * p,
            "bic": -2.0 * log_lik + p * math.log(n_total),
            "fit_time": float(getattr(fit, "fit_time_", math.nan)),
        }
        if bayesian:
            row.update(_posterior_columns(fit, X_np))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").reindex(columns=COLUMNS)
