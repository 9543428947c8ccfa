"""Save and load fitted models in an open, portable format that never runs code when read.

A model file is a ZIP archive (an ``.npz`` in all but name) holding

* ``bayesgmm.json``: the format name and version, the estimator's class and constructor
  arguments, and every fitted attribute as JSON, with references to the arrays below;
* ``arrays/<n>.npy``: one NumPy ``.npy`` file per array (never an object array).

Arrays are read without pickle and estimator classes come from a fixed list, so loading an
untrusted file cannot execute code. Nor can it exhaust memory or set up a broken model: sizes are
bounded before anything is inflated (``max_bytes`` in all, :data:`MAX_MANIFEST_BYTES` for the
manifest), only the attributes the class's schema names are set, and every array's shape, dtype and
finiteness is checked against the constructor arguments; anything else is a :class:`ModelFileError`.
Saving writes a uniquely named temporary file in the same folder and renames it over ``path``, so
readers and concurrent writers never see a partial file. A round trip gives bit-identical arrays (dtype
included) and hence bit-identical predictions. Posterior draws of a
:class:`~bayesgmm.bayes.estimator.BayesianGaussianMixture` (its ArviZ ``DataTree``, groups,
coordinates and attributes) are stored the same way.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> import bayesgmm as bg
>>> X = np.array([[1.0, 2.0], [1.1, 2.2], [0.9, 1.9], [8.0, 8.0], [8.2, 7.9], [7.9, 8.1]])
>>> gm = bg.GaussianMixture(n_components=2, random_state=0).fit(X)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "model.bgmm"
>>> _ = gm.save(path)
>>> same = bg.load(path)
>>> bool(np.array_equal(same.means_, gm.means_) and np.array_equal(same.predict(X), gm.predict(X)))
True
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import uuid
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import jax
import jax.numpy as jnp
import numpy as np

try:
    import lzma

    _LZMA_ERRORS: tuple[type[Exception], ...] = (lzma.LZMAError,)
except ImportError:  # pragma: no cover (Python built without lzma: zipfile cannot read it either)
    _LZMA_ERRORS = ()

#: ``format`` field of the manifest; a file without it is not a bayesgmm model.
FORMAT = "bayesgmm-model"
#: Version written by this release; files of a newer version are refused.
FORMAT_VERSION = 1
MANIFEST = "bayesgmm.json"
#: Default ``max_bytes`` of :func:`load`: the most bytes a file's members may inflate to, all together.
MAX_BYTES = 1 << 30
#: The most bytes the manifest may inflate to.
MAX_MANIFEST_BYTES = 16 << 20
#: The deepest nesting of lists and objects the manifest may have.
MAX_DEPTH = 64
#: Members are inflated this many bytes at a time, so that a lying size never inflates a bomb at once.
_CHUNK = 1 << 20
#: What reading a damaged archive can raise (zipfile, zlib, bz2, lzma, json and numpy's header parser):
#: ``NotImplementedError`` for an unknown compression method, ``RuntimeError`` for an "encrypted" flag,
#: ``RecursionError`` for deep JSON, ``struct.error`` for short headers.
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
                TypeError, AttributeError, IndexError, StopIteration, RuntimeError, OverflowError,
                struct.error) + _LZMA_ERRORS


class ModelFileError(ValueError):
    """A file that is not a readable bayesgmm model (corrupted, truncated, foreign, hostile or too new)."""


#: The only classes a model file may name, with the modules they live in (imported only when needed,
#: so loading an EM model does not import NumPyro).
ESTIMATOR_CLASSES = {"GaussianMixture": "bayesgmm.estimators",
                     "BayesianGaussianMixture": "bayesgmm.bayes.estimator",
                     "GaussianMixtureRegressor": "bayesgmm.conditional",
                     "GaussianMixtureClassifier": "bayesgmm.classifier"}
RECORD_CLASSES = {"MixtureDraws": "bayesgmm.bayes.models", "StreamState": "bayesgmm.em",
                  "ConjugatePrior": "bayesgmm.prior"}


def _known(value: Any, table: dict[str, str]) -> bool:
    return table.get(type(value).__name__) == type(value).__module__


def _class(name: Any, table: dict[str, str]) -> type | None:
    if not isinstance(name, str) or name not in table:
        return None
    import importlib

    return getattr(importlib.import_module(table[name]), name)


def _is_datatree(value: Any) -> bool:
    return type(value).__name__ == "DataTree" and type(value).__module__.startswith("xarray")


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


# ------------------------------------------------------------------------------------------------
# Schema: the attributes a model file may set on each class, and what each must look like
# ------------------------------------------------------------------------------------------------


class _Invalid(Exception):
    """A decoded value that breaks the schema; the message names it (the decoder adds the file)."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _array(value: Any, where: str, shape: tuple[int | None, ...], dtype: Any = None, kinds: str = "f",
           finite: bool = True) -> np.ndarray:
    """``value`` as a numpy array, checked: dtype (``dtype``, else of ``kinds``; floats are float32 or
    float64), shape (None: any size), and finiteness."""
    if not isinstance(value, (np.ndarray, jax.Array)):
        raise _Invalid(f"{where} is a {type(value).__name__}, not an array")
    arr = np.asarray(value)
    if (arr.dtype != dtype if dtype is not None else
            arr.dtype.kind not in kinds or (arr.dtype.kind == "f" and arr.dtype.itemsize not in (4, 8))):
        raise _Invalid(f"{where} has dtype {arr.dtype}" + (f", expected {np.dtype(dtype)}" if dtype else ""))
    if arr.ndim != len(shape) or any(e is not None and s != e for s, e in zip(arr.shape, shape)):
        raise _Invalid(f"{where} has shape {arr.shape}, expected {_shape_text(shape)}")
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise _Invalid(f"{where} holds NaN or infinite values")
    return arr


