"""The scikit-learn-compatible estimator shell around the pure EM core."""

from __future__ import annotations

import math
import time
import warnings
from numbers import Integral, Real

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted, validate_data

from bayesgmm import em
from bayesgmm._boundary import (PrecisionWarning, column_moments,  # noqa: F401 (public here too)
                                atomic_fit, check_fit_data, check_means_init, check_n_samples, check_precisions_init,
                                check_table, check_weights_init, ill_defined_covariance_error, key_from_random_state, namespace_of,
                                iteration_limit, precision_scope, to_namespace, to_numpy, trace_length)
from bayesgmm._chunks import chunk_labels, chunk_rows, component_count_class, data_mesh, default_chunk_size, unchunk
from bayesgmm.covariance import COVARIANCE_NAMES, get_model
from bayesgmm.init import INIT_METHODS
from bayesgmm.params import GMMParams, pad_components
from bayesgmm.prior import ConjugatePrior, resolve_prior


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by expectation-maximisation, compiled with JAX.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: same arguments, defaults,
    attributes and methods. Differences: ``fit`` takes ``sample_weight``; the ``n_init`` restarts run
    at once in one compiled program; the data are processed in chunks of ``chunk_size`` rows; float64
    input is fitted in float64 and float32 input in float32.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : str, default="full"
        scikit-learn's "full", "tied", "diag", "spherical", or any of mclust's models "EII", "VII",
        "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV" (and "E",
        "V" for one feature): ``Sigma_k = lambda_k D_k A_k D_k^T`` with volume, shape and orientation
        Equal or Variable across components (I: identity). spherical = VII, diag = VVI, tied = EEE,
        full = VVV. See :mod:`bayesgmm.covariance`.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (mean log-likelihood).
    reg_covar : float, default=1e-6
        Added to the diagonal of the covariances.
    max_iter : int, default=100
    n_init : int, default=1
        Number of initialisations; the best lower bound wins.
    init_params : {"kmeans", "k-means++", "random", "random_from_data", "hc"}, default="kmeans"
        "hc" is mclust's model-based hierarchical agglomeration (:mod:`bayesgmm.hc`, on at most 2000
        rows); with ``n_init > 1`` the other restarts start from k-means.
    weights_init : array of shape (n_components,), optional
    means_init : array of shape (n_components, n_features), optional
    precisions_init : array, optional
        Precision matrices, shape by covariance type as ``precisions_``.
    random_state : int, RandomState or None
    warm_start : bool, default=False
        Start the next ``fit`` from the last solution (and use one initialisation).
    verbose : int, default=0
        Print a line per initialisation after the fit (the compiled loop does not print).
    verbose_interval : int, default=10
        Kept for compatibility with scikit-learn.
    chunk_size : int, optional
        Rows per chunk in the compiled loop; by default chosen from n_components and n_features.
    prior : None, "conjugate" or ConjugatePrior, default=None
        None: maximum likelihood. "conjugate": MAP-EM under mclust's conjugate prior with mclust's
        default hyperparameters (``priorControl()``; Fraley and Raftery 2007), which removes
        degenerate optima without ``reg_covar`` (unused then). A :class:`bayesgmm.prior.ConjugatePrior`
        sets the hyperparameters (its None fields take the defaults). Defined for the models mclust
        defines it for: all but VEE, EVE, VVE and EVV.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : ndarray
        Shapes by the model's stored form, as scikit-learn: (K, D, D) for full and for the models
        whose orientation is not the identity apart from EEE (VEE, EVE, VVE, EEV, VEV, EVV, VVV);
        (D, D) for tied = EEE; (K, D) for diag and the axis-aligned models (EEI, VEI, EVI, VVI);
        (K,) for spherical, EII, VII, E and V.
    volumes_ : ndarray of shape (n_components,)
        mclust's decomposition ``Sigma_k = lambda_k D_k A_k D_k^T``: the volumes det(Sigma_k)^(1/D),
    shapes_ : ndarray of shape (n_components, n_features)
        the shapes A_k (eigenvalues over the volume, decreasing; in feature order for axis-aligned models)
    orientations_ : ndarray of shape (n_components, n_features, n_features)
        and the orientations D_k (eigenvectors as columns; the identity for axis-aligned models).
    converged_ : bool
        True only if the best initialisation met ``tol`` with finite values.
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string column names.
    fit_time_ : float
        Seconds spent in ``fit`` (compilation included).

    Examples
    --------
    >>> import numpy as np
    >>> import bayesgmm as bg
    >>> X = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 0.0], [10.0, 2.0], [10.0, 4.0], [10.0, 0.0]])
    >>> gm = bg.GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 0]), 3)
    array([ 1., 10.])
    >>> labels = gm.predict(X)
    >>> bool(labels[0] == labels[2] != labels[3])
    True

    References
    ----------
    Bishop, C. M. (2006). Pattern Recognition and Machine Learning, ch. 9.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(COVARIANCE_NAMES))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(INIT_METHODS))],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "prior": [None, StrOptions({"conjugate"}), ConjugatePrior],
    }

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100,
                 n_init=1, init_params="kmeans", weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10, chunk_size=None, prior=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.prior = prior

    # ------------------------------------------------------------------ fitting

    @atomic_fit
    def fit(self, X, y=None, sample_weight=None):
        """Fit the mixture by EM, with ``n_init`` restarts run at once. When the fit fails or is
        interrupted, the estimator is left as it was before the call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; a weight of 2 counts as a duplicated row.

        Returns
        -------
        self
        """
        start = time.perf_counter()
        self._validate_params()
        namespace = namespace_of(X)
        X, sample_weight = check_fit_data(self, X, sample_weight, self.n_components)
        self.__dict__.pop("_stream", None)
        self._move_fitted_arrays(None)
        with precision_scope(X.dtype):
            self._fit(X, sample_weight, self.max_iter)
        self._move_fitted_arrays(namespace)
        self.fit_time_ = time.perf_counter() - start
        return self

    @atomic_fit
    def partial_fit(self, X, y=None, sample_weight=None, step_size: float | None = None):
        """Update the fit with one mini-batch by stepwise (online) EM.

        The first call initialises from its batch (``init_params``, ``n_init``) and takes a full EM
        step; each later call moves the running sufficient statistics towards the batch's by
        ``step_size`` (default ``(t + 2) ** -0.6`` at step t, a decay Cappe and Moulines (2009)
        show converges) and re-estimates the parameters. Passing over data that fits in memory
        several times in shuffled batches approaches the batch EM optimum.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
        step_size : float in (0, 1], optional

        Returns
        -------
        self

        Notes
        -----
        ``n_iter_`` counts the updates, ``lower_bound_`` is the last batch's mean log-likelihood under
        the parameters before its update, and ``converged_`` stays False: stepwise EM has no
        convergence test.
        """
        self._validate_params()
        if self.prior is not None:
            raise ValueError("partial_fit does not support a prior (stepwise EM is maximum likelihood); use fit")
        first = not hasattr(self, "_stream")
        namespace = namespace_of(X)
        X, sample_weight = check_fit_data(self, X, sample_weight, self.n_components if first else 1, reset=first)
        self._move_fitted_arrays(None)
        if not first:
            X, sample_weight = X.astype(self.means_.dtype), sample_weight.astype(self.means_.dtype)
        with precision_scope(X.dtype):
            if first:
                self._fit(X, sample_weight, max_iter=0)
                k, d = self.means_.shape
                scatter = np.zeros(get_model(self.covariance_type).form.scatter_shape(k, d), X.dtype)
                self._stream = em.StreamState(np.zeros(k, X.dtype), scatter, np.zeros((), np.int32))
            n_steps = int(self._stream.n_steps)
            if step_size is None:
                step_size = 1.0 if first else (n_steps + 2) ** -0.6
            if not 0 < step_size <= 1:
                raise ValueError(f"step_size must be in (0, 1], got {step_size}")
            chunk = self.chunk_size or default_chunk_size()
            Xc, wc = chunk_rows(X, sample_weight, chunk)
            params, self._stream, bound = jax.device_get(em.stepwise_em_step(
                Xc, wc, jax.tree_util.tree_map(jnp.asarray, self.params_), self._stream,
                jnp.asarray(step_size, X.dtype), jnp.asarray(self.reg_covar, X.dtype)))
            if not np.all(np.isfinite(params.means)) or not np.isfinite(bound):
                raise ValueError("partial_fit produced non-finite values; try a larger reg_covar or scaled input data")
            self._set_params(params, X.dtype)
        self._move_fitted_arrays(namespace)
        self.n_iter_, self.lower_bound_, self.converged_ = int(self._stream.n_steps), float(bound), False
        return self

    def _fit(self, X: np.ndarray, sample_weight: np.ndarray, max_iter: int) -> None:
        n_features = X.shape[1]
        warm = self.warm_start and hasattr(self, "converged_")
        n_init = 1 if warm else self.n_init
        chunk = self.chunk_size or default_chunk_size(n_init)
        mesh = data_mesh(X.shape[0])
        Xc, wc = chunk_rows(X, sample_weight, chunk, mesh)
        labels = None
        if warm:
            init = {"weights": self.weights_, "means": self.means_, "precisions_cholesky": self.precisions_cholesky_}
            init_method, initial_lower_bound = None, self.lower_bound_
        else:
            init = self._user_init(n_features, X.dtype)
            # with all three given, the estimate from init_params would be overwritten: skip it
            given = all(value is not None for value in init.values())
            init_method, initial_lower_bound = (None if given else self.init_params), -np.inf
            if init_method == "hc":
                from bayesgmm.hc import hierarchical_partitions

                labels = chunk_labels(hierarchical_partitions(X, [self.n_components], random_state=self.random_state)[:, 0],
                                      wc)
        k = self.n_components
        k_compiled = component_count_class(k, wc.size)
        init = _padded_init(init, k_compiled, self.covariance_type)
        init = {name: None if value is None else jnp.asarray(value, X.dtype) for name, value in init.items()}
        prior = resolve_prior(self.prior, X, self.n_components, self.covariance_type, sample_weight)
        if prior is not None:
            prior = jax.tree_util.tree_map(lambda v: jnp.asarray(v, X.dtype), prior)
        best, restart_bounds = em.fit_jit(
            key_from_random_state(self.random_state), Xc, wc, jnp.asarray(np.arange(k_compiled) < k),
            jnp.asarray(self.tol, X.dtype), jnp.asarray(self.reg_covar, X.dtype), iteration_limit(max_iter),
            jnp.asarray(initial_lower_bound, X.dtype), init,
            covariance_type=self.covariance_type, init_method=init_method, n_init=n_init,
            trace_len=trace_length(max_iter), mesh=mesh, init_labels=labels, prior=prior,
        )
        best = jax.device_get(best)
        if max_iter > 0 and not np.isfinite(best.lower_bound):
            raise ill_defined_covariance_error(X.dtype)
        self._set_params(best.params.first(k), X.dtype)
        self.converged_ = bool(best.converged)
        self.n_iter_ = int(best.n_iter)
        self.lower_bound_ = float(best.lower_bound)
        self.lower_bounds_ = [float(v) for v in best.lower_bounds[: self.n_iter_]]
        if self.verbose:
            for i, bound in enumerate(np.asarray(restart_bounds)):
                print(f"Initialization {i}: lower bound {bound:.6g}")
            print(f"Best: n_iter={self.n_iter_} lower_bound={self.lower_bound_:.6g} converged={self.converged_}")
        if not self.converged_ and max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init parameters, "
                "or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
            )

    def _user_init(self, n_features: int, dtype) -> dict:
        """Validated ``weights_init``, ``means_init`` and ``precisions_init`` (None where not given)."""
        k, d, ct = self.n_components, n_features, self.covariance_type
        form = get_model(ct).form
        init = {"weights": None, "means": None, "precisions_cholesky": None}
        if self.weights_init is not None:
            init["weights"] = check_weights_init(self.weights_init, k).astype(dtype)
        if self.means_init is not None:
            init["means"] = check_means_init(self.means_init, k, d).astype(dtype)
        if self.precisions_init is not None:
            p = check_precisions_init(self.precisions_init, ct, form.chol_shape(k, d), form.matrix)
            # the upper-triangular U with P = U U^T that the fit stores (scikit-learn's): the Cholesky
            # factor of P with rows and columns reversed, reversed back
            upper = np.flip(np.linalg.cholesky(np.flip(p, (-2, -1))), (-2, -1)) if form.matrix else np.sqrt(p)
            init["precisions_cholesky"] = upper.astype(dtype)
        return init

    def _set_params(self, params: GMMParams, dtype) -> None:
        model = get_model(self.covariance_type)
        k, d = np.shape(params.means)
        self.weights_ = np.asarray(params.weights, dtype)
        self.means_ = np.asarray(params.means, dtype)
        self.precisions_cholesky_ = np.asarray(params.precisions_cholesky, dtype)
        # computed on the padded components, so that nearby K share the compiled conversion
        padded = params.padded(component_count_class(k, 0)).replace(covariance_type=model.name)
        covariances, precisions = jax.device_get(_covariances_and_precisions(jax.tree_util.tree_map(jnp.asarray, padded)))
        first = slice(None, k) if model.form.per_component else slice(None)
        self.covariances_, self.precisions_ = np.asarray(covariances[first], dtype), np.asarray(precisions[first], dtype)
        self.volumes_, self.shapes_, self.orientations_ = (
            np.asarray(a, dtype) for a in model.decompose(model.form.full(self.covariances_, k, d)))

    def _move_fitted_arrays(self, namespace) -> None:
        """Move the fitted arrays to ``namespace`` (see :func:`bayesgmm._boundary.namespace_of`): the
        input's under scikit-learn's ``array_api_dispatch``, NumPy for None (as they are inside a fit)."""
        for name in _FITTED_ARRAYS:
            if hasattr(self, name):
                value = getattr(self, name)
                setattr(self, name, to_numpy(value) if namespace is None else to_namespace(namespace, value))

    def save(self, path):
        """Write the fitted model to ``path`` (portable, no pickle); read it back with :func:`bayesgmm.load`."""
        from bayesgmm.io import save

        return save(self, path)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the labels of X (always equal to ``fit(X).predict(X)``)."""
        return self.fit(X, y, sample_weight=sample_weight).predict(X)

    # ------------------------------------------------------------------ using the fit

    @property
    def params_(self) -> GMMParams:
        """The fitted parameters as a :class:`GMMParams` pytree of numpy arrays."""
        check_is_fitted(self)
        return GMMParams(*(to_numpy(getattr(self, name)) for name in ("weights_", "means_", "precisions_cholesky_")),
                         self.covariance_type)

    def _e_step(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Validated X -> (log p(x_n) of shape (N,), log responsibilities of shape (N, K))."""
        check_is_fitted(self)
        check_table(X)
        X = validate_data(self, to_numpy(X), dtype=[np.float64, np.float32], reset=False)
        dtype = self.params_.means.dtype
        X = X.astype(dtype, copy=False)
        with precision_scope(dtype):
            chunk = self.chunk_size or default_chunk_size()
            Xc, wc = chunk_rows(X, np.ones(X.shape[0], dtype), chunk)
            k = self.n_components
            params = jax.tree_util.tree_map(jnp.asarray, self.params_.padded(component_count_class(k, wc.size)))
            log_prob, log_resp = _e_step_chunks(Xc, wc, params)
            n = X.shape[0]
            return unchunk(log_prob, n), unchunk(log_resp, n)[:, :k]

    def score_samples(self, X) -> np.ndarray:
        """Log density log p(x) of each sample: shape (n_samples,)."""
        return to_namespace(namespace_of(X), self._e_step(X)[0])

    def score(self, X, y=None) -> float:
        """Mean log-likelihood of X."""
        return float(np.mean(self._e_step(X)[0]))

    def predict_proba(self, X) -> np.ndarray:
        """Responsibilities p(k | x): shape (n_samples, n_components), rows sum to one."""
        return to_namespace(namespace_of(X), np.exp(self._e_step(X)[1]))

    def predict(self, X) -> np.ndarray:
        """Most probable component of each sample: shape (n_samples,)."""
        return to_namespace(namespace_of(X), np.argmax(self._e_step(X)[1], axis=1))

    def condition(self, features, values):
        """The mixture of the other features given observed ``values`` of ``features`` (closed form).

        ``features``: indices, names (with ``feature_names_in_``) or a boolean mask. ``values`` of shape
        (n_observed,) give a fitted-looking GaussianMixture; (n_rows, n_observed) a
        :class:`bayesgmm.conditional.ConditionalMixtures` batch. See :func:`bayesgmm.conditional.condition`.
        """
        from bayesgmm.conditional import condition

        return condition(self, features, values)

    def _n_parameters(self) -> int:
        """Number of free parameters of the fitted model."""
        return get_model(self.covariance_type).n_parameters(self.n_components, self.means_.shape[1])

    def bic(self, X) -> float:
        """Bayesian information criterion, -2 log L + p log n (lower is better, scikit-learn's sign)."""
        n = _num_samples(X)
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X) -> float:
        """Akaike information criterion, -2 log L + 2 p (lower is better)."""
        return -2 * self.score(X) * _num_samples(X) + 2 * self._n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component labels, sorted as scikit-learn returns them. Both in the namespace and on the
            device of the fitted arrays (NumPy unless fitted under ``array_api_dispatch``).
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        weights, means, covariances = (to_numpy(getattr(self, name)) for name in ("weights_", "means_", "covariances_"))
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        y = np.repeat(np.arange(self.n_components), counts)
        k, d = means.shape
        covs = get_model(self.covariance_type).form.full(covariances, k, d)
        chol = np.linalg.cholesky(np.asarray(covs, np.float64))
        noise = rng.standard_normal((n_samples, d))
        X = means[y] + np.einsum("nij,nj->ni", chol[y], noise)
        namespace = namespace_of(self.means_)
        return to_namespace(namespace, X.astype(means.dtype)), to_namespace(namespace, y)


_e_step_chunks = jax.jit(em.e_step_chunks)

#: The fitted array attributes, which follow the input's namespace under ``array_api_dispatch``.
_FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "volumes_", "shapes_",
                  "orientations_")


@jax.jit
def _covariances_and_precisions(params: GMMParams) -> tuple[jax.Array, jax.Array]:
    """The covariances and precisions from the precision-Cholesky factors, in the model's stored form."""
    form = get_model(params.covariance_type).form
    return form.covariances(params.precisions_cholesky), form.precisions(params.precisions_cholesky)


def _padded_init(init: dict, n_components: int, covariance_type) -> dict:
    """Starting ``weights``, ``means``, ``precisions_cholesky`` (None where not given) padded to
    ``n_components`` as :meth:`GMMParams.padded` pads them (:func:`~bayesgmm.params.pad_components`)."""
    per_component = get_model(covariance_type).form.per_component
    weights, means, chol = init["weights"], init["means"], init["precisions_cholesky"]
    return {"weights": None if weights is None else pad_components(weights, n_components, zeros=True),
            "means": None if means is None else pad_components(means, n_components),
            "precisions_cholesky": pad_components(chol, n_components) if chol is not None and per_component else chol}
