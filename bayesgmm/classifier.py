"""Classification with Gaussian mixtures: mclust's MclustDA and EDDA (Fraley and Raftery 2002).

Each class ``c`` gets a density ``p(x | c)``, and Bayes' rule with class priors ``pi_c`` gives
``p(c | x) = pi_c p(x | c) / sum_j pi_j p(x | j)``, computed in log space.

* **MclustDA**: each class's density is a Gaussian mixture whose number of components and covariance
  model :func:`bayesgmm.select` chooses by BIC on that class's rows alone.
* **EDDA** (eigenvalue decomposition discriminant analysis; Bensmail and Celeux 1996): one Gaussian
  per class, the covariances of all classes constrained together by one of mclust's 14 models, chosen
  by BIC. With the labels known, the fit is the M-step of the K = n_classes mixture with hard
  responsibilities (:func:`bayesgmm.em.m_step`), so EEE is linear discriminant analysis and VVV is
  quadratic discriminant analysis (maximum-likelihood covariances, as scikit-learn's).

The class-conditional densities are evaluated together: the components of every class are stacked
into one mixture in the full form, and one compiled pass gives ``log p(x | c)`` for all classes.

References
----------
Fraley, C. and Raftery, A. E. (2002). Model-based clustering, discriminant analysis, and density
estimation. JASA 97(458), 611-631.
Bensmail, H. and Celeux, G. (1996). Regularized Gaussian discriminant analysis through eigenvalue
decomposition. JASA 91(436), 1743-1748.
Brier, G. W. (1950). Verification of forecasts expressed in terms of probability. Monthly Weather
Review 78(1), 1-3.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.scipy.special import logsumexp as jax_logsumexp
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_X_y, validate_data

from bayesgmm import em
from bayesgmm._boundary import atomic_fit, check_fit_data, column_moments, precision_scope
from bayesgmm._chunks import chunk_labels, chunk_rows, default_chunk_size
from bayesgmm.covariance import COVARIANCE_NAMES, expand_models, get_model, log_gaussian_prob
from bayesgmm.estimators import GaussianMixture
from bayesgmm.init import INIT_METHODS, label_responsibilities
from bayesgmm.params import GMMParams
from bayesgmm.selection import chosen_row, select

#: mclust's default grid of components per class (``G = 1:5``).
DEFAULT_COMPONENTS: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclasses.dataclass(frozen=True)
class CrossValidation:
    """What :meth:`GaussianMixtureClassifier.cross_validate` returns (mclust's ``cvMclustDA``).

    Attributes
    ----------
    classification : ndarray of shape (n_samples,)
        Each sample's class as predicted by the model fitted without its fold.
    proba : ndarray of shape (n_samples, n_classes)
        Its cross-validated class probabilities.
    error, error_se : float
        Misclassification rate over all samples (the folds' rates averaged with their sizes as
        weights) and its standard error as cvMclustDA's, ``sqrt(sum_f n_f (e_f - error)^2 /
        (n (F - 1) / F) / F)`` over the F folds of n_f samples (``std(fold rates) / sqrt(F)`` when
        the folds are equal).
    brier, brier_se : float
        The Brier score (:func:`brier_score`) over all samples and its standard error.
    fold_errors, fold_briers : ndarray of shape (n_folds,)
    """

    classification: np.ndarray
    proba: np.ndarray
    error: float
    error_se: float
    brier: float
    brier_se: float
    fold_errors: np.ndarray
    fold_briers: np.ndarray


def brier_score(y_true, proba, *, classes=None, sample_weight=None) -> float:
    """The multi-class Brier score, normalised to [0, 1] as mclust's ``BrierScore`` (Kruppa et al. 2014).

    ``BS = sum_i w_i sum_k (C_ik - p_ik)^2 / (2 sum_i w_i)`` with ``C_ik = 1`` when sample i is of class k.
    0 is a perfect forecast; a confident wrong one scores 1.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    classes : array-like of shape (n_classes,), optional
        The class of each column; by default the sorted unique values of ``y_true``.
    sample_weight : array-like of shape (n_samples,), optional

    Examples
    --------
    >>> brier_score(["a", "b"], [[1.0, 0.0], [0.5, 0.5]])
    0.125
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    classes = np.unique(y_true) if classes is None else np.asarray(classes)
    if proba.shape != (y_true.shape[0], classes.shape[0]):
        raise ValueError(f"proba must have shape ({y_true.shape[0]}, {classes.shape[0]}) (n_samples, n_classes), "
                         f"got {proba.shape}")
    indicator = y_true[:, None] == classes[None, :]
    if not np.all(indicator.any(axis=1)):
        raise ValueError("y_true has values that are not in classes")
    w = np.ones(y_true.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    return float(w @ np.sum((indicator - proba) ** 2, axis=1) / (2 * w.sum()))


class GaussianMixtureClassifier(ClassifierMixin, BaseEstimator):
    """Gaussian mixture discriminant analysis: mclust's MclustDA and EDDA, on the compiled EM core.

    Parameters
    ----------
    model_type : {"MclustDA", "EDDA"}, default="MclustDA"
        "MclustDA": one mixture per class, its number of components and covariance model chosen
        by BIC (:func:`bayesgmm.select` on the class's rows). "EDDA": one component per class, one
        covariance model across the classes (EEE: a covariance shared by all classes, as LDA;
        VVV: one per class, as QDA; the others in between), chosen by BIC.
    n_components : int, sequence of int or None, default=None
        MclustDA: the numbers of components tried for every class (None: 1 to 5, mclust's
        ``G = 1:5``); numbers larger than a class's number of samples are skipped for it.
        EDDA has one component per class: None or 1.
    covariance_types : str or sequence of str, default="all"
        The covariance models tried (mclust's or scikit-learn's names, see
        :class:`~bayesgmm.GaussianMixture`), ``"all"`` for mclust's 14 (E and V for one feature)
        or ``"sklearn"`` for scikit-learn's four.
    priors : array-like of shape (n_classes,), optional
        Class prior probabilities, in the order of ``classes_``; by default the (weighted) class
        frequencies of the training data. Renormalised (with a warning) when they do not sum to 1.
    n_init, tol, max_iter, reg_covar, init_params, random_state, chunk_size
        As in :func:`bayesgmm.select`, which fits the MclustDA grids (defaults: mclust's
        hierarchical start plus k-means restarts, ``tol=1e-6``, up to 1000 iterations).
        ``reg_covar`` is added to the diagonal of every covariance, EDDA's included; EDDA's fit is a
        single M-step and uses no other of these.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    priors_ : ndarray of shape (n_classes,)
        The class priors used by the predictions (sum to 1).
    class_count_ : ndarray of shape (n_classes,)
        Sum of the sample weights of each class (the number of samples without weights).
    models_ : list of GaussianMixture
        The density of each class, in the order of ``classes_``. EDDA's are one-component models,
        each with its class's covariance under the shared model (the same matrix for EEE).
    covariance_types_ : list of str
        The covariance model of each class (one name repeated for EDDA).
    n_components_ : ndarray of shape (n_classes,)
    n_iter_ : ndarray of shape (n_classes,)
        EM iterations of each class's chosen fit (MclustDA); 1 for EDDA, whose fit is one M-step.
    selection_table_ : pandas.DataFrame
        The BIC table: for MclustDA :attr:`bayesgmm.SelectionResult.table` of each class with a
        ``class`` column; for EDDA one row per covariance model (``log_likelihood``,
        ``n_parameters``, ``bic``, ``degenerate``).
    log_likelihood_ : float
        ``sum_i w_i log sum_c f_c p(x_i | c)`` over the training data, ``f_c`` the class
        frequencies (mclust's ``logLik`` of an MclustDA fit).
    n_parameters_ : int
        Means and covariances of every class, and the within-class weights (MclustDA); not the
        class proportions (mclust's ``df``).
    bic_ : float
        ``-2 log_likelihood_ + n_parameters_ log n`` (lower is better; mclust reports ``-bic_``).
    training_error_ : float
        Misclassification rate of the training data (weighted by ``sample_weight``).
    training_brier_ : float
        Brier score of the training data (:func:`brier_score`).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string column names.
    fit_time_ : float

    Examples
    --------
    >>> import bayesgmm as bg
    >>> iris = bg.datasets.load_iris()
    >>> X, y = iris.drop(columns="species"), iris["species"]
    >>> clf = bg.GaussianMixtureClassifier("EDDA", covariance_types=["EEE", "VEV", "VVV"]).fit(X, y)
    >>> clf.covariance_types_[0], round(clf.training_error_, 3)
    ('VEV', 0.02)
    >>> clf.predict(X.iloc[[0, 50, 100]]).tolist()
    ['setosa', 'versicolor', 'virginica']

    References
    ----------
    Fraley, C. and Raftery, A. E. (2002). Model-based clustering, discriminant analysis, and density
    estimation. JASA 97(458), 611-631.
    """

    _parameter_constraints: dict = {
        "model_type": [StrOptions({"MclustDA", "EDDA"})],
        "n_components": [Interval(Integral, 1, None, closed="left"), list, tuple, range, None],
        "covariance_types": [StrOptions(set(COVARIANCE_NAMES) | {"all", "sklearn"}), list, tuple],
        "priors": ["array-like", None],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "init_params": [StrOptions(set(INIT_METHODS))],
        "random_state": ["random_state"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, model_type="MclustDA", *, n_components=None, covariance_types="all", priors=None, n_init=10,
                 tol=1e-6, max_iter=1000, reg_covar=1e-6, init_params="hc", random_state=None, chunk_size=None):
        self.model_type = model_type
        self.n_components = n_components
        self.covariance_types = covariance_types
        self.priors = priors
        self.n_init = n_init
        self.tol = tol
        self.max_iter = max_iter
        self.reg_covar = reg_covar
        self.init_params = init_params
        self.random_state = random_state
        self.chunk_size = chunk_size

    # ------------------------------------------------------------------ fitting

    @atomic_fit
    def fit(self, X, y, sample_weight=None):
        """Fit the density of every class and choose its model by BIC.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels: at least two classes, each with at least one sample of positive weight
            (EDDA) or two (MclustDA).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts as a duplicated row (exactly so for EDDA and
            for one component per class; the hierarchical start of a larger MclustDA mixture
            looks at the rows, not their weights).

        Returns
        -------
        self
        """
        start = time.perf_counter()
        self._validate_params()
        X, labels, w = self._check_training_data(X, y, sample_weight, reset=True)
        self._fit_arrays(X, labels, w)
        log_density = self._log_density_arrays(X)
        self.log_likelihood_ = float(w @ logsumexp(log_density + np.log(self.class_count_ / self.class_count_.sum()),
                                                   axis=1))
        self.bic_ = -2 * self.log_likelihood_ + self.n_parameters_ * math.log(w.sum())
        proba = np.exp(self._log_posterior(log_density))
        self.training_error_ = float(w @ (np.argmax(proba, axis=1) != labels) / w.sum())
        self.training_brier_ = brier_score(labels, proba, classes=np.arange(len(self.classes_)), sample_weight=w)
        self.fit_time_ = time.perf_counter() - start
        return self

    def save(self, path):
        """Write the fitted model to ``path`` (portable, no pickle); read it back with :func:`bayesgmm.load`."""
        from bayesgmm.io import save

        return save(self, path)

    def _check_training_data(self, X, y, sample_weight, reset: bool):
        """Validated float X, class indices into ``classes_`` (set when ``reset``) and sample weights."""
        X, w = check_fit_data(self, X, sample_weight, 1, reset=reset)
        _, y = check_X_y(X, y, dtype=None, estimator=self)
        check_classification_targets(y)
        if reset:
            self.classes_, labels = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError(f"y must contain at least two classes, got one class: {self.classes_[0]!r}")
        else:
            if not np.all(np.isin(y, self.classes_)):
                raise ValueError(f"y has labels that are not among the classes of the fit, {self.classes_.tolist()}")
            labels = np.searchsorted(self.classes_, y)
        return X, labels.astype(np.int32), w

    def _check_priors(self, class_count: np.ndarray) -> np.ndarray:
        n_classes = len(class_count)
        if self.priors is None:
            return class_count / class_count.sum()
        priors = np.asarray(self.priors, dtype=np.float64)
        if priors.shape != (n_classes,):
            raise ValueError(f"priors must have shape ({n_classes},), one per class of y, got {priors.shape}")
        if not np.all(np.isfinite(priors)) or np.any(priors < 0) or priors.sum() <= 0:
            raise ValueError(f"priors must be finite and non-negative with a positive sum, got {priors.tolist()}")
        if not np.isclose(priors.sum(), 1.0):
            warnings.warn(f"priors sum to {priors.sum():.6g}, not 1; renormalising", UserWarning, stacklevel=4)
        return priors / priors.sum()

    def _component_grid(self) -> tuple[int, ...]:
        n = self.n_components
        if self.model_type == "EDDA":
            if n is not None and not (isinstance(n, Integral) and n == 1):
                raise ValueError("n_components must be None (or 1) for model_type='EDDA', which has one component "
                                 f"per class; got {n!r}")
            return (1,)
        if n is None:
            return DEFAULT_COMPONENTS
        grid = (n,) if isinstance(n, Integral) else tuple(n)
        if not grid or not all(isinstance(k, Integral) and k >= 1 for k in grid):
            raise ValueError(f"n_components must be an int >= 1 or a non-empty sequence of ints >= 1, got {n!r}")
        return tuple(sorted({int(k) for k in grid}))

    def _fit_arrays(self, X: np.ndarray, labels: np.ndarray, w: np.ndarray,
                    fixed: Sequence[tuple[str, int]] | None = None) -> None:
        """Fit from validated arrays; ``fixed`` gives each class's (covariance type, n_components)
        instead of choosing them (cross-validation refits the chosen structure, as cvMclustDA)."""
        n_classes = len(self.classes_)
        class_count = np.bincount(labels, weights=w, minlength=n_classes)
        rows = np.bincount(labels[w > 0], minlength=n_classes)
        needed = 1 if self.model_type == "EDDA" else 2  # select fits a mixture to 2 rows or more
        for c in range(n_classes):
            if rows[c] < needed:
                raise ValueError(f"class {self.classes_[c]!r} has {rows[c]} sample(s) with positive sample_weight; "
                                 f"each class needs at least {needed} for model_type={self.model_type!r}")
        self._component_grid()  # validates n_components for the model type
        priors = self._check_priors(class_count)
        if self.model_type == "EDDA":
            names = (fixed[0][0],) if fixed is not None else self._expand(X.shape[1])
            models, table = self._fit_edda(X, labels, w, names)
        else:
            models, table = self._fit_mclustda(X, labels, w, rows, fixed)
        d = X.shape[1]
        self.class_count_, self.priors_, self.models_ = class_count, priors, models
        self.covariance_types_ = [m.covariance_type for m in models]
        self.n_components_ = np.array([m.n_components for m in models])
        self.n_iter_ = np.array([m.n_iter_ for m in models])
        if fixed is None:
            self.selection_table_ = table
        if self.model_type == "EDDA":
            self.n_parameters_ = n_classes * d + get_model(self.covariance_types_[0]).n_covariance_parameters(n_classes,
                                                                                                             d)
        else:
            self.n_parameters_ = sum(get_model(m.covariance_type).n_parameters(m.n_components, d) for m in models)
        self._components = _stack_components(models)

    def _fit_mclustda(self, X: np.ndarray, labels: np.ndarray, w: np.ndarray, rows: np.ndarray,
                      fixed: Sequence[tuple[str, int]] | None):
        """MclustDA: :func:`bayesgmm.select` on each class's rows of positive weight, or with ``fixed``
        each class's given (covariance type, n_components) fitted by :class:`GaussianMixture` with
        select's restarts (one compiled program per covariance type, where a one-cell grid of
        select would compile one per cell). Returns the models and the classes' BIC tables (None
        when ``fixed``)."""
        grid = self._component_grid()
        models, tables = [], []
        for c, label in enumerate(self.classes_):
            in_class = (labels == c) & (w > 0)
            ks = [k for k in grid if k <= rows[c]]
            try:
                if fixed:
                    models.append(GaussianMixture(
                        n_components=fixed[c][1], covariance_type=fixed[c][0], tol=self.tol, reg_covar=self.reg_covar,
                        max_iter=self.max_iter, n_init=self.n_init, init_params=self.init_params,
                        random_state=self.random_state, chunk_size=self.chunk_size).fit(
                        X[in_class], sample_weight=w[in_class]))
                    continue
                if not ks:
                    raise ValueError(f"{rows[c]} samples are fewer than every n_components in {list(grid)}")
                sel = select(X[in_class], n_components=ks, covariance_types=self.covariance_types,
                             sample_weight=w[in_class], n_init=self.n_init, tol=self.tol, max_iter=self.max_iter,
                             reg_covar=self.reg_covar, init_params=self.init_params, random_state=self.random_state,
                             chunk_size=self.chunk_size)
            except ValueError as error:
                raise ValueError(f"class {label!r}: {error}") from None
            models.append(sel.best_)
            tables.append(sel.table.assign(**{"class": label}))
        if fixed:
            return models, None
        table = pd.concat(tables, ignore_index=True)
        return models, table[["class"] + [name for name in table.columns if name != "class"]]

    def _expand(self, n_features: int) -> tuple[str, ...]:
        try:
            names = expand_models(self.covariance_types, n_features)
        except ValueError:
            names = ()
        if not names:
            raise ValueError("covariance_types must be a non-empty subset of the model names, 'all' or 'sklearn'; "
                             f"got {self.covariance_types!r}")
        return names

    def _fit_edda(self, X: np.ndarray, labels: np.ndarray, w: np.ndarray, names: tuple[str, ...]):
        """EDDA: the M-step with hard responsibilities for every model in ``names`` (one compiled
        program for the family), BIC with mclust's parameter count (no class proportions)."""
        d = X.shape[1]
        n_classes = len(self.classes_)
        dtype = X.dtype
        with precision_scope(dtype):
            Xc, wc = chunk_rows(X, w, self.chunk_size or default_chunk_size())
            params, loglik, class_loglik, degenerate = jax.device_get(_edda_fits(
                Xc, wc, chunk_labels(labels, wc), np.ones(n_classes, bool), np.asarray(self.reg_covar, dtype),
                column_moments(X, w)[1].astype(dtype), family=names))
        n_total = float(w.sum())
        rows = []
        for i, name in enumerate(names):
            p = n_classes * d + get_model(name).n_covariance_parameters(n_classes, d)
            rows.append({"covariance_type": name, "log_likelihood": float(loglik[i]),
                         "n_parameters": p, "bic": -2 * float(loglik[i]) + p * math.log(n_total),
                         "degenerate": bool(degenerate[i])})
        table = pd.DataFrame(rows)
        best = chosen_row(table, "bic")
        if best is None:
            raise ValueError("every EDDA model gave non-finite values; try a larger reg_covar")
        if best["degenerate"]:
            warnings.warn("every EDDA model has a collapsed class covariance (is a column constant within a class, "
                          "or does a class have fewer samples than features?); choosing among them anyway",
                          UserWarning, stacklevel=4)
        i = int(best.name)
        name = names[i]
        form = get_model(name).form
        # The full-form factor of covariances with the model's structure has that structure too
        # (diagonal, a scaled identity, or one matrix for all classes): the form's factor is read off it.
        chol = np.asarray(form.from_full(params.precisions_cholesky[i]), dtype)
        models = []
        for c in range(n_classes):
            gm = GaussianMixture(n_components=1, covariance_type=name, reg_covar=self.reg_covar, tol=self.tol,
                                 max_iter=0, random_state=self.random_state, chunk_size=self.chunk_size)
            gm._set_params(GMMParams(np.ones(1, dtype), params.means[i][c:c + 1],
                                     chol[c:c + 1] if form.per_component else chol, name), dtype)
            gm.n_features_in_ = d
            if hasattr(self, "feature_names_in_"):
                gm.feature_names_in_ = self.feature_names_in_
            gm.converged_, gm.n_iter_, gm.lower_bounds_ = True, 1, []  # one M-step
            gm.lower_bound_ = float(class_loglik[i][c] / np.sum(w[labels == c]))
            models.append(gm)
        return models, table

    # ------------------------------------------------------------------ using the fit

    def _log_density_arrays(self, X: np.ndarray) -> np.ndarray:
        """log p(x | c) of validated rows: shape (n_samples, n_classes)."""
        dtype = self._components.means.dtype
        X = X.astype(dtype, copy=False)
        chunk = self.chunk_size or default_chunk_size()
        with precision_scope(dtype):
            Xc, _ = chunk_rows(X, np.ones(X.shape[0], dtype), chunk)
            out = _class_log_density(Xc, *self._components)
            return np.asarray(out).reshape(-1, len(self.classes_))[: X.shape[0]]

    def _log_posterior(self, log_density: np.ndarray) -> np.ndarray:
        joint = self._joint(log_density)
        return joint - logsumexp(joint, axis=1, keepdims=True)

    def _joint(self, log_density: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):  # a prior of 0 rules its class out: log 0 = -inf
            return log_density + np.log(self.priors_).astype(log_density.dtype)

    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def class_log_density(self, X) -> np.ndarray:
        """log p(x | c), the log density of each sample under each class's model: shape (n_samples, n_classes)."""
        return self._log_density_arrays(self._validated(X))

    def decision_function(self, X) -> np.ndarray:
        """``log pi_c + log p(x | c)``: shape (n_samples, n_classes); for two classes the log posterior
        odds of ``classes_[1]``, shape (n_samples,), as scikit-learn's discriminant analyses."""
        joint = self._joint(self.class_log_density(X))
        return joint[:, 1] - joint[:, 0] if joint.shape[1] == 2 else joint

    def predict_log_proba(self, X) -> np.ndarray:
        """log p(c | x) by Bayes' rule: shape (n_samples, n_classes)."""
        return self._log_posterior(self.class_log_density(X))

    def predict_proba(self, X) -> np.ndarray:
        """p(c | x) by Bayes' rule: shape (n_samples, n_classes), rows sum to one."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample: shape (n_samples,)."""
        joint = self._joint(self.class_log_density(X))
        return self.classes_[np.argmax(joint, axis=1)]

    def brier_score(self, X, y, sample_weight=None) -> float:
        """The Brier score of the predicted probabilities of X against y (:func:`brier_score`;
        lower is better, unlike :meth:`score`, which is the accuracy)."""
        return brier_score(y, self.predict_proba(X), classes=self.classes_, sample_weight=sample_weight)

    def cross_validate(self, X, y, *, n_folds: int = 10, folds=None, sample_weight=None) -> CrossValidation:
        """Cross-validated misclassification rate and Brier score, as mclust's ``cvMclustDA``.

        The data are split into ``n_folds`` stratified folds (shuffled with ``random_state``), or
        into the given ``folds``; each fold is predicted by the model refitted on the others with
        the structure this fit chose (each class's covariance model and number of components, as
        cvMclustDA keeps ``G`` and ``modelName``) and this fit's ``priors_``. Weights, if given,
        weight the refits and the rates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels among ``classes_``; normally the training data of this fit.
        n_folds : int, default=10
        folds : array-like of shape (n_samples,), optional
            Each sample's fold (any labels, at least two distinct), instead of ``n_folds`` drawn
            folds: for instance the folds of mclust's ``balancedFolds``, to reproduce a cvMclustDA run.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        CrossValidation
        """
        from sklearn.model_selection import StratifiedKFold

        check_is_fitted(self)
        if not isinstance(n_folds, Integral) or n_folds < 2:
            raise ValueError(f"n_folds must be an int >= 2, got {n_folds!r}")
        X, labels, w = self._check_training_data(X, y, sample_weight, reset=False)
        if folds is not None:
            folds = np.asarray(folds)
            if folds.shape != (X.shape[0],) or len(np.unique(folds)) < 2:
                raise ValueError(f"folds must hold one fold label per sample, shape ({X.shape[0]},), with at least "
                                 f"two distinct labels; got shape {folds.shape}")
        fixed = list(zip(self.covariance_types_, self.n_components_.tolist()))
        fold_model = clone(self).set_params(priors=self.priors_)
        fold_model.classes_, fold_model.n_features_in_ = self.classes_, self.n_features_in_
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=check_random_state(self.random_state))
        proba = np.empty((X.shape[0], len(self.classes_)))
        errors, briers, sizes = [], [], []
        if folds is not None:
            folds = [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in np.unique(folds)]
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The least populated class")
                folds = list(splitter.split(X, labels))
        for train, test in folds:
            fold_model._fit_arrays(X[train], labels[train], w[train], fixed=fixed)
            proba[test] = np.exp(fold_model._log_posterior(fold_model._log_density_arrays(X[test])))
            wt = w[test]
            errors.append(wt @ (np.argmax(proba[test], axis=1) != labels[test]) / wt.sum())
            briers.append(brier_score(labels[test], proba[test], classes=np.arange(len(self.classes_)),
                                      sample_weight=wt))
            sizes.append(wt.sum())
        errors, briers, sizes = np.array(errors), np.array(briers), np.array(sizes)
        k = len(folds)

        def mean_and_se(rates: np.ndarray) -> tuple[float, float]:
            # cvMclustDA's: the folds' rates weighted by their sizes, and their weighted spread
            mean = sizes @ rates / sizes.sum()
            return float(mean), math.sqrt(sizes @ (rates - mean) ** 2 / (sizes.sum() * (k - 1) / k) / k)

        (error, error_se), (brier, brier_se) = mean_and_se(errors), mean_and_se(briers)
        return CrossValidation(
            classification=self.classes_[np.argmax(proba, axis=1)], proba=proba, error=error, error_se=error_se,
            brier=brier, brier_se=brier_se, fold_errors=errors, fold_briers=briers)


# ---------------------------------------------------------------------------------- pure helpers

class StackedComponents(NamedTuple):
    """The components of every class's mixture as one mixture of M components in the full form.

    Attributes
    ----------
    log_weights : ndarray of shape (M,)
        Log weights within their class.
    means : ndarray of shape (M, D)
    precisions_cholesky : ndarray of shape (M, D, D)
    membership : bool ndarray of shape (M, n_classes)
        Which class each component belongs to.
    """

    log_weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    membership: np.ndarray


def _stack_components(models: Sequence[GaussianMixture]) -> StackedComponents:
    """The classes' mixtures (in the order of the classes) stacked. A stored precision-Cholesky
    factor of any form embeds into the full form exactly as its covariances do (diagonal, scaled
    identity, or the shared matrix repeated)."""
    log_weights, means, chol, member = [], [], [], []
    for c, m in enumerate(models):
        k, d = m.means_.shape
        with np.errstate(divide="ignore"):
            log_weights.append(np.log(m.weights_))
        means.append(m.means_)
        chol.append(np.asarray(get_model(m.covariance_type).form.full(m.precisions_cholesky_, k, d)))
        member.append(np.full(k, c))
    member = np.concatenate(member)
    return StackedComponents(np.concatenate(log_weights), np.concatenate(means), np.concatenate(chol),
                             member[:, None] == np.arange(len(models))[None, :])


@jax.jit
def _class_log_density(X: jax.Array, log_weights: jax.Array, means: jax.Array, precisions_cholesky: jax.Array,
                       membership: jax.Array) -> jax.Array:
    """log p(x | c) = logsumexp over the components k of class c of log w_k + log N(x | mu_k, Sigma_k),
    over chunks X (n_chunks, chunk, D): shape (n_chunks, chunk, n_classes)."""
    def one(x):
        log_prob = log_gaussian_prob(x, means, precisions_cholesky, "full") + log_weights  # (chunk, M)
        return jax_logsumexp(jnp.where(membership[None], log_prob[:, :, None], -jnp.inf), axis=1)

    return jax.lax.map(one, X)


@functools.partial(jax.jit, static_argnames=("family",))
def _edda_fits(X: jax.Array, sample_weight: jax.Array, labels: jax.Array, mask: jax.Array, reg_covar,
               data_var: jax.Array, *, family: tuple[str, ...]):
    """EDDA's fit of every model of ``family``: the M-step of the n_classes-component mixture with
    the one-hot labels (n_chunks, chunk; -1 on padding) as responsibilities.

    Returns, with a leading axis over the models: the parameters (full form; weights the class
    frequencies), the mixture log-likelihood ``sum w log sum_c f_c p(x | c)``, each class's
    ``sum_{i in c} w_i log p(x_i | c)`` (n_classes,), and whether a class covariance collapsed
    (:func:`bayesgmm.em.degenerate`).
    """
    resp = label_responsibilities(labels, sample_weight, mask)
    total_weight = jnp.sum(sample_weight)

    def one(index):
        params = em.m_step(X, resp, reg_covar, family, mask, index)

        def statistics(i):
            wlp = em.weighted_log_prob(X[i], params)  # log f_c + log p(x | c)
            w = sample_weight[i]
            mixture = jnp.sum(jnp.where(w > 0, w * jax_logsumexp(wlp, axis=1), 0.0))
            return mixture, jnp.sum(resp(i) * (wlp - jnp.log(params.weights)), axis=0)

        mixture, per_class = jax.lax.map(statistics, jnp.arange(X.shape[0]))
        return (params, jnp.sum(mixture), jnp.sum(per_class, axis=0),
                em.degenerate(params, mask, total_weight, data_var, index))

    return jax.lax.map(one, jnp.arange(len(family)))
