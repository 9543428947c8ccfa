"""Package mixture draws as an ArviZ 1.x ``DataTree`` with named dimensions.

Variables carry scikit-learn's names without the trailing underscore, so ``weights``, ``means`` and
``covariances`` mean the same in :class:`~bayesgmm.estimators.GaussianMixture` and in the posterior.

Dimensions: ``component`` (coordinates ``0..K-1``), ``feature`` (column names of a DataFrame, else
``0..D-1``), ``feature_bis`` (a second copy of ``feature`` for the columns of a covariance matrix),
``obs_id`` (row position) and, in the ``label_invariant`` group, ``rank`` (weights sorted in
decreasing order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from arviz_base import from_dict
from xarray import DataTree

from bayesgmm.bayes.models import CovarianceType, MixtureDraws
from bayesgmm.covariance import form_of


def to_datatree(
    draws: MixtureDraws,
    covariance_type: CovarianceType,
    *,
    X: np.ndarray,
    log_likelihood: np.ndarray | None,
    feature_names: Sequence[Any] | None = None,
    sample_stats: Mapping[str, np.ndarray] | None = None,
    label_invariant: Mapping[str, np.ndarray] | None = None,
    sample_weight: np.ndarray | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> DataTree:
    """Build the ``DataTree`` of a fitted Bayesian mixture.

    Parameters
    ----------
    draws : MixtureDraws
        Leading axes ``(chain, draw)``, in data units.
    covariance_type : {"full", "tied", "diag", "spherical"}
    X : array of shape (n_samples, n_features)
        The observed data (group ``observed_data``, variable ``obs``).
    log_likelihood : array of shape (chain, draw, n_samples) or None
        Pointwise log-likelihood (group ``log_likelihood``, variable ``obs``), for ``arviz.loo``;
        ``None`` leaves the group out (too large to hold for big data).
    feature_names : sequence of length n_features, optional
        Coordinates of ``feature``; default ``0..D-1``.
    sample_stats : mapping of arrays of shape (chain, draw), optional
        Sampler statistics in ArviZ names (``diverging``, ``energy``, ``step_size``, ...).
    label_invariant : mapping of arrays with leading (chain, draw), optional
        Quantities that do not depend on the labelling (group ``label_invariant``): e.g.
        ``log_lik`` (chain, draw), ``n_occupied`` (chain, draw), ``weights_sorted``
        (chain, draw, rank).
    sample_weight : array of shape (n_samples,), optional
        Stored in ``constant_data``.
    attrs : mapping, optional
        Attributes of the root node.

    Returns
    -------
    xarray.DataTree
        Groups ``posterior``, ``observed_data`` and, when given, ``log_likelihood``,
        ``sample_stats``, ``label_invariant`` and ``constant_data``.
    """
    X = np.asarray(X)
    n_samples, n_features = X.shape
    n_components = np.shape(draws.weights)[-1]
    features = list(range(n_features)) if feature_names is None else list(feature_names)
    coords = {
        "component": np.arange(n_components),
        "feature": features,
        "feature_bis": features,
        "obs_id": np.arange(n_samples),
        "rank": np.arange(n_components),
    }
    dims = {
        "weights": ["component"],
        "means": ["component", "feature"],
        "covariances": list(form_of(covariance_type).covariance_dims),
        "obs": ["obs_id"],
        "weights_sorted": ["rank"],
        "sample_weight": ["obs_id"],
    }
    data: dict[str, dict[str, np.ndarray]] = {
        "posterior": {
            "weights": np.asarray(draws.weights),
            "means": np.asarray(draws.means),
            "covariances": np.asarray(draws.covariances),
        },
    }
    if log_likelihood is not None:
        data["log_likelihood"] = {"obs": np.asarray(log_likelihood)}
    data["observed_data"] = {"obs": X}
    if sample_stats:
        data["sample_stats"] = {name: np.asarray(value) for name, value in sample_stats.items()}
    if label_invariant:
        data["label_invariant"] = {name: np.asarray(value) for name, value in label_invariant.items()}
    if sample_weight is not None:
        data["constant_data"] = {"sample_weight": np.asarray(sample_weight)}
    tree = from_dict(data, coords=coords, dims=dims, attrs={"/": dict(attrs or {})})
    # ``dims`` names only the observation axis of ``obs``; its second axis in observed_data is the feature.
    observed = tree["observed_data"].to_dataset().rename({"obs_dim_0": "feature"})
    tree["observed_data"] = observed.assign_coords(feature=features)
    return tree
