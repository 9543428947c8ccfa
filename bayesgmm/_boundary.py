"""The host-side boundary under every estimator: input validation, per-feature moments, the float64
scope, seed -> key. Imports nothing of bayesgmm, so any module may use it."""

from __future__ import annotations

import contextlib
import warnings

import jax
import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, validate_data


def precision_scope(dtype) -> contextlib.AbstractContextManager:
    """float64 work is done inside a scoped ``jax.enable_x64``; float32 leaves JAX's settings alone."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


def trace_length(max_iter: int) -> int:
    """Static length of the per-iteration lower-bound trace: a power of two >= max_iter (at least 128)."""
    return max(128, 1 << max(0, int(max_iter) - 1).bit_length())


def key_from_random_state(random_state) -> jax.Array:
    """A JAX key derived from scikit-learn's ``random_state`` (None, int or RandomState)."""
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    return jax.random.key(seed)


def check_fit_data(estimator, X, sample_weight, n_components: int, reset: bool = True):
    """Validate X (2-D, finite, numeric, enough rows) and sample_weight (non-negative, positive sum).

    Returns copies as numpy arrays of X's float dtype; nothing the user gave is modified.
    """
    X = validate_data(estimator, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=reset)
    if X.shape[0] < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = {n_components}, n_samples = {X.shape[0]}"
        )
    if X.dtype == np.float32:
        _warn_float32_precision(X)
    sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
    if not np.all(np.isfinite(sample_weight)) or sample_weight.sum() <= 0:
        raise ValueError("sample_weight must be finite with a positive sum")
    return X, sample_weight


class PrecisionWarning(UserWarning):
    """float32 data whose offset dwarfs its spread: few significant digits of the spread survive."""


def column_moments(X: np.ndarray, sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and variance of each feature, in float64 over blocks of rows, so that no
    float64 copy of the data is made (host, numpy).

    Returns
    -------
    mean, variance : arrays of shape (n_features,)
    """
    block = 1 << 16
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    total = X.shape[0] if w is None else w.sum()

    def weighted_sum(start: int, values: np.ndarray) -> np.ndarray:
        return values.sum(axis=0) if w is None else w[start:start + block] @ values

    starts = range(0, X.shape[0], block)
    mean = sum(weighted_sum(i, X[i:i + block].astype(np.float64)) for i in starts) / total
    variance = sum(weighted_sum(i, (X[i:i + block] - mean) ** 2) for i in starts) / total
    return mean, variance


def _warn_float32_precision(X: np.ndarray) -> None:
    """Warn when a float32 column's |mean| / std leaves fewer than ~3 significant digits of its spread.

    The EM core itself never cancels (it works on differences from the means), but the input values
    are already rounded to float32: a column at 1e6 with unit spread is stored to 1/16.
    """
    mean, variance = column_moments(X)
    std = np.sqrt(variance)
    ratio = np.abs(mean) / np.where(std > 0, std, np.inf)
    digits = -np.log10(np.maximum(ratio * np.finfo(np.float32).eps, 1e-30))
    worst = int(np.argmax(ratio))
    if digits[worst] < 3:
        warnings.warn(
            f"X is float32 and column {worst} has |mean| / std = {ratio[worst]:.3g}: only about "
            f"{max(digits[worst], 0):.1f} significant digits of its spread survive in float32. "
            "Pass float64 data, or subtract the column means first.",
            PrecisionWarning,
        )
