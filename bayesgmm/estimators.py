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
                                atomic_fit, check_fit_data, check_means_init, check_missing, finite_rule, mean_imputed, check_n_samples, check_precisions_init,
                                check_table, check_weights_init, ill_defined_covariance_error, key_from_random_state, namespace_of,
                                iteration_limit, precision_scope, to_namespace, to_numpy, trace_length)
from bayesgmm._chunks import chunk_labels, chunk_rows, component_count_class, data_mesh, default_chunk_size, unchunk
from bayesgmm.covariance import COVARIANCE_NAMES, get_model
from bayesgmm.init import INIT_METHODS
from bayesgmm.noise import hypervolume_box, sample_box
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
        Start the next ``fit`` from the last solution (and use one initialisation), when it has the
        shapes the fit needs; after ``set_params`` changed ``n_components`` or the covariance
        storage (``covariance_type``), or on data with another number of features, a cold start.
        Predictions always use the fitted model, whatever was set since.
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
    noise : bool, default=False
        Add mclust's uniform noise component (:mod:`bayesgmm.noise`; Banfield and Raftery 1993): density
        1 / V everywhere, V the training data's hypervolume (mclust's ``hypvol``: the smaller of the
        volumes of the bounding box and of the box aligned with the principal components), weight
        estimated by EM. Without ``noise_init`` its weight starts at 0.1 and the Gaussian components
        from ``init_params`` on all rows (``weights_init``, summing to 1, then gives the Gaussian
        components' shares of the rest). ``predict`` then gives -1 for the noise; see
        :meth:`predict_outliers` and the guide's anomalies page.
    noise_init : array-like of bool of shape (n_samples,), optional
        Initial noise points, as mclust's ``initialization = list(noise = ...)`` (implies ``noise``):
        the Gaussian components are initialised by ``init_params`` on the other rows and the noise
        weight starts at the (weighted) share of the mask. Only used by ``fit``.
    missing : {"error", "marginalize"}, default="error"
        "error": NaN in X is an error, as in scikit-learn. "marginalize": NaN marks a missing value,
        missing at random, and ``fit``, ``partial_fit``, ``predict``, ``predict_proba``,
        ``score_samples``, ``score``, ``bic`` and ``aic`` use each row's observed values: its density
        is the marginal over its missing coordinates, and EM is the exact EM of Ghahramani and Jordan
        (1994), which fills in the conditional expectations and covariances of the missing values
        (:mod:`bayesgmm.missing`). The lower bound is the mean observed-data log-likelihood and BIC's
        n the number of rows. A row with no observed value is an error, and so is +-inf. The starts
        (``init_params``) see each NaN replaced by its feature's mean, and so does mclust's conjugate
        prior for the data moments it is centred on. Data without NaN are fitted exactly as with
        "error". Not with ``noise``.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The Gaussian components' weights; they sum to ``1 - noise_weight_`` with a noise component,
        else to 1.
    noise_weight_ : float
        The noise component's weight (only with ``noise`` or ``noise_init``).
    hypervolume_ : float
        V, the hypervolume of the training data; the noise density is 1 / V.
    noise_axes_ : ndarray of shape (n_features, n_features)
        The box that V measures is {x : noise_bounds_[0] <= x @ noise_axes_ <= noise_bounds_[1]}: the
        identity for the bounding box, the principal axes otherwise. ``sample`` draws the noise share
        uniformly from it.
    noise_bounds_ : ndarray of shape (2, n_features)
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
        "noise": ["boolean"],
        "noise_init": ["array-like", None],
        "missing": [StrOptions({"error", "marginalize"})],
    }

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100,
                 n_init=1, init_params="kmeans", weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10, chunk_size=None, prior=None,
                 noise=False, noise_init=None, missing="error"):
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
        self.noise = noise
        self.noise_init = noise_init
        self.missing = missing

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
            Non-negative weights; a weight of 2 counts as a duplicated row. Without a ``prior`` the
            fit depends only on their ratios (weights of 1e-20 give the fit of weights 1); a prior's
            pseudo-counts weigh against the weights as given.

        Returns
        -------
        self
        """
        start = time.perf_counter()
        self._validate_params()
        namespace = namespace_of(X)
        X, sample_weight = check_fit_data(self, X, sample_weight, self.n_components,
                                          allow_nan=self.missing == "marginalize")
        noise_mask = check_noise_init(self.noise_init, X.shape[0], sample_weight)
        self.__dict__.pop("_stream", None)
        self._move_fitted_arrays(None)
        with precision_scope(X.dtype):
            self._fit(X, sample_weight, self.max_iter, noise_mask)
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

        After :meth:`fit` (or on a loaded model), the first call continues from the fitted model: its
        statistics are the fitted weights and covariances, as if ``fit`` had been the first call (so
        the default step is ``3 ** -0.6``). Later calls take batches of any size, one row included.
        When ``n_components`` or ``covariance_type`` changed since the fit (``set_params``), the
        call starts again from its batch; a batch with another number of features is refused.

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
        if self._noise_requested:
            raise ValueError("partial_fit does not support noise or noise_init (stepwise EM has no noise "
                             "component); use fit")
        fitted = hasattr(self, "means_")
        namespace = namespace_of(X)
        X, sample_weight = check_fit_data(self, X, sample_weight, 1 if fitted else self.n_components,
                                          reset=not fitted, min_samples=1 if fitted else 2,
                                          allow_nan=self.missing == "marginalize")
        first = not (fitted and not self._has_noise and self._fitted_shapes_match(X.shape[1]))
        if fitted and first:  # n_components or covariance_type changed since the fit: start from this batch
            X, sample_weight = check_fit_data(self, X, sample_weight, self.n_components, reset=False,
                                              allow_nan=self.missing == "marginalize")
        self._move_fitted_arrays(None)
        if not first:
            X, sample_weight = X.astype(self.means_.dtype), sample_weight.astype(self.means_.dtype)
        with precision_scope(X.dtype):
            if first:
                self._fit(X, sample_weight, max_iter=0)
                k, d = self.means_.shape
                scatter = np.zeros(get_model(self.covariance_type).form.scatter_shape(k, d), X.dtype)
                self._stream = em.StreamState(np.zeros(k, X.dtype), scatter, np.zeros((), np.int32))
            elif not hasattr(self, "_stream"):
                self._stream = self._stream_from_fit()
            n_steps = int(self._stream.n_steps)
            if step_size is None:
                step_size = 1.0 if first else (n_steps + 2) ** -0.6
            if not 0 < step_size <= 1:
                raise ValueError(f"step_size must be in (0, 1], got {step_size}")
            chunk = self.chunk_size or default_chunk_size()
            Xc, wc = chunk_rows(X, sample_weight, chunk)
            params, self._stream, bound = jax.device_get(em.stepwise_em_step(
                Xc, wc, jax.tree_util.tree_map(jnp.asarray, self.params_), self._stream,
                jnp.asarray(step_size, X.dtype), jnp.asarray(self.reg_covar, X.dtype),
                missing=self._has_missing(X)))
            if not np.all(np.isfinite(params.means)) or not np.isfinite(bound):
                raise ValueError("partial_fit produced non-finite values; try a larger reg_covar or scaled input data")
            self._set_params(params, X.dtype)
        self._move_fitted_arrays(namespace)
        self.n_iter_, self.lower_bound_, self.converged_ = int(self._stream.n_steps), float(bound), False
        return self

    def _has_missing(self, X: np.ndarray) -> bool:
        """Whether validated X has missing values to marginalise (the static flag of the compiled
        programs: data without NaN take the programs of complete data)."""
        return self.missing == "marginalize" and check_missing(X)

    @property
    def _noise_requested(self) -> bool:
        return bool(self.noise) or self.noise_init is not None

    @property
    def _has_noise(self) -> bool:
        """Whether the fitted model has a noise component."""
        return hasattr(self, "noise_weight_")

    def _fit(self, X: np.ndarray, sample_weight: np.ndarray, max_iter: int,
             noise_mask: np.ndarray | None = None) -> None:
        n_features = X.shape[1]
        # as scikit-learn, warm only from a fit of the same shapes; otherwise (n_components, covariance_type
        # or the number of features changed since) a cold start
        warm = self.warm_start and hasattr(self, "converged_") and self._fitted_shapes_match(n_features)
        n_init = 1 if warm else self.n_init
        chunk = self.chunk_size or default_chunk_size(n_init)
        mesh = data_mesh(X.shape[0])
        # Without a prior only the weights' ratios matter, so EM sees them with mean 1 over the rows that
        # count: scikit-learn's 10 eps added to n_k is then negligible at any scale (1e-20 as 1). A prior's
        # pseudo-counts weigh against the weights as given.
        Xc, wc = chunk_rows(X, sample_weight if self.prior is not None else _unit_mean(sample_weight), chunk, mesh)
        labels = None
        missing = self._has_missing(X)
        if missing and self._noise_requested:
            raise ValueError("noise and missing values together are not supported: the noise component's "
                             "hypervolume needs complete rows; drop or impute the NaN, or fit without noise")
        X_start = mean_imputed(X, sample_weight) if missing else X  # what the host-side starts and the prior see
        noise_weight = self.noise_weight_ if warm and self._has_noise else None
        if warm:
            weights = self.weights_  # with noise they leave its share; a fit without it renormalises them
            if self._has_noise and not self._noise_requested:
                weights = weights / np.sum(weights)
            init = {"weights": weights, "means": self.means_, "precisions_cholesky": self.precisions_cholesky_}
            init_method, initial_lower_bound = None, self.lower_bound_
        else:
            init = self._user_init(n_features, X.dtype)
            # with all three given, the estimate from init_params would be overwritten: skip it
            given = all(value is not None for value in init.values())
            init_method, initial_lower_bound = (None if given else self.init_params), -np.inf
            if init_method == "hc":
                partition = hc_partitions(X_start, [self.n_components], self.random_state, noise_mask)[:, 0]
                labels = chunk_labels(partition, wc)
        for name in _NOISE_ATTRIBUTES:
            self.__dict__.pop(name, None)
        noise = {}
        if self._noise_requested:
            box = hypervolume_box(X, sample_weight)
            self._set_noise_box(box)
            noise["noise_log_density"] = jnp.asarray(-box.log_volume, X.dtype)
            if noise_mask is not None:
                noise["noise_init"] = chunk_labels(noise_mask.astype(np.int32), wc) == 1
        k = self.n_components
        k_compiled = component_count_class(k, wc.size)
        init = _padded_init(init, k_compiled, self.covariance_type)
        if self._noise_requested:
            init["noise_weight"] = noise_weight
        init = {name: None if value is None else jnp.asarray(value, X.dtype) for name, value in init.items()}
        prior = resolve_prior(self.prior, X_start, self.n_components, self.covariance_type, sample_weight)
        if prior is not None:
            prior = jax.tree_util.tree_map(lambda v: jnp.asarray(v, X.dtype), prior)
        best, restart_bounds = em.fit_jit(
            key_from_random_state(self.random_state), Xc, wc, jnp.asarray(np.arange(k_compiled) < k),
            jnp.asarray(self.tol, X.dtype), jnp.asarray(self.reg_covar, X.dtype), iteration_limit(max_iter),
            jnp.asarray(initial_lower_bound, X.dtype), init,
            covariance_type=self.covariance_type, init_method=init_method, n_init=n_init,
            trace_len=trace_length(max_iter), mesh=mesh, init_labels=labels, prior=prior, **noise, missing=missing,
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

    def _fitted_covariance_type(self) -> str:
        """The covariance model of the fitted arrays: ``covariance_type`` may have been changed by
        ``set_params`` since (a loaded model's are its constructor arguments)."""
        return self.__dict__.get("_fit_covariance_type", self.covariance_type)

    def _fitted_shapes_match(self, n_features: int) -> bool:
        """Whether the fitted parameters are those a fit with the current ``n_components`` and
        ``covariance_type`` on ``n_features`` features would give in shape and storage form (warm
        starts and ``partial_fit`` continue from the fit only then)."""
        if not hasattr(self, "means_"):
            return False
        k, form = self.n_components, get_model(self.covariance_type).form
        return (tuple(np.shape(self.means_)) == (k, n_features)
                and get_model(self._fitted_covariance_type()).form is form
                and tuple(np.shape(self.precisions_cholesky_)) == form.chol_shape(k, n_features))

    def _stream_from_fit(self) -> em.StreamState:
        """Stepwise EM's running statistics of the fitted model, as if it were the first step: the
        weights and, per unit weight, ``weight_k * (Sigma_k - reg_covar I)`` about the means."""
        weights, means, covariances = (to_numpy(getattr(self, name)) for name in ("weights_", "means_", "covariances_"))
        k, d = means.shape
        form = get_model(self._fitted_covariance_type()).form
        full = np.asarray(form.full(covariances, k, d), means.dtype) - self.reg_covar * np.eye(d, dtype=means.dtype)
        scatter = weights[:, None, None] * full
        if not form.matrix:
            scatter = np.maximum(np.diagonal(scatter, axis1=-2, axis2=-1), 0.0)
        return em.StreamState(weights.astype(means.dtype), scatter.astype(means.dtype), np.ones((), np.int32))

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

    def _set_noise_box(self, box) -> None:
        """The hypervolume and box of the noise component (:func:`bayesgmm.noise.hypervolume_box`)."""
        self.hypervolume_ = float(np.exp(box.log_volume))
        if not 0 < self.hypervolume_ < np.inf:
            raise ValueError(f"noise: the data's hypervolume, exp({box.log_volume:.6g}), is not a positive float64; "
                             "scale the data or fit without noise")
        self.noise_axes_, self.noise_bounds_ = np.asarray(box.axes, np.float64), np.asarray(box.bounds, np.float64)

    def _set_params(self, params: GMMParams, dtype) -> None:
        model = get_model(self.covariance_type)
        self._fit_covariance_type = model.name
        k, d = np.shape(params.means)
        if params.noise_weight is not None:
            self.noise_weight_ = float(params.noise_weight)
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
        params = GMMParams(*(to_numpy(getattr(self, name)) for name in ("weights_", "means_", "precisions_cholesky_")),
                           self._fitted_covariance_type())
        if not self._has_noise:
            return params
        dtype = params.means.dtype
        return params.replace(noise_weight=np.asarray(self.noise_weight_, dtype),
                              noise_log_density=np.asarray(-math.log(self.hypervolume_), dtype))

    def _e_step(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Validated X -> (log p(x_n) of shape (N,), log responsibilities of shape (N, K))."""
        check_is_fitted(self)
        check_table(X)
        X = validate_data(self, to_numpy(X), dtype=[np.float64, np.float32], reset=False,
                          ensure_all_finite=finite_rule(self.missing))
        missing = self._has_missing(X)
        dtype = self.params_.means.dtype
        X = X.astype(dtype, copy=False)
        with precision_scope(dtype):
            chunk = self.chunk_size or default_chunk_size()
            Xc, wc = chunk_rows(X, np.ones(X.shape[0], dtype), chunk)
            k = np.shape(self.means_)[0]  # the fit's: set_params may have changed n_components since
            params = jax.tree_util.tree_map(jnp.asarray, self.params_.padded(component_count_class(k, wc.size)))
            log_prob, log_resp = _e_step_chunks(Xc, wc, params, missing)
            n = X.shape[0]
            log_resp = unchunk(log_resp, n)
            if self._has_noise:  # the padded components sit between the first k and the noise column
                return unchunk(log_prob, n), np.concatenate([log_resp[:, :k], log_resp[:, -1:]], axis=1)
            return unchunk(log_prob, n), log_resp[:, :k]

    def score_samples(self, X) -> np.ndarray:
        """Log density log p(x) of each sample, the noise component's share included: shape (n_samples,)."""
        return to_namespace(namespace_of(X), self._e_step(X)[0])

    def score(self, X, y=None) -> float:
        """Mean log-likelihood of X."""
        return float(np.mean(self._e_step(X)[0]))

    def predict_proba(self, X) -> np.ndarray:
        """Responsibilities p(k | x): shape (n_samples, n_components), rows sum to one; with a noise
        component (n_samples, n_components + 1), the noise last (mclust's ``z``)."""
        return to_namespace(namespace_of(X), np.exp(self._e_step(X)[1]))

    def predict(self, X) -> np.ndarray:
        """Most probable component of each sample: shape (n_samples,); -1 where it is the noise component."""
        labels = np.argmax(self._e_step(X)[1], axis=1)
        if self._has_noise:
            labels = np.where(labels == np.shape(self.means_)[0], -1, labels)
        return to_namespace(namespace_of(X), labels)

    def predict_outliers(self, X, contamination: float | None = None) -> np.ndarray:
        """Flag outliers: the rows of X of lowest density, or those the noise component claims.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        contamination : float in (0, 0.5], optional
            The share of X to flag: the rows whose :meth:`score_samples` is below its
            ``contamination`` quantile (rows tied at the quantile are not flagged). Without it, a
            model with a noise component flags the rows whose most probable component is the noise
            (``predict(X) == -1``).

        Returns
        -------
        ndarray of bool of shape (n_samples,)
            True for outliers.

        Raises
        ------
        ValueError
            If ``contamination`` is outside (0, 0.5], or is None for a model without noise.

        Examples
        --------
        >>> import numpy as np
        >>> import bayesgmm as bg
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(size=(95, 2)), rng.uniform(-8, 8, size=(5, 2))])
        >>> gm = bg.GaussianMixture(1, random_state=0).fit(X)
        >>> int(gm.predict_outliers(X, contamination=0.05).sum())
        5
        """
        if contamination is None:
            check_is_fitted(self)
            if not self._has_noise:
                raise ValueError("predict_outliers needs contamination (a share in (0, 0.5]) for a model without "
                                 "a noise component (fit with noise=True to flag the noise's points instead)")
            return to_namespace(namespace_of(X), to_numpy(self.predict(X)) == -1)
        if isinstance(contamination, (bool, np.bool_)) or not isinstance(contamination, Real) \
                or not 0 < contamination <= 0.5:
            raise ValueError(f"contamination must be a number in (0, 0.5], got {contamination!r}")
        scores = self._e_step(X)[0]
        return to_namespace(namespace_of(X), scores < np.quantile(scores, contamination))

    def condition(self, features, values):
        """The mixture of the other features given observed ``values`` of ``features`` (closed form).

        ``features``: indices, names (with ``feature_names_in_``) or a boolean mask. ``values`` of shape
        (n_observed,) give a fitted-looking GaussianMixture; (n_rows, n_observed) a
        :class:`bayesgmm.conditional.ConditionalMixtures` batch. See :func:`bayesgmm.conditional.condition`.
        """
        from bayesgmm.conditional import condition

        if self._has_noise:
            raise NotImplementedError("condition is not defined for a model with a noise component (the uniform "
                                      "density 1 / V has no conditional); fit without noise")
        return condition(self, features, values)

    def _n_parameters(self) -> int:
        """Number of free parameters of the fitted model; a noise component adds 2, its weight and the
        hypervolume estimated from the data, as mclust counts them (``nMclustParams(..., noise = TRUE)``)."""
        k, d = np.shape(self.means_)
        return get_model(self._fitted_covariance_type()).n_parameters(k, d) + (
            NOISE_PARAMETERS if self._has_noise else 0)

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
            Component labels, sorted as scikit-learn returns them, and with a noise component its
            draws last, labelled -1: they are uniform over the box that ``hypervolume_`` measures
            (``noise_axes_``, ``noise_bounds_``), so the draws have the model's density wherever that
            box holds the data. Both in the namespace and on the device of the fitted arrays (NumPy
            unless fitted under ``array_api_dispatch``).
        """
        check_is_fitted(self)
        n_samples = check_n_samples(n_samples)
        weights, means, covariances = (to_numpy(getattr(self, name)) for name in ("weights_", "means_", "covariances_"))
        rng = check_random_state(self.random_state)
        shares = np.asarray(weights, np.float64)  # in float64: float32 weights can sum past 1 for numpy's check
        if self._has_noise:
            shares = np.append(shares, self.noise_weight_)
        counts = rng.multinomial(n_samples, shares / shares.sum())
        y = np.repeat(np.arange(self.n_components), counts[:self.n_components])
        k, d = means.shape
        covs = get_model(self.covariance_type).form.full(covariances, k, d)
        chol = np.linalg.cholesky(np.asarray(covs, np.float64))
        noise = rng.standard_normal((y.shape[0], d))
        X = means[y] + np.einsum("nij,nj->ni", chol[y], noise)
        if self._has_noise:
            box = sample_box(rng, to_numpy(self.noise_axes_), to_numpy(self.noise_bounds_), counts[-1])
            X = np.concatenate([X, box])
            y = np.concatenate([y, np.full(counts[-1], -1)])
        namespace = namespace_of(self.means_)
        return to_namespace(namespace, X.astype(means.dtype)), to_namespace(namespace, y)


_e_step_chunks = jax.jit(em.e_step_chunks, static_argnames="missing")

#: The fitted array attributes, which follow the input's namespace under ``array_api_dispatch``.
_FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "volumes_", "shapes_",
                  "orientations_", "noise_axes_", "noise_bounds_")
#: The fitted attributes of a noise component, present only when the model has one.
_NOISE_ATTRIBUTES = ("noise_weight_", "hypervolume_", "noise_axes_", "noise_bounds_")
#: Free parameters a noise component adds, as mclust counts them: its weight and the hypervolume.
NOISE_PARAMETERS = 2


def check_noise_init(noise_init, n_samples: int, sample_weight: np.ndarray) -> np.ndarray | None:
    """``noise_init`` as a bool mask of shape (n_samples,) (None when not given); a ValueError naming it
    when it is not one, or when it leaves no row of positive weight for the Gaussian components."""
    if noise_init is None:
        return None
    mask = np.asarray(to_numpy(noise_init))
    if mask.dtype != bool:
        raise ValueError(f"noise_init must be a boolean mask of the rows of X, got an array of dtype {mask.dtype}")
    if mask.shape != (n_samples,):
        raise ValueError(f"noise_init must have shape ({n_samples},) (one flag per row of X), got {mask.shape}")
    if not np.any((sample_weight > 0) & ~mask):
        raise ValueError("noise_init marks every row (of positive weight) as noise: the Gaussian components need "
                         "some rows to start from")
    return mask


def hc_partitions(X: np.ndarray, n_components, random_state, noise_mask: np.ndarray | None) -> np.ndarray:
    """The hierarchical start's labels for each K of ``n_components``, shape (n_samples, len(n_components)):
    on the rows outside ``noise_mask`` only, as mclust runs ``hc`` on the non-noise data, and -1 on
    the noise rows (:func:`bayesgmm.hc.hierarchical_partitions`)."""
    from bayesgmm.hc import hierarchical_partitions

    if noise_mask is None:
        return hierarchical_partitions(X, n_components, random_state=random_state)
    labels = np.full((X.shape[0], len(n_components)), -1, np.int32)
    labels[~noise_mask] = hierarchical_partitions(X[~noise_mask], n_components, random_state=random_state)
    return labels


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


def _unit_mean(sample_weight: np.ndarray) -> np.ndarray:
    """The weights scaled to mean 1 over the rows of positive weight (exactly unchanged when all are 1)."""
    return sample_weight / np.mean(sample_weight[sample_weight > 0])
