"""The parameter pytree shared by EM, model selection and the Bayesian models."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from bayesgmm.covariance import SKLEARN_TYPES as COVARIANCE_TYPES  # noqa: F401 (kept importable here)
from bayesgmm.covariance import CovarianceType, form_of


def pad_components(values, n_components: int, zeros: bool = False) -> np.ndarray:
    """Per-component ``values`` (K, ...) extended along the first axis to ``n_components``: with zeros
    (weights), else with copies of the last component (means, precision factors), so every value stays
    valid. Unchanged when there are that many already."""
    values = np.asarray(values)
    extra = n_components - values.shape[0]
    if extra <= 0:
        return values
    tail = np.zeros((extra, *values.shape[1:]), values.dtype) if zeros else np.repeat(values[-1:], extra, axis=0)
    return np.concatenate([values, tail])


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
    noise_weight : scalar array or None
        With a uniform noise component (mclust's noise, :mod:`bayesgmm.noise`): its mixture weight;
        ``weights`` then sum to ``1 - noise_weight``. None: no noise component (the default). Whether
        it is None is part of the tree structure, so it is a static flag of a compiled program.
    noise_log_density : scalar array or None
        log(1 / V), the noise component's log density over the hypervolume V (traced, so another V
        compiles nothing); None exactly when ``noise_weight`` is None.
    """

    weights: jax.Array
    means: jax.Array
    precisions_cholesky: jax.Array
    covariance_type: CovarianceType = dataclasses.field(default="full", metadata={"static": True})
    noise_weight: jax.Array | None = None
    noise_log_density: jax.Array | None = None

    def replace(self, **changes) -> "GMMParams":
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)

    def padded(self, n_components: int) -> "GMMParams":
        """Host copy with components appended up to ``n_components`` (:func:`pad_components`); used to
        share a compiled program between nearby K (the padded components are masked)."""
        chol = self.precisions_cholesky
        return self.replace(weights=pad_components(self.weights, n_components, zeros=True),
                            means=pad_components(self.means, n_components),
                            precisions_cholesky=pad_components(chol, n_components)
                            if form_of(self.covariance_type).per_component else chol)

    def first(self, n_components: int) -> "GMMParams":
        """The first ``n_components`` components (dropping masked padding, whose weights are 0)."""
        weights = np.asarray(self.weights)[:n_components]
        chol = np.asarray(self.precisions_cholesky)
        return self.replace(weights=weights, means=np.asarray(self.means)[:n_components],
                            precisions_cholesky=chol[:n_components] if form_of(self.covariance_type).per_component
                            else chol)


jax.tree_util.register_dataclass(
    GMMParams,
    data_fields=["weights", "means", "precisions_cholesky", "noise_weight", "noise_log_density"],
    meta_fields=["covariance_type"],
)
