"""The host-side boundary under every estimator: input validation (in scikit-learn's words), array-API
inputs and outputs, per-feature moments, the float64 scope, seed -> key. Imports nothing of bayesgmm,
so any module may use it."""

from __future__ import annotations

import contextlib
import functools
import warnings

import jax
import numpy as np
from sklearn import get_config
from sklearn.utils import check_random_state
from sklearn.utils._array_api import _is_numpy_namespace, get_namespace_and_device, move_to
from sklearn.utils.validation import _check_sample_weight, check_array, validate_data


def atomic_fit(method):
    """Make a fitting method all or nothing: when it raises (bad input, a failed fit, Ctrl-C), the
    estimator's attributes are put back as they were before the call, so no half-fitted estimator
    is left (``n_features_in_`` of new data with the old ``means_``, say)."""
    @functools.wraps(method)
    def fit(self, *args, **kwargs):
        before = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    return fit


def precision_scope(dtype) -> contextlib.AbstractContextManager:
    """float64 work is done inside a scoped ``jax.enable_x64``; float32 leaves JAX's settings alone."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


#: The per-iteration lower-bound trace keeps at most this many iterations.
MAX_TRACE = 1 << 16


def trace_length(max_iter: int) -> int:
    """Static length of the per-iteration lower-bound trace: a power of two >= max_iter (at least 128,
    at most :data:`MAX_TRACE`)."""
    return min(MAX_TRACE, max(128, 1 << max(0, int(max_iter) - 1).bit_length()))


def iteration_limit(max_iter: int) -> jax.Array:
    """``max_iter`` as the traced int32 the compiled loop counts with (larger values mean no limit)."""
    return jax.numpy.asarray(min(int(max_iter), np.iinfo(np.int32).max), jax.numpy.int32)


def key_from_random_state(random_state) -> jax.Array:
    """A JAX key derived from scikit-learn's ``random_state`` (None, int or RandomState)."""
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    return jax.random.key(seed)


def check_table(X) -> None:
    """Refuse, by name, what scikit-learn's validation would fail on deep inside or silently misuse: a
    DataFrame without columns or with non-numeric columns, and a masked array with masked values."""
    columns = getattr(X, "columns", None)
    dtypes = getattr(X, "dtypes", None)
    if columns is not None and dtypes is not None and hasattr(dtypes, "items"):
        if len(columns) == 0:
            raise ValueError("X has no columns: a mixture needs at least one numeric feature")
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        wrong = [f"{name!r} ({dtype})" for name, dtype in dtypes.items()
                 if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype))]
        if wrong:
            raise ValueError(f"X must be numeric, but column(s) {', '.join(wrong)} are not: convert or drop them")
    if np.ma.isMaskedArray(X) and np.ma.is_masked(X):
        raise ValueError("X is a masked array with masked values: bayesgmm does not use masks; "
                         "drop or fill the masked rows")


def check_fit_data(estimator, X, sample_weight, n_components: int, reset: bool = True, allow_nan: bool = False,
                   min_samples: int = 2):
    """Validate X (2-D, finite, numeric, at least ``min_samples`` and ``n_components`` rows) and
    sample_weight (non-negative, positive sum).

    With ``allow_nan`` (``missing="marginalize"``), X may hold NaN for missing values, but no row
    and no column without an observed value (:func:`check_missing`); +-inf is still refused.
    Returns copies as numpy arrays of X's float dtype; nothing the user gave is modified. Array-API
    arrays (under ``array_api_dispatch``) are moved to NumPy first.
    """
    check_table(X)
    if isinstance(n_components, (bool, np.bool_)):
        raise ValueError(f"The 'n_components' parameter must be an int in the range [1, inf), got {n_components!r}")
    X = validate_data(estimator, to_numpy(X), dtype=[np.float64, np.float32], ensure_min_samples=min_samples,
                      reset=reset,
                      ensure_all_finite="allow-nan" if allow_nan else True)
    if X.shape[0] < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = {n_components}, n_samples = {X.shape[0]}"
        )
    sample_weight = _check_sample_weight(to_numpy(sample_weight), X, dtype=X.dtype, ensure_non_negative=True)
    if not np.all(np.isfinite(sample_weight)) or sample_weight.sum() <= 0:
        raise ValueError("sample_weight must be finite with a positive sum")
    missing = allow_nan and check_missing(X, sample_weight)
    if X.dtype == np.float32:
        _warn_float32_precision(X, missing)
    return X, sample_weight


