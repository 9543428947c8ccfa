"""The parameter pytree shared by EM, model selection and the Bayesian models."""

from __future__ import annotations

import dataclasses

import jax

from bayesgmm.covariance import SKLEARN_TYPES as COVARIANCE_TYPES  # noqa: F401 (kept importable here)
from bayesgmm.covariance import CovarianceType


@dataclasses.dataclass(frozen=True)
class GMMParams:
    """Parameters of a Gaussian mixture, with the Cholesky factor of the precision as the stored form.

    Attributes
    ----------
    weights : array of shape (n_components,)
    means : array of shape (n_components, n_features)
    precisions_cholesky : array
        ``P`` with ``precision = P @ P.T``; shape by the model's stored form, as in scikit-learn:
        full (n_components, n_features, n_features), tied (n_features, n_features),
        diag (n_components, n_features), spherical (n_components,).
    covariance_type : str or tuple of str
        A model name (see :func:`bayesgmm.covariance.get_model`). Static (part of the tree
        structure, not a leaf).
    """

    weights: jax.Array
    means: jax.Array
    precisions_cholesky: jax.Array
    covariance_type: CovarianceType = dataclasses.field(default="full", metadata={"static": True})

    def replace(self, **changes) -> "GMMParams":
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)


jax.tree_util.register_dataclass(
    GMMParams,
    data_fields=["weights", "means", "precisions_cholesky"],
    meta_fields=["covariance_type"],
)
