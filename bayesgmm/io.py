"""Save and load fitted models in an open, portable format that never runs code when read.

A model file is a ZIP archive (an ``.npz`` in all but name) holding

* ``bayesgmm.json``: the format name and version, the estimator's class and constructor
  arguments, and every fitted attribute as JSON, with references to the arrays below;
* ``arrays/<n>.npy``: one NumPy ``.npy`` file per array (never an object array).

Arrays are read with ``allow_pickle=False`` and estimator classes come from a fixed list, so
loading an untrusted file cannot execute code. A round trip gives bit-identical arrays (dtype
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

import json
import math
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

#: ``format`` field of the manifest; a file without it is not a bayesgmm model.
FORMAT = "bayesgmm-model"
#: Version written by this release; files of a newer version are refused.
FORMAT_VERSION = 1
MANIFEST = "bayesgmm.json"


class ModelFileError(ValueError):
    """A file that is not a readable bayesgmm model (corrupted, truncated, foreign or too new)."""


#: The only classes a model file may name, with the modules they live in (imported only when needed,
#: so loading an EM model does not import NumPyro).
ESTIMATOR_CLASSES = {"GaussianMixture": "bayesgmm.estimators",
                     "BayesianGaussianMixture": "bayesgmm.bayes.estimator"}
RECORD_CLASSES = {"MixtureDraws": "bayesgmm.bayes.models"}


def _known(value: Any, table: dict[str, str]) -> bool:
    return table.get(type(value).__name__) == type(value).__module__


def _class(name: Any, table: dict[str, str]) -> type | None:
    if not isinstance(name, str) or name not in table:
        return None
    import importlib

    return getattr(importlib.import_module(table[name]), name)


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
        if type(value).__name__ == "DataTree" and type(value).__module__.startswith("xarray"):
            return {"__datatree__": self.datatree(value, where)}
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

    def estimator(self, model: Any, where: str) -> dict[str, Any]:
        params = {k: self.value(v, f"{where}.{k}") for k, v in model.get_params(deep=False).items()}
        fitted = {k: self.value(v, f"{where}.{k}") for k, v in vars(model).items()
                  if k.endswith("_") and not k.startswith("_")}
        return {"class": type(model).__name__, "params": params, "fitted": fitted}


# ------------------------------------------------------------------------------------------------
# Decoding: JSON nodes -> Python values, arrays read without pickle
# ------------------------------------------------------------------------------------------------


class _Decoder:
    def __init__(self, read_array: Callable[[str], np.ndarray], source: str) -> None:
        self.read_array = read_array
        self.source = source

    def fail(self, message: str) -> ModelFileError:
        return ModelFileError(f"{self.source}: {message}")

    def array(self, node: dict[str, Any]) -> Any:
        arr = self.read_array(node["__array__"])
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
            raise self.fail(f"unexpected entry {str(node)[:60]!r} in the manifest")
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
                raise self.fail(f"unknown record type {node['__namedtuple__']!r}")
            return cls(**{k: self.value(v) for k, v in node["fields"].items()})
        if tag == "__datatree__":
            return self.datatree(node["__datatree__"])
        if tag == "__estimator__":
            return self.estimator(node["__estimator__"])
        raise self.fail(f"unknown entry type {tag!r} in the manifest")

    def variable(self, node: dict[str, Any]) -> tuple[list[str], np.ndarray, dict[str, Any]]:
        return node["dims"], self.array(node["data"]), self.value(node["attrs"])

    def datatree(self, nodes: dict[str, Any]) -> Any:
        import xarray as xr

        datasets = {}
        for path, node in nodes.items():
            coords = {n: self.variable(v) for n, v in node["coords"].items()}
            data_vars = {n: self.variable(v) for n, v in node["data_vars"].items()}
            datasets[path] = xr.Dataset(data_vars, coords=coords, attrs=self.value(node["attrs"]))
        return xr.DataTree.from_dict(datasets)

    def estimator(self, node: dict[str, Any]) -> Any:
        name = node.get("class")
        cls = _class(name, ESTIMATOR_CLASSES)
        if cls is None:
            raise self.fail(f"unknown model class {name!r} (expected one of {sorted(ESTIMATOR_CLASSES)})")
        model = cls(**{k: self.value(v) for k, v in node["params"].items()})
        for attr, value in node["fitted"].items():
            if not (isinstance(attr, str) and attr.endswith("_") and attr.isidentifier()):
                raise self.fail(f"invalid attribute name {attr!r}")
            setattr(model, attr, self.value(value))
        return model


# ------------------------------------------------------------------------------------------------
# Public functions
# ------------------------------------------------------------------------------------------------


def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted ``GaussianMixture`` or ``BayesianGaussianMixture`` to ``path``.

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted estimator (posterior draws and ArviZ ``DataTree`` included).
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
    """
    if not _known(model, ESTIMATOR_CLASSES):
        raise TypeError(f"save expects a GaussianMixture or BayesianGaussianMixture, got {type(model).__name__}")
    if not hasattr(model, "weights_"):
        raise ValueError(f"this {type(model).__name__} is not fitted yet: call fit before save")
    encoder = _Encoder()
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": encoder.estimator(model, "model")}
    from bayesgmm import __version__

    manifest["bayesgmm_version"] = __version__
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1, allow_nan=False))
        for name, arr in encoder.arrays.items():
            with archive.open(name, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    os.replace(tmp, path)
    return path


def load(path: str | os.PathLike[str]) -> Any:
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    GaussianMixture or BayesianGaussianMixture
        With the same constructor arguments and bit-identical fitted attributes.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        (a ``ValueError``) If the file is not a bayesgmm model, is corrupted or truncated, or was
        written by a newer format version. The message names the file and the cause.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    source = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ModelFileError(f"{source}: not a bayesgmm model file (not a ZIP archive)") from None
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            raise ModelFileError(f"{source}: not a bayesgmm model file (no {MANIFEST} inside)")
        try:
            manifest = json.loads(archive.read(MANIFEST))
        except (zipfile.BadZipFile, ValueError, OSError) as err:
            raise ModelFileError(f"{source}: corrupted model file ({err})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ModelFileError(f"{source}: not a bayesgmm model file (format field is not {FORMAT!r})")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelFileError(f"{source}: format version {version!r} is newer than this bayesgmm reads "
                                 f"({FORMAT_VERSION}); upgrade bayesgmm")

        def read_array(name: str) -> np.ndarray:
            if name not in names:
                raise ModelFileError(f"{source}: corrupted model file (array {name} is missing)")
            try:
                with archive.open(name) as f:
                    return np.lib.format.read_array(f, allow_pickle=False)
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as err:
                raise ModelFileError(f"{source}: corrupted model file (array {name}: {err})") from None

        decoder = _Decoder(read_array, source)
        try:
            return decoder.value({"__estimator__": manifest["model"]})
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as err:
            raise ModelFileError(f"{source}: corrupted model file ({type(err).__name__}: {err})") from None


__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "save"]