def finite_rule(missing: str) -> bool | str:
    """scikit-learn's ``ensure_all_finite`` for an estimator's ``missing`` option."""
    return "allow-nan" if missing == "marginalize" else True


def check_missing(X: np.ndarray, sample_weight: np.ndarray | None = None) -> bool:
    """Whether validated X (NaN allowed) has missing values; a ValueError naming them when a row
    has no observed value, or a feature none among the rows of positive weight (its mean and
    variance would be undefined)."""
    nan = np.isnan(X)
    if not nan.any():
        return False
    empty = np.flatnonzero(nan.all(axis=1))
    if empty.size:
        shown = ", ".join(str(i) for i in empty[:10]) + (f", ... ({empty.size} rows)" if empty.size > 10 else "")
        raise ValueError(f"X has rows with no observed value: row {shown}. missing='marginalize' needs at least "
                         "one observed value per row; drop those rows")
    weight = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    unseen = np.flatnonzero((weight[:, None] * ~nan).sum(axis=0) <= 0)
    if unseen.size:
        raise ValueError(f"X has features with no observed value (among the rows of positive weight): column "
                         f"{', '.join(str(j) for j in unseen)}; drop them")
    return True


def mean_imputed(X: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """A copy of X with each NaN replaced by its feature's weighted mean over the observed values
    (host): what host-side starts (the hierarchical agglomeration) and the conjugate prior's data
    moments see when values are missing."""
    mean = column_moments(X, sample_weight, ignore_nan=True)[0]
    return np.where(np.isnan(X), mean.astype(X.dtype), X)


# ------------------------------------------------------------------ arrays through the array API


def namespace_of(array) -> tuple | None:
    """``(xp, device)`` of an array-API array (array-api-strict, JAX, PyTorch, CuPy) given while
    scikit-learn's ``array_api_dispatch`` is on: the estimators return their arrays there, as
    scikit-learn does. None otherwise (dispatch off, NumPy arrays, lists, DataFrames): NumPy out.
    """
    if not get_config()["array_api_dispatch"] or array is None or isinstance(array, np.ndarray):
        return None
    xp, is_array_api, device = get_namespace_and_device(array)
    return None if not is_array_api or _is_numpy_namespace(xp) else (xp, device)


def to_numpy(array):
    """An array-API array (see :func:`namespace_of`) copied to a NumPy array on the host; anything
    else unchanged, for scikit-learn's validation to convert (or refuse) as usual."""
    return array if namespace_of(array) is None else move_to(array, xp=np, device="cpu")


def to_namespace(namespace: tuple | None, array):
    """A NumPy array moved to ``namespace = (xp, device)`` (from :func:`namespace_of`); unchanged for None."""
    if namespace is None or array is None:
        return array
    xp, device = namespace
    return move_to(array, xp=xp, device=device)


# ------------------------------------------------------------------ user-given starting parameters
# scikit-learn's words (sklearn/mixture/_gaussian_mixture.py), after the argument's name, so that
# code and tests written for scikit-learn's GaussianMixture match them.


def check_weights_init(weights, n_components: int) -> np.ndarray:
    """``weights_init``: shape (n_components,), in [0, 1], summing to 1 within 1e-8 (1e-6 in float32)."""
    w = check_array(to_numpy(weights), dtype=[np.float64, np.float32], ensure_2d=False, input_name="weights_init")
    _check_shape("weights_init", w, (n_components,), "weights")
    if np.any(w < 0) or np.any(w > 1):
        raise ValueError(f"weights_init: The parameter 'weights' should be in the range [0, 1], but got min value "
                         f"{w.min():.5f}, max value {w.max():.5f}")
    atol = 1e-6 if w.dtype == np.float32 else 1e-8
    if not abs(1.0 - float(w.sum())) <= atol:
        raise ValueError(f"weights_init: The parameter 'weights' should be normalized, but got sum(weights) = "
                         f"{w.sum():.5f} (within {atol:g} of 1 is required)")
    return w


def check_means_init(means, n_components: int, n_features: int) -> np.ndarray:
    """``means_init``: finite, of shape (n_components, n_features)."""
    m = check_array(to_numpy(means), dtype=[np.float64, np.float32], ensure_2d=False, input_name="means_init")
    _check_shape("means_init", m, (n_components, n_features), "means")
    return m


def check_precisions_init(precisions, covariance_type: str, shape: tuple, matrix: bool) -> np.ndarray:
    """``precisions_init`` of ``shape``: symmetric positive-definite matrices if ``matrix``, else positive."""
    p = check_array(to_numpy(precisions), dtype=[np.float64, np.float32], ensure_2d=False, allow_nd=True,
                    input_name="precisions_init")
    name = f"{covariance_type} precision"
    _check_shape("precisions_init", p, shape, name)
    if matrix:
        if not (np.allclose(p, np.swapaxes(p, -1, -2)) and np.all(np.linalg.eigvalsh(p) > 0)):
            raise ValueError(f"precisions_init: '{name}' should be symmetric, positive-definite")
    elif np.any(p <= 0):
        raise ValueError(f"precisions_init: '{name}' should be positive")
    return p


def _check_shape(argument: str, array: np.ndarray, shape: tuple, name: str) -> None:
    if array.shape != tuple(shape):
        raise ValueError(f"{argument}: The parameter '{name}' should have the shape of {tuple(shape)}, but got "
                         f"{array.shape}")


def check_n_samples(n_samples) -> int:
    """The number of draws for ``sample``: an integer >= 1."""
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires at least one sample.")
    return int(n_samples)


def ill_defined_covariance_error(dtype) -> ValueError:
    """The error of a fit whose covariances broke down (non-finite values), in scikit-learn's words."""
    message = ("Fitting the mixture model failed because some components have ill-defined empirical covariance "
               "(for instance caused by singleton or collapsed samples). Try to decrease the number of "
               "components, increase reg_covar, or scale the input data.")
    if np.dtype(dtype) == np.float32:
        message += " The numerical accuracy can also be improved by passing float64 data instead of float32."
    return ValueError(message + " (EM produced non-finite values.)")


class PrecisionWarning(UserWarning):
    """float32 data whose offset dwarfs its spread: few significant digits of the spread survive."""


def column_moments(X: np.ndarray, sample_weight: np.ndarray | None = None,
                   ignore_nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and variance of each feature, in float64 over blocks of rows, so that no
    float64 copy of the data is made (host, numpy). With ``ignore_nan``, each feature's over its
    observed (non-NaN) values.

    Returns
    -------
    mean, variance : arrays of shape (n_features,)
    """
    block = 1 << 16
    if ignore_nan:
        return _observed_column_moments(X, sample_weight, block)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    total = X.shape[0] if w is None else w.sum()

    def weighted_sum(start: int, values: np.ndarray) -> np.ndarray:
        return values.sum(axis=0) if w is None else w[start:start + block] @ values

    starts = range(0, X.shape[0], block)
    mean = sum(weighted_sum(i, X[i:i + block].astype(np.float64)) for i in starts) / total
    variance = sum(weighted_sum(i, (X[i:i + block] - mean) ** 2) for i in starts) / total
    return mean, variance


def _observed_column_moments(X: np.ndarray, sample_weight: np.ndarray | None, block: int):
    """:func:`column_moments` over each feature's observed values."""
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    starts = range(0, X.shape[0], block)

    def weighted_sums(start: int, center: np.ndarray, power: int) -> tuple[np.ndarray, np.ndarray]:
        """(sum of the weights of the observed entries, sum of w (x - center)^power over them)."""
        values = X[start:start + block].astype(np.float64) - center
        observed = ~np.isnan(values)
        weight = w[start:start + block, None] * observed
        return weight.sum(axis=0), (weight * np.where(observed, values, 0.0) ** power).sum(axis=0)

    zero = np.zeros(X.shape[1])
    first = [weighted_sums(i, zero, 1) for i in starts]
    total = sum(part[0] for part in first)
    mean = sum(part[1] for part in first) / total
    variance = sum(weighted_sums(i, mean, 2)[1] for i in starts) / total
    return mean, variance


def _warn_float32_precision(X: np.ndarray, missing: bool = False) -> None:
    """Warn when a float32 column's |mean| / std leaves fewer than ~3 significant digits of its spread.

    The EM core itself never cancels (it works on differences from the means), but the input values
    are already rounded to float32: a column at 1e6 with unit spread is stored to 1/16.
    """
    mean, variance = column_moments(X, ignore_nan=missing)
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


# Every estimator, select and the model files pass through this module: reaching it turns on the
# persistent compilation cache by default (once; see bayesgmm._cache), also when the caller imported
# bayesgmm.estimators directly rather than through ``bg.<name>``.
from bayesgmm import _start_cache  # noqa: E402

_start_cache()
