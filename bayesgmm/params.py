"""The parameter pytree shared by EM, model selection and the Bayesian models."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from bayesgmm.covariance import SKLEARN_TYPES as COVARIANCE_TYPES  # noqa: F401 (kept importable here)
from bayesgmm.covariance import CovarianceType, form_of


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

    def padded(self, n_components: int) -> "GMMParams":
        """Host copy with components appended up to ``n_components``: weight 0, the last component's
        mean and precision factor (so every value stays valid); used to share a compiled program
        between nearby K (the padded components are masked)."""
        extra = n_components - np.shape(self.means)[0]

        def pad(a):
            a = np.asarray(a)
            return np.concatenate([a, np.repeat(a[-1:], extra, axis=0)]) if extra > 0 else a

        chol = pad(self.precisions_cholesky) if form_of(self.covariance_type).per_component else self.precisions_cholesky
        weights = np.concatenate([np.asarray(self.weights), np.zeros(max(extra, 0), np.asarray(self.weights).dtype)])
        return self.replace(weights=weights, means=pad(self.means), precisions_cholesky=chol)

    def first(self, n_components: int) -> "GMMParams":
        """The first ``n_components`` components (dropping masked padding, whose weights are 0)."""
        weights = np.asarray(self.weights)[:n_components]
        chol = np.asarray(self.precisions_cholesky)
        return self.replace(weights=weights, means=np.asarray(self.means)[:n_components],
                            precisions_cholesky=chol[:n_components] if form_of(self.covariance_type).per_component
                            else chol)


jax.tree_util.register_dataclass(
    GMMParams,
    data_fields=["weights", "means", "precisions_cholesky"],
    meta_fields=["covariance_type"],
)
