"""bayesgmm: Gaussian mixture models on JAX, from EM point estimates to NumPyro posteriors.

The Bayesian estimator is imported on first use, so ``import bayesgmm`` does not load NumPyro or
ArviZ (``compare`` imports ArviZ only when called). Importing it turns on JAX's persistent
compilation cache in the user's cache folder unless a cache is configured already
(:func:`use_compilation_cache`; ``BAYESGMM_CACHE_DIR=`` turns it off).
"""

from bayesgmm import datasets
from bayesgmm._cache import use_all_cores, use_compilation_cache
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

try:  # a persistent compilation cache by default (see bayesgmm._cache); never an import error
    use_compilation_cache()
except Exception:  # noqa: BLE001
    pass

_LAZY = {"BayesianGaussianMixture": "bayesgmm.bayes.estimator"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayesgmm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
