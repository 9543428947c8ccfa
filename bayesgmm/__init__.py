"""bayesgmm: Gaussian mixture models on JAX, from EM point estimates to NumPyro posteriors.

The names below are imported on first use (``bg.GaussianMixture`` loads JAX and scikit-learn,
``bg.BayesianGaussianMixture`` NumPyro and ArviZ), so ``import bayesgmm`` itself is quick and the
``bayesgmm`` command answers ``--help`` and usage errors at once. The first of them turns on JAX's
persistent compilation cache in the user's cache folder unless a cache is configured already
(:func:`use_compilation_cache`; ``BAYESGMM_CACHE_DIR=`` turns it off); so does ``import bayesgmm``
in a process that has imported JAX already.
"""

import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same names, for type checkers and the API docs
    from bayesgmm import datasets
    from bayesgmm._cache import use_all_cores, use_compilation_cache
    from bayesgmm.bayes.estimator import BayesianGaussianMixture
    from bayesgmm.classifier import GaussianMixtureClassifier
    from bayesgmm.compare import compare
    from bayesgmm.conditional import ConditionalMixtures, GaussianMixtureRegressor
    from bayesgmm.estimators import GaussianMixture
    from bayesgmm.io import ModelFileError, load, save
    from bayesgmm.params import GMMParams
    from bayesgmm.selection import SelectionResult, select

__all__ = [
    "BayesianGaussianMixture",
    "ConditionalMixtures",
    "GMMParams",
    "GaussianMixture",
    "GaussianMixtureClassifier",
    "GaussianMixtureRegressor",
    "ModelFileError",
    "SelectionResult",
    "compare",
    "datasets",
    "load",
    "save",
    "select",
    "use_all_cores",
    "use_compilation_cache",
]
__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first use)
_LAZY = {
    "BayesianGaussianMixture": "bayesgmm.bayes.estimator",
    "ConditionalMixtures": "bayesgmm.conditional",
    "GMMParams": "bayesgmm.params",
    "GaussianMixture": "bayesgmm.estimators",
    "GaussianMixtureClassifier": "bayesgmm.classifier",
    "GaussianMixtureRegressor": "bayesgmm.conditional",
    "ModelFileError": "bayesgmm.io",
    "SelectionResult": "bayesgmm.selection",
    "compare": "bayesgmm.compare",
    "load": "bayesgmm.io",
    "save": "bayesgmm.io",
    "select": "bayesgmm.selection",
    "use_all_cores": "bayesgmm._cache",
    "use_compilation_cache": "bayesgmm._cache",
}
#: submodules that import no JAX (the others start the compilation cache when first reached as bg.<name>)
_LIGHT = ("datasets", "cli", "report")
_cache_started = False


def _start_cache() -> None:
    """The persistent compilation cache by default (see bayesgmm._cache), once; never an import error."""
    global _cache_started
    if _cache_started:
        return
    _cache_started = True
    try:
        from bayesgmm._cache import use_compilation_cache

        use_compilation_cache()
    except Exception:  # noqa: BLE001
        pass


if "jax" in sys.modules:
    _start_cache()


def __getattr__(name: str):
    import importlib
    import importlib.util

    if name in _LAZY:
        _start_cache()
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("__") and importlib.util.find_spec(f"bayesgmm.{name}") is not None:  # bg.io, bg.plot, ...
        if name not in _LIGHT:
            _start_cache()
        return importlib.import_module(f"bayesgmm.{name}")
    raise AttributeError(f"module 'bayesgmm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package's module type: importing the submodule ``bayesgmm.compare`` binds the package
    attribute ``compare`` to the submodule; that binding is skipped, so ``bg.compare`` stays the
    function (its submodule is still ``sys.modules["bayesgmm.compare"]``)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
