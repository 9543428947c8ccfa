"""bayesgmm: Gaussian mixture models on JAX, from EM point estimates to NumPyro posteriors.

The Bayesian estimator is imported on first use, so ``import bayesgmm`` does not load NumPyro or
ArviZ (``compare`` imports ArviZ only when called).
"""

from bayesgmm import datasets
from bayesgmm.compare import compare
from bayesgmm.estimators import GaussianMixture
from bayesgmm.io import ModelFileError, load, save
from bayesgmm.params import GMMParams
from bayesgmm.selection import SelectionResult, select

__all__ = [
    "BayesianGaussianMixture",
    "GMMParams",
    "GaussianMixture",
    "ModelFileError",
    "SelectionResult",
    "compare",
    "datasets",
    "load",
    "save",
    "select",
]
__version__ = "0.1.0"

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
