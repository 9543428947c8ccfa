"""Bayesian Gaussian mixtures: NumPyro models, NUTS and VI, relabelling and ArviZ output.

The estimator :class:`BayesianGaussianMixture` is the entry point; the pure functions below are its
building blocks and can be used on their own.
"""

from bayesgmm.bayes.estimator import BayesianGaussianMixture
from bayesgmm.bayes.infer import run_nuts, run_vi
from bayesgmm.bayes.models import GMMPriors, LogGamma, MixtureDraws, default_priors, gaussian_mixture_model
from bayesgmm.bayes.relabel import relabel
from bayesgmm.bayes.to_arviz import to_datatree

__all__ = [
    "BayesianGaussianMixture",
    "GMMPriors",
    "LogGamma",
    "MixtureDraws",
    "default_priors",
    "gaussian_mixture_model",
    "relabel",
    "run_nuts",
    "run_vi",
    "to_datatree",
]
