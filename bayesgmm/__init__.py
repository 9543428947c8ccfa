"""bayesgmm: Gaussian mixture models on JAX, from EM point estimates to NumPyro posteriors."""

from bayesgmm import datasets
from bayesgmm.bayes.estimator import BayesianGaussianMixture
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