def _weights(arr: np.ndarray, where: str) -> None:
    with np.errstate(over="ignore"):  # huge weights sum to inf, and fail the test below
        total = np.sum(arr, axis=-1, dtype=np.float64)
    if np.any(arr < 0) or not np.allclose(total, 1.0, rtol=0, atol=1e-3):
        raise _Invalid(f"{where} must be non-negative and sum to 1")


def _nonsingular(arr: np.ndarray, where: str, form: Any, n_features: int) -> None:
    """A precision-Cholesky factor (or covariance factor) whose log-determinant is finite: no NaN from it."""
    from bayesgmm._boundary import precision_scope

    with precision_scope(arr.dtype):
        ok = bool(np.all(np.isfinite(np.asarray(form.log_det(jnp.asarray(arr), n_features)))))
    if not ok:
        raise _Invalid(f"{where} is singular or has non-positive entries")


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _Invalid(f"{where} must be an integer >= {minimum}, got {_short(value)}")
    return value


def _real(value: Any, where: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _Invalid(f"{where} must be a number, got {_short(value)}")


def _flag(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise _Invalid(f"{where} must be true or false, got {_short(value)}")


def _text(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise _Invalid(f"{where} must be a string, got {_short(value)}")


def _reals(value: Any, where: str) -> None:
    if not isinstance(value, list):
        raise _Invalid(f"{where} must be a list of numbers, got {_short(value)}")
    for i, v in enumerate(value):
        _real(v, f"{where}[{i}]")


def _record(value: Any, where: str, name: str) -> Any:
    if type(value) is not _class(name, RECORD_CLASSES):
        raise _Invalid(f"{where} is a {type(value).__name__}, not a {name}")
    return value


def _feature_names(fitted: dict[str, Any], n_features: int) -> None:
    if "feature_names_in_" in fitted:
        names = fitted["feature_names_in_"]
        _array(names, "feature_names_in_", (n_features,), kinds="O")
        if not all(isinstance(v, str) for v in names):
            raise _Invalid("feature_names_in_ must hold strings")


def _constructor(check_params: Callable[[], None]) -> None:
    try:
        check_params()
    except (ValueError, TypeError) as err:
        raise _Invalid(f"invalid constructor arguments ({err})") from None


def _common(model: Any, fitted: dict[str, Any], check_params: Callable[[], None]) -> tuple[int, int, Any, np.dtype]:
    """Checks both classes share; returns (n_components, n_features, covariance form, float dtype)."""
    from bayesgmm.covariance import get_model

    _constructor(check_params)
    k, d = model.n_components, _int(fitted["n_features_in_"], "n_features_in_", 1)
    form = get_model(model.covariance_type).form
    _feature_names(fitted, d)
    dtype = _array(fitted["means_"], "means_", (k, d)).dtype
    chol = form.chol_shape(k, d)
    for name, shape in {"weights_": (k,), "precisions_cholesky_": chol, "covariances_": chol}.items():
        _array(fitted[name], name, shape, dtype)
    weights = fitted["weights_"]
    if "noise_weight_" in fitted:  # the Gaussian weights and the noise's sum to 1
        _real(fitted["noise_weight_"], "noise_weight_")
        if not 0 <= fitted["noise_weight_"] <= 1:
            raise _Invalid(f"noise_weight_ must be in [0, 1], got {_short(fitted['noise_weight_'])}")
        weights = np.append(np.asarray(weights, np.float64), fitted["noise_weight_"])
    _weights(weights, "weights_" + (" with noise_weight_" if "noise_weight_" in fitted else ""))
    _nonsingular(fitted["precisions_cholesky_"], "precisions_cholesky_", form, d)
    if "fit_time_" in fitted:
        _real(fitted["fit_time_"], "fit_time_")
    return k, d, form, dtype


def _check_gaussian_mixture(model: Any, fitted: dict[str, Any]) -> None:
    k, d, form, dtype = _common(model, fitted, model._validate_params)
    if model.chunk_size is not None:  # prediction uses it; scikit-learn's validation lets True through
        _int(model.chunk_size, "chunk_size", 1)
    _check_noise(model, fitted, d)
    chol = form.chol_shape(k, d)
    for name, shape in {"precisions_": chol, "volumes_": (k,), "shapes_": (k, d), "orientations_": (k, d, d)}.items():
        if name in fitted:
            _array(fitted[name], name, shape, dtype)
    for name, check in {"converged_": _flag, "n_iter_": _int, "lower_bound_": _real, "lower_bounds_": _reals}.items():
        if name in fitted:
            check(fitted[name], name)
    if "_fit_covariance_type" in fitted:  # the fitted model's name: stored in the same form as covariance_type's
        from bayesgmm.covariance import get_model

        fitted_type = fitted["_fit_covariance_type"]
        _text(fitted_type, "_fit_covariance_type")
        try:
            same_form = get_model(fitted_type).form is form
        except ValueError:
            same_form = False
        if not same_form:
            raise _Invalid(f"_fit_covariance_type {_short(fitted_type)} is not stored as covariance_type "
                           f"{model.covariance_type!r} is")
    if "_stream" in fitted:
        stream = _record(fitted["_stream"], "_stream", "StreamState")
        _array(stream.nk, "_stream.nk", (k,), dtype)
        _array(stream.scatter, "_stream.scatter", form.scatter_shape(k, d), dtype)
        _int(int(_array(stream.n_steps, "_stream.n_steps", (), kinds="iu")), "_stream.n_steps")


def _check_noise(model: Any, fitted: dict[str, Any], d: int) -> None:
    """A GaussianMixture's noise component: all of its attributes exactly when the constructor asks for
    one (``noise`` or ``noise_init``), a positive finite hypervolume, and a box of that volume."""
    noise_names = ("noise_weight_", "hypervolume_", "noise_axes_", "noise_bounds_")
    wanted = bool(model.noise) or model.noise_init is not None
    present = [name for name in noise_names if name in fitted]
    if not wanted:
        if present:
            raise _Invalid(f"{present[0]} is set but the model has no noise component (noise=False, noise_init=None)")
        return
    for name in noise_names:
        if name not in fitted:
            raise _Invalid(f"{name} is missing: the model has a noise component (noise or noise_init)")
    volume = fitted["hypervolume_"]
    _real(volume, "hypervolume_")
    if not 0 < volume < math.inf:
        raise _Invalid(f"hypervolume_ must be positive and finite, got {_short(volume)}")
    axes = _array(fitted["noise_axes_"], "noise_axes_", (d, d), np.float64)
    bounds = _array(fitted["noise_bounds_"], "noise_bounds_", (2, d), np.float64)
    if not np.allclose(axes.T @ axes, np.eye(d), atol=1e-8):
        raise _Invalid("noise_axes_ must have orthonormal columns")
    if np.any(bounds[1] <= bounds[0]) or not math.isclose(float(np.sum(np.log(bounds[1] - bounds[0]))),
                                                          math.log(volume), rel_tol=1e-9, abs_tol=1e-9):
        raise _Invalid("noise_bounds_ must be increasing and span a box of volume hypervolume_")


def _check_bayesian_mixture(model: Any, fitted: dict[str, Any]) -> None:
    k, d, form, dtype = _common(model, fitted, model._check_params)
    _array(fitted["n_occupied_posterior_"], "n_occupied_posterior_", (k + 1,), dtype)
    n = _draws(fitted["draws_"], "draws_", k, d, form)
    perms = _array(fitted["relabel_permutations_"], "relabel_permutations_", (None, None, k), kinds="iu")
    if perms.shape[0] * perms.shape[1] != n or np.any(perms < 0) or np.any(perms >= k):
        raise _Invalid(f"relabel_permutations_ must hold {n} permutations of range({k})")
    for name in ("idata_", "idata_raw_"):
        tree = fitted[name]
        if not _is_datatree(tree):
            raise _Invalid(f"{name} is a {type(tree).__name__}, not a DataTree")
        if "posterior" not in tree.children:
            raise _Invalid(f"{name} has no posterior group")
        for var_name, var in tree["posterior"].data_vars.items():
            if var.dims[:2] != ("chain", "draw") or var.shape[0] * var.shape[1] != n:
                raise _Invalid(f"{name}.posterior.{var_name} does not hold the {n} draws of draws_")
            if var.dtype.kind == "f" and not np.all(np.isfinite(var.values)):
                raise _Invalid(f"{name}.posterior.{var_name} holds NaN or infinite values")
    em = fitted["em_"]
    if type(em) is not _class("GaussianMixture", ESTIMATOR_CLASSES):
        raise _Invalid(f"em_ is a {type(em).__name__}, not a GaussianMixture")
    if (em.n_components, em.n_features_in_) != (k, d):
        raise _Invalid(f"em_ has {em.n_components} components and {em.n_features_in_} features, expected {k} and {d}")
    for name in ("n_divergences_", "n_grad_evals_"):
        _int(fitted[name], name)
    if "chain_method_" in fitted:
        _text(fitted["chain_method_"], "chain_method_")
    if fitted["vi_subsample_size_"] is not None:
        _int(fitted["vi_subsample_size_"], "vi_subsample_size_", 1)
    if "elbo_" in fitted:
        _real(fitted["elbo_"], "elbo_")
    if "elbo_trace_" in fitted:
        _array(fitted["elbo_trace_"], "elbo_trace_", (None,), finite=False)
    if "n_components_posterior_" in fitted:
        _gibbs_results(fitted, k, d, form)


def _draws(draws: Any, where: str, k: int, d: int, form: Any) -> int:
    """Check a ``MixtureDraws`` record of ``k`` components; returns its number of draws."""
    draws = _record(draws, where, "MixtureDraws")
    chol = form.chol_shape(k, d)
    weights = _array(draws.weights, f"{where}.weights", (None, k))
    n = weights.shape[0]
    for field, shape in {"means": (n, k, d), "covariances": (n, *chol), "cov_factor": (n, *chol)}.items():
        _array(getattr(draws, field), f"{where}.{field}", shape, weights.dtype)
    _weights(weights, f"{where}.weights")
    _nonsingular(np.asarray(draws.cov_factor), f"{where}.cov_factor", form, d)
    return n


def _gibbs_results(fitted: dict[str, Any], k: int, d: int, form: Any) -> None:
    """The attributes of ``inference="gibbs"`` (:func:`bayesgmm.bayes.gibbs.store_gibbs_results`): the
    posterior on K and the identified clustering, all of whose ``cluster_*`` are None when unidentified."""
    _weights(_array(fitted["n_components_posterior_"], "n_components_posterior_", (k,)), "n_components_posterior_")
    names = [name for name in _GIBBS_ATTRIBUTES if name != "n_components_posterior_"]
    if any(name not in fitted for name in names):
        raise _Invalid(f"a Gibbs posterior needs all of {', '.join(names)}")
    if all(fitted[name] is None for name in names):
        return
    n_clusters = _int(fitted["n_clusters_"], "n_clusters_", 1)
    if n_clusters > k:
        raise _Invalid(f"n_clusters_ is {n_clusters}, more than the {k} components")
    _draws(fitted["cluster_draws_"], "cluster_draws_", n_clusters, d, form)
    _weights(_array(fitted["cluster_weights_"], "cluster_weights_", (n_clusters,)), "cluster_weights_")
    _array(fitted["cluster_means_"], "cluster_means_", (n_clusters, d))
    _array(fitted["cluster_covariances_"], "cluster_covariances_", form.chol_shape(n_clusters, d))
    labels = _array(fitted["cluster_labels_"], "cluster_labels_", (None,), kinds="iu")
    if np.any(labels < 0) or np.any(labels >= n_clusters):
        raise _Invalid(f"cluster_labels_ must lie in range({n_clusters})")
    _real(fitted["cluster_non_permutation_rate_"], "cluster_non_permutation_rate_")


def _gaussian_mixture(value: Any, where: str) -> Any:
    if type(value) is not _class("GaussianMixture", ESTIMATOR_CLASSES):
        raise _Invalid(f"{where} is a {type(value).__name__}, not a GaussianMixture")
    return value


def _check_regressor(model: Any, fitted: dict[str, Any]) -> None:
    _constructor(model._validate_params)
    d = _int(fitted["n_features_in_"], "n_features_in_", 1)
    _feature_names(fitted, d)
    n_targets = _int(fitted["n_targets_"], "n_targets_", 1)
    _flag(fitted["_single_target"], "_single_target")
    if fitted["_single_target"] and n_targets != 1:
        raise _Invalid(f"_single_target is true but n_targets_ = {n_targets}")
    mixture = _gaussian_mixture(fitted["mixture_"], "mixture_")
    if mixture.n_features_in_ != d + n_targets:
        raise _Invalid(f"mixture_ has {mixture.n_features_in_} features, expected n_features_in_ + n_targets_ = "
                       f"{d + n_targets}")
    for name, check in {"converged_": _flag, "n_iter_": _int}.items():
        if name in fitted:
            check(fitted[name], name)


def _check_classifier(model: Any, fitted: dict[str, Any]) -> None:
    _constructor(model._validate_params)
    d = _int(fitted["n_features_in_"], "n_features_in_", 1)
    _feature_names(fitted, d)
    classes = _array(fitted["classes_"], "classes_", (None,), kinds="biufO")
    c = classes.shape[0]
    if c < 2 or len(np.unique(classes)) != c:
        raise _Invalid(f"classes_ must hold at least two distinct labels, got {c}")
    _weights(_array(fitted["priors_"], "priors_", (c,), np.float64), "priors_")
    if np.any(_array(fitted["class_count_"], "class_count_", (c,), np.float64) < 0):
        raise _Invalid("class_count_ must be non-negative")
    models = fitted["models_"]
    if not isinstance(models, list) or len(models) != c:
        raise _Invalid(f"models_ must be a list of {c} GaussianMixture, one per class")
    for i, m in enumerate(models):
        _gaussian_mixture(m, f"models_[{i}]")
        if m.n_features_in_ != d or m.means_.dtype != models[0].means_.dtype:
            raise _Invalid(f"models_[{i}] has {m.n_features_in_} features of {m.means_.dtype}, expected {d} of "
                           f"{models[0].means_.dtype}")
    if fitted["covariance_types_"] != [m.covariance_type for m in models]:
        raise _Invalid("covariance_types_ are not those of models_")
    for name, field in {"n_components_": "n_components", "n_iter_": "n_iter_"}.items():
        values = _array(fitted[name], name, (c,), kinds="iu")
        if values.tolist() != [getattr(m, field) for m in models]:
            raise _Invalid(f"{name} are not those of models_")
    if not _is_dataframe(fitted["selection_table_"]):
        raise _Invalid(f"selection_table_ is a {type(fitted['selection_table_']).__name__}, not a DataFrame")
    for name in ("log_likelihood_", "bic_", "training_error_", "training_brier_", "fit_time_"):
        if name in fitted:
            _real(fitted[name], name)
    _int(fitted["n_parameters_"], "n_parameters_", 1)


def _rebuild_classifier(model: Any) -> None:
    """The classes' components stacked for prediction: derived from ``models_``, not stored."""
    from bayesgmm.classifier import _stack_components

    model._components = _stack_components(model.models_)


@dataclasses.dataclass(frozen=True)
class _Schema:
    """The attributes a model file of one class must hold, those it may hold, their check, and what
    derives the private state a file does not hold (after the attributes are set)."""

    required: frozenset[str]
    optional: frozenset[str]
    check: Callable[[Any, dict[str, Any]], None]
    rebuild: Callable[[Any], None] | None = None

    @property
    def names(self) -> frozenset[str]:
        return self.required | self.optional


_GIBBS_ATTRIBUTES = frozenset({"n_components_posterior_", "n_clusters_", "cluster_weights_", "cluster_means_",
                               "cluster_covariances_", "cluster_labels_", "cluster_draws_",
                               "cluster_non_permutation_rate_"})
_PARAMETERS = frozenset({"n_features_in_", "weights_", "means_", "covariances_", "precisions_cholesky_"})
SCHEMAS = {
    "GaussianMixture": _Schema(
        _PARAMETERS | {"precisions_"},
        frozenset({"feature_names_in_", "volumes_", "shapes_", "orientations_", "converged_", "n_iter_",
                   "lower_bound_", "lower_bounds_", "fit_time_", "_stream", "noise_weight_", "hypervolume_",
                   "noise_axes_", "noise_bounds_", "_fit_covariance_type"}),
        _check_gaussian_mixture),
    "BayesianGaussianMixture": _Schema(
        _PARAMETERS | {"n_occupied_posterior_", "draws_", "relabel_permutations_", "idata_", "idata_raw_", "em_",
                       "n_divergences_", "n_grad_evals_", "vi_subsample_size_"},
        frozenset({"feature_names_in_", "chain_method_", "elbo_", "elbo_trace_", "fit_time_"}) | _GIBBS_ATTRIBUTES,
        _check_bayesian_mixture),
    "GaussianMixtureRegressor": _Schema(
        frozenset({"n_features_in_", "n_targets_", "mixture_", "_single_target"}),
        frozenset({"feature_names_in_", "n_iter_", "converged_"}),
        _check_regressor),
    "GaussianMixtureClassifier": _Schema(
        frozenset({"n_features_in_", "classes_", "priors_", "class_count_", "models_", "covariance_types_",
                   "n_components_", "n_iter_", "selection_table_", "log_likelihood_", "n_parameters_", "bic_",
                   "training_error_", "training_brier_"}),
        frozenset({"feature_names_in_", "fit_time_"}),
        _check_classifier, _rebuild_classifier),
}
"""Per estimator class, the attributes its model files hold (fitted ones end in ``_``; private state such
as ``partial_fit``'s ``_stream`` is named here too). :func:`save` refuses other fitted attributes, so that
every file it writes :func:`load` reads."""


# ------------------------------------------------------------------------------------------------
# Encoding: Python values -> JSON nodes, with arrays set aside
# ------------------------------------------------------------------------------------------------


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, value: Any, where: str) -> dict[str, Any]:
        is_jax = isinstance(value, jax.Array)
        arr = np.asarray(value)
        node: dict[str, Any] = {"__array__": f"arrays/{len(self.arrays)}.npy"}
        if arr.dtype.hasobject:  # scikit-learn keeps feature names as an object array of str
            if not all(isinstance(v, str) for v in arr.flat):
                raise TypeError(f"cannot save {where}: object arrays are not portable unless they hold strings")
            arr, node["object"] = arr.astype(str), True
        if is_jax:
            node["jax"] = True
        self.arrays[node["__array__"]] = arr
        return node

    def value(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
            return int(value)
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, (float, np.floating)):
            value = float(value)
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, (np.ndarray, jax.Array)):
            return self.array(value, where)
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self.value(value.get_state(), where)}
        if isinstance(value, tuple) and _known(value, RECORD_CLASSES):
            fields = {f: self.value(getattr(value, f), f"{where}.{f}") for f in value._fields}
            return {"__namedtuple__": type(value).__name__, "fields": fields}
        if isinstance(value, tuple):
            return {"__tuple__": [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"cannot save {where}: dictionary keys must be strings")
            return {"__dict__": {k: self.value(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if _is_datatree(value):
            return {"__datatree__": self.datatree(value, where)}
        if _is_dataframe(value):
            return {"__dataframe__": self.dataframe(value, where)}
        if isinstance(value, range):
            return {"__range__": [value.start, value.stop, value.step]}
        if _known(value, ESTIMATOR_CLASSES):
            return {"__estimator__": self.estimator(value, where)}
        raise TypeError(f"cannot save {where}: values of type {type(value).__name__} are not supported")

    def variable(self, var: Any, where: str) -> dict[str, Any]:
        return {"dims": list(var.dims), "data": self.array(var.values, where),
                "attrs": self.value(dict(var.attrs), f"{where}.attrs")}

    def datatree(self, tree: Any, where: str) -> dict[str, Any]:
        nodes = {}
        for node in tree.subtree:
            ds = node.to_dataset(inherit=False)
            path = node.path
            nodes[path] = {
                "attrs": self.value(dict(ds.attrs), f"{where}[{path!r}].attrs"),
                "coords": {str(n): self.variable(v, f"{where}[{path!r}].{n}") for n, v in ds.coords.items()},
                "data_vars": {str(n): self.variable(v, f"{where}[{path!r}].{n}") for n, v in ds.data_vars.items()},
            }
        return nodes

    def dataframe(self, frame: Any, where: str) -> dict[str, Any]:
        import pandas as pd

        columns = list(frame.columns)
        if not all(isinstance(c, str) for c in columns):
            raise TypeError(f"cannot save {where}: DataFrame column names must be strings")
        default_index = isinstance(frame.index, pd.RangeIndex) and frame.index.equals(pd.RangeIndex(len(frame)))
        return {"columns": columns, "index": None if default_index else self.array(frame.index.to_numpy(), where),
                "data": [self.array(frame[c].to_numpy(), f"{where}[{c!r}]") for c in columns]}

    def estimator(self, model: Any, where: str) -> dict[str, Any]:
        name = type(model).__name__
        names = SCHEMAS[name].names
        params = {k: self.value(v, f"{where}.{k}") for k, v in model.get_params(deep=False).items()}
        fitted = {}
        for k, v in vars(model).items():
            if k in names:
                fitted[k] = self.value(v, f"{where}.{k}")
            elif k.endswith("_") and not k.startswith("_"):
                raise TypeError(f"cannot save {where}.{k}: a {name} model file has no such attribute "
                                f"(bayesgmm.io.SCHEMAS lists those it has)")
        return {"class": name, "params": params, "fitted": fitted}


# ------------------------------------------------------------------------------------------------
# Reading: members of an untrusted archive, within a budget of inflated bytes
# ------------------------------------------------------------------------------------------------


class _Member:
    """A file-like view of one archive member that inflates at most ``_CHUNK`` bytes per read and
    counts what it returns."""

    def __init__(self, f: Any) -> None:
        self.f, self.consumed = f, 0

    def read(self, n: int = -1) -> bytes:
        parts = []
        while n != 0:
            part = self.f.read(_CHUNK if n < 0 else min(n, _CHUNK))
            if not part:
                break
            parts.append(part)
            n -= len(part) if n > 0 else 0
        data = b"".join(parts)
        self.consumed += len(data)
        return data


class _Reader:
    """Reads the manifest and the arrays of an open model file; every failure is a :class:`ModelFileError`."""

    def __init__(self, archive: zipfile.ZipFile, source: str, max_bytes: int) -> None:
        self.archive, self.source, self.max_bytes, self.left = archive, source, max_bytes, max_bytes

    def fail(self, message: str) -> ModelFileError:
        return ModelFileError(f"{self.source}: {message}")

    def _open(self, name: str, limit: int | None = None) -> tuple[zipfile.ZipInfo, _Member]:
        """Open member ``name`` after checking its declared size against ``limit`` and the budget."""
        try:
            info = self.archive.getinfo(name)
        except KeyError:
            raise self.fail(f"corrupted model file ({name} is missing)") from None
        if limit is not None and info.file_size > limit:
            raise self.fail(f"corrupted model file ({name} declares {info.file_size} bytes, more than the "
                            f"{limit} it may have)")
        if info.file_size > self.left:
            raise self.fail(f"the model file inflates to more than max_bytes={self.max_bytes} bytes (at {name}); "
                            "if you trust it, pass a larger max_bytes to load")
        self.left -= info.file_size
        return info, _Member(self.archive.open(info))

    def _finish(self, member: _Member, info: zipfile.ZipInfo) -> None:
        """Check the member ended where its declared size says (reading its end checks the CRC)."""
        if member.consumed != info.file_size or member.read(1):
            raise self.fail(f"corrupted model file ({info.filename} is not {info.file_size} bytes long)")

    def manifest(self) -> dict[str, Any]:
        info, member = self._open(MANIFEST, MAX_MANIFEST_BYTES)
        with member.f:
            data = member.read(info.file_size)
            self._finish(member, info)

        def constant(name: str) -> Any:
            raise ValueError(f"{name} is not JSON")

        manifest = json.loads(data.decode("utf-8"), parse_constant=constant)
        stack = [(manifest, 1)]  # nesting depth, measured without recursion
        while stack:
            node, depth = stack.pop()
            if isinstance(node, (dict, list)):
                if depth > MAX_DEPTH:
                    raise self.fail(f"corrupted model file (the manifest nests deeper than {MAX_DEPTH})")
                stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))
        return manifest

    def array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str):
            raise self.fail(f"corrupted model file (array reference {_short(name)} is not a name)")
        info, member = self._open(name)
        with member.f:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise self.fail(f"corrupted model file (array {name}: .npy format version {version} is not "
                                "one bayesgmm writes)")
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = header(member)
            if dtype.hasobject:
                raise self.fail(f"corrupted model file (array {name} holds Python objects, which are never "
                                "unpickled: allow_pickle=False)")
            if dtype.kind not in "biufU" or dtype.shape or dtype.itemsize == 0:
                raise self.fail(f"corrupted model file (array {name} has unsupported dtype {dtype})")
            count = math.prod(shape)
            if min(shape, default=0) < 0 or member.consumed + count * dtype.itemsize != info.file_size:
                raise self.fail(f"corrupted model file (array {name}: shape {shape} of {dtype} does not fit its "
                                f"{info.file_size} bytes)")
            flat = np.empty(count, dtype)
            raw = flat.view(np.uint8)
            done = 0
            while done < raw.size:
                part = member.read(min(_CHUNK, raw.size - done))
                if not part:
                    break
                raw[done:done + len(part)] = np.frombuffer(part, np.uint8)
                done += len(part)
            self._finish(member, info)
        return flat.reshape(shape[::-1]).transpose() if fortran_order else flat.reshape(shape)


# ------------------------------------------------------------------------------------------------
# Decoding: JSON nodes -> Python values, checked against the schema
# ------------------------------------------------------------------------------------------------


class _Decoder:
    def __init__(self, reader: _Reader) -> None:
        self.reader = reader
        self.fail = reader.fail

    def array(self, node: dict[str, Any]) -> Any:
        arr = self.reader.array(node["__array__"])
        if node.get("object"):
            return arr.astype(object)
        if node.get("jax"):
            from bayesgmm._boundary import precision_scope

            with precision_scope(np.float64 if arr.dtype.itemsize == 8 else np.float32):
                return jnp.asarray(arr)
        return arr

    def value(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if not isinstance(node, dict) or len(node) == 0:
            raise self.fail(f"unexpected entry {_short(node)} in the manifest")
        tag = next(iter(node))
        if tag == "__array__":
            return self.array(node)
        if tag == "__float__":
            return float(node["__float__"])
        if tag == "__tuple__":
            return tuple(self.value(v) for v in node["__tuple__"])
        if tag == "__dict__":
            return {k: self.value(v) for k, v in node["__dict__"].items()}
        if tag == "__random_state__":
            rs = np.random.RandomState()
            rs.set_state(self.value(node["__random_state__"]))
            return rs
        if tag == "__namedtuple__":
            cls = _class(node["__namedtuple__"], RECORD_CLASSES)
            if cls is None:
                raise self.fail(f"unknown record type {_short(node['__namedtuple__'])}")
            return cls(**{k: self.value(v) for k, v in node["fields"].items()})
        if tag == "__datatree__":
            return self.datatree(node["__datatree__"])
        if tag == "__dataframe__":
            return self.dataframe(node["__dataframe__"])
        if tag == "__range__":
            start, stop, step = node["__range__"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step)):
                raise self.fail(f"corrupted model file (range {_short(node['__range__'])} is not three integers)")
            return range(start, stop, step)
        if tag == "__estimator__":
            return self.estimator(node["__estimator__"])
        raise self.fail(f"unknown entry type {_short(tag)} in the manifest")

    def variable(self, node: dict[str, Any]) -> tuple[list[str], np.ndarray, dict[str, Any]]:
        return node["dims"], self.array(node["data"]), self.value(node["attrs"])

    def datatree(self, nodes: dict[str, Any]) -> Any:
        import xarray as xr

        datasets = {}
        for path, node in nodes.items():
            coords = {n: self.variable(v) for n, v in node["coords"].items()}
            data_vars = {n: self.variable(v) for n, v in node["data_vars"].items()}
            try:
                datasets[path] = xr.Dataset(data_vars, coords=coords, attrs=self.value(node["attrs"]))
            except ModelFileError:
                raise
            except Exception as err:  # xarray's own checks of dims, sizes and names, whatever their class
                raise self.fail(f"corrupted model file (group {_short(path)}: {type(err).__name__}: {err})") from None
        try:
            return xr.DataTree.from_dict(datasets)
        except Exception as err:
            raise self.fail(f"corrupted model file (the DataTree: {type(err).__name__}: {err})") from None

    def dataframe(self, node: dict[str, Any]) -> Any:
        import pandas as pd

        columns, data = node["columns"], [self.value(v) for v in node["data"]]
        index = None if node["index"] is None else self.value(node["index"])
        arrays = data + ([] if index is None else [index])
        if (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
                or len(set(columns)) != len(columns) or len(columns) != len(data)
                or not all(isinstance(a, np.ndarray) and a.ndim == 1 and len(a) == len(arrays[0]) for a in arrays)):
            raise self.fail("corrupted model file (a DataFrame whose columns are not named, equally long arrays)")
        return pd.DataFrame(dict(zip(columns, data)), index=index)

    def estimator(self, node: dict[str, Any]) -> Any:
        name = node.get("class")
        cls = _class(name, ESTIMATOR_CLASSES)
        if cls is None:
            raise self.fail(f"unknown model class {_short(name)} (expected one of {sorted(ESTIMATOR_CLASSES)})")
        schema = SCHEMAS[name]
        params, fitted = node["params"], node["fitted"]
        if not isinstance(params, dict) or not isinstance(fitted, dict):
            raise self.fail(f"corrupted model file (the {name} entry has no params or fitted table)")
        arguments = cls._get_param_names()
        for arg in params:
            if arg not in arguments:
                raise self.fail(f"invalid model file ({name} has no constructor argument {_short(arg)})")
        for attr in fitted:
            if attr not in schema.names:
                raise self.fail(f"invalid model file (attribute {_short(attr)} is not one a {name} has)")
        for attr in sorted(schema.required - set(fitted)):
            raise self.fail(f"invalid model file (the {name} has no {attr})")
        model = cls(**{k: self.value(v) for k, v in params.items()})
        values = {k: self.value(v) for k, v in fitted.items()}
        try:
            schema.check(model, values)
        except _Invalid as err:
            raise self.fail(f"invalid model file ({name}.{err})") from None
        for attr, value in values.items():
            setattr(model, attr, value)
        if schema.rebuild is not None:
            schema.rebuild(model)
        return model


# ------------------------------------------------------------------------------------------------
# Public functions
# ------------------------------------------------------------------------------------------------


def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted ``GaussianMixture``, ``BayesianGaussianMixture``, ``GaussianMixtureRegressor``
    or ``GaussianMixtureClassifier`` to ``path``.

    The file is written under a unique temporary name in the same folder and renamed over ``path``
    (atomic), so a reader or another writer never sees a partial file; on any failure the temporary
    file is removed and ``path`` is left as it was.

    Parameters
    ----------
    model : GaussianMixture, BayesianGaussianMixture, GaussianMixtureRegressor or GaussianMixtureClassifier
        A fitted estimator (posterior draws and ArviZ ``DataTree`` included; so is the running
        state of ``partial_fit``, which continues after :func:`load`).
    path : str or path-like
        The file to write (replaced if it exists). Any name works; the CLI uses ``model.bgmm``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        If ``model`` is not one of the supported estimators or holds a value that cannot be saved
        portably (for example a Python object in an attribute).
    ValueError
        If ``model`` is not fitted.
    IsADirectoryError
        If ``path`` is a directory.
    """
    if not _known(model, ESTIMATOR_CLASSES):
        raise TypeError(f"save expects one of bayesgmm's estimators ({', '.join(ESTIMATOR_CLASSES)}), got "
                        f"{type(model).__name__}")
    if not SCHEMAS[type(model).__name__].required <= set(vars(model)):
        raise ValueError(f"this {type(model).__name__} is not fitted yet: call fit before save")
    encoder = _Encoder()
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": encoder.estimator(model, "model")}
    from bayesgmm import __version__

    manifest["bayesgmm_version"] = __version__
    text = json.dumps(manifest, indent=1, allow_nan=False)
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot save the model to {path}: it is a directory")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:  # "x": a fresh file, with the umask's permissions
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(MANIFEST, text)
                for name, arr in encoder.arrays.items():
                    with archive.open(name, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike[str] | BinaryIO, *, max_bytes: int = MAX_BYTES) -> Any:
    """Read a model written by :func:`save`; safe on untrusted files.

    Parameters
    ----------
    path : str, path-like or binary file object
        A file object must be seekable (an open file, ``io.BytesIO``).
    max_bytes : int, default MAX_BYTES (1 GiB)
        The most bytes the file's contents may inflate to, checked before anything is inflated.

    Returns
    -------
    GaussianMixture, BayesianGaussianMixture, GaussianMixtureRegressor or GaussianMixtureClassifier
        With the same constructor arguments and bit-identical fitted attributes.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        (a ``ValueError``) If the file is not a bayesgmm model, is corrupted or truncated, inflates to
        more than ``max_bytes``, holds attributes or arrays that do not fit its class and constructor
        arguments (wrong shape, dtype, NaN), or was written by a newer format version. The message
        names the file and the cause.
    """
    if hasattr(path, "read"):
        source = str(getattr(path, "name", "the model file object"))
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such model file: {path}")
        source = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ModelFileError(f"{source}: not a bayesgmm model file (not a ZIP archive)") from None
    except _READ_ERRORS as err:
        raise ModelFileError(f"{source}: not a bayesgmm model file ({type(err).__name__}: {err})") from None
    with archive:
        if MANIFEST not in archive.namelist():
            raise ModelFileError(f"{source}: not a bayesgmm model file (no {MANIFEST} inside)")
        reader = _Reader(archive, source, max_bytes)
        try:
            manifest = reader.manifest()
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise ModelFileError(f"{source}: not a bayesgmm model file (format field is not {FORMAT!r})")
            version = manifest.get("format_version")
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise ModelFileError(f"{source}: not a bayesgmm model file (format version {_short(version)})")
            if version > FORMAT_VERSION:
                raise ModelFileError(f"{source}: format version {_short(version)} is newer than this bayesgmm "
                                     f"reads ({FORMAT_VERSION}); upgrade bayesgmm")
            return _Decoder(reader).value({"__estimator__": manifest["model"]})
        except ModelFileError:
            raise
        except _READ_ERRORS as err:
            raise ModelFileError(f"{source}: corrupted model file ({type(err).__name__}: {err})") from None


__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_BYTES", "MAX_MANIFEST_BYTES", "ModelFileError", "load", "save"]
