"""Bad input gets a clear error that names the argument, in scikit-learn's words where scikit-learn has
them; degenerate data gives a finite fit; array-API arrays work as scikit-learn's array API promises."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

import bayesgmm as bg

X_GOOD = np.random.default_rng(0).normal(size=(30, 2))


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[1.0, np.nan]] + [[0.0, 1.0]] * 5), "Input X contains NaN"),
        (np.array([[1.0, np.inf]] + [[0.0, 1.0]] * 5), "Input X contains infinity"),
        (np.arange(10.0), "Expected 2D array, got 1D array"),
        (np.zeros((4, 3, 2)), "Found array with dim 3"),
        (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), "could not convert string to float"),
        (np.array([[1.0, 2.0]]), "minimum of 2 is required"),
    ],
)
def test_bad_X(X, match):
    with pytest.raises(ValueError, match=match):
        bg.GaussianMixture(1).fit(X)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="Expected n_samples >= n_components .* n_components = 5, n_samples = 3"):
        bg.GaussianMixture(5).fit(X_GOOD[:3])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_components": 0}, "'n_components' parameter .* must be an int in the range \\[1, inf\\)"),
        ({"covariance_type": "banana"}, "'covariance_type' parameter .* must be a str among"),
        ({"init_params": "nope"}, "'init_params' parameter .* must be a str among"),
        ({"tol": -1.0}, "'tol' parameter"),
        ({"reg_covar": -1e-3}, "'reg_covar' parameter"),
        ({"n_init": 0}, "'n_init' parameter"),
        ({"weights_init": [0.2, 0.2]}, "weights_init: The parameter 'weights' should be normalized"),
        ({"weights_init": [1.0]}, "weights_init: The parameter 'weights' should have the shape of \\(2,\\)"),
        ({"means_init": np.zeros((3, 2))},
         "means_init: The parameter 'means' should have the shape of \\(2, 2\\), but got \\(3, 2\\)"),
        ({"means_init": [[0.0, np.nan], [1.0, 1.0]]}, "Input means_init contains NaN"),
        ({"precisions_init": -np.stack([np.eye(2)] * 2)},
         "precisions_init: 'full precision' should be symmetric, positive-definite"),
        ({"precisions_init": np.stack([[[1.0, 0.5], [0.0, 1.0]]] * 2)},
         "precisions_init: 'full precision' should be symmetric, positive-definite"),
        ({"precisions_init": np.ones((3, 2, 2))},
         "precisions_init: The parameter 'full precision' should have the shape of \\(2, 2, 2\\)"),
        ({"covariance_type": "diag", "precisions_init": np.zeros((2, 2))}, "'diag precision' should be positive"),
        ({"covariance_type": "VEI", "precisions_init": np.ones((2, 3))},
         "The parameter 'VEI precision' should have the shape of \\(2, 2\\), but got \\(2, 3\\)"),
    ],
)
def test_bad_parameters(kwargs, match):
    kwargs = {"n_components": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        bg.GaussianMixture(**kwargs).fit(X_GOOD)


def test_bad_sample_weight():
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        bg.GaussianMixture(2).fit(X_GOOD, sample_weight=-np.ones(30))
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        bg.GaussianMixture(2).fit(X_GOOD, sample_weight=np.zeros(30))
    with pytest.raises(ValueError, match="sample_weight.shape == \\(3,\\), expected \\(30,\\)"):
        bg.GaussianMixture(2).fit(X_GOOD, sample_weight=np.ones(3))


def test_predict_before_fit_and_wrong_feature_count():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        bg.GaussianMixture(2).predict(X_GOOD)
    gm = bg.GaussianMixture(2, random_state=0).fit(X_GOOD)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2 features"):
        gm.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="Invalid value for 'n_samples': 0. The sampling requires at least one"):
        gm.sample(0)
    with pytest.raises(ValueError, match="Invalid value for 'n_samples': 2.5"):
        gm.sample(2.5)


@pytest.mark.parametrize("dtype, sum_error, accepted", [(np.float64, 1e-7, False), (np.float64, 1e-9, True),
                                                         (np.float32, 1e-7, True)])
def test_weights_init_with_scikit_learn_words(dtype, sum_error, accepted):
    """scikit-learn's checks of weights_init and its tolerance on the sum: 1e-8, or 1e-6 for float32 weights."""
    weights = np.array([0.3, 0.7 + sum_error], dtype)
    gm = bg.GaussianMixture(2, weights_init=weights, max_iter=0)
    if accepted:
        gm.fit(X_GOOD)
        assert gm.weights_init is weights
    else:
        with pytest.raises(ValueError, match=re.escape("The parameter 'weights' should be normalized, but got "
                                                       "sum(weights) = 1.00000 (within 1e-08 of 1 is required)")):
            gm.fit(X_GOOD)


@pytest.mark.parametrize("weights, match", [
    (np.full((2, 1), 0.5), "The parameter 'weights' should have the shape of (2,), but got (2, 1)"),
    (np.array([1.25, 1.5]), "The parameter 'weights' should be in the range [0, 1], but got min value 1.25000, "
                            "max value 1.50000"),
])
def test_weights_init_shape_and_range(weights, match):
    with pytest.raises(ValueError, match=re.escape(f"weights_init: {match}")):
        bg.GaussianMixture(2, weights_init=weights).fit(X_GOOD)


@pytest.mark.parametrize("dtype, extra", [(np.float64, ""), (np.float32, " The numerical accuracy can also be "
                                                                          "improved by passing float64 data")])
def test_ill_defined_covariance_has_scikit_learn_words(dtype, extra):
    """scikit-learn's test_regularisation: as many components as rows on two distinct points, no reg_covar."""
    X = np.vstack([np.ones((5, 5)), np.zeros((5, 5))]).astype(dtype)
    message = ("Fitting the mixture model failed because some components have ill-defined empirical covariance "
               "(for instance caused by singleton or collapsed samples). Try to decrease the number of components, "
               "increase reg_covar, or scale the input data." + extra)
    with pytest.raises(ValueError, match=re.escape(message)):
        bg.GaussianMixture(10, covariance_type="diag", reg_covar=0, random_state=0).fit(X)


def test_dataframe_feature_names():
    df = pd.DataFrame(X_GOOD, columns=["a", "b"])
    gm = bg.GaussianMixture(2, random_state=0).fit(df)
    assert list(gm.feature_names_in_) == ["a", "b"]
    with pytest.raises(ValueError, match="feature names"):
        gm.predict(df.rename(columns={"a": "z"}))


def test_input_is_never_modified():
    X = X_GOOD.copy()
    w = np.linspace(0.5, 2, 30)
    w_copy = w.copy()
    means_init = np.array([[0.0, 0.0], [1.0, 1.0]])
    gm = bg.GaussianMixture(2, means_init=means_init, random_state=0).fit(X, sample_weight=w)
    gm.predict(X)
    np.testing.assert_array_equal(X, X_GOOD)
    np.testing.assert_array_equal(w, w_copy)
    np.testing.assert_array_equal(means_init, [[0.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize(
    "name, X",
    [
        ("duplicate points", np.repeat(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), 10, axis=0)),
        ("constant column", np.column_stack([np.random.default_rng(1).normal(size=(20, 2)), np.full(20, 7.0)])),
        ("more features than samples", np.random.default_rng(2).normal(size=(6, 10))),
    ],
)
def test_degenerate_data_gives_a_finite_fit(name, X, covariance_type):
    gm = bg.GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    for attr in ["weights_", "means_", "covariances_", "precisions_cholesky_"]:
        assert np.all(np.isfinite(getattr(gm, attr))), (name, attr)
    assert np.all(np.isfinite(gm.score_samples(X))), name
    assert np.isfinite(gm.lower_bound_)


# ------------------------------------------------------------------ arrays through the array API


@pytest.fixture
def array_api_dispatch(monkeypatch):
    """scikit-learn's array_api_dispatch, which it enables only with SCIPY_ARRAY_API=1 (bayesgmm hands SciPy
    NumPy arrays only, so the variable changes nothing else here)."""
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        yield


def test_array_api_dispatch_with_kmeans_init(array_api_dispatch):
    """Under array_api_dispatch the fitted arrays and the outputs follow the input's namespace and device,
    as scikit-learn's; unlike scikit-learn's, the k-means initialisation is allowed (it runs in JAX)."""
    xp = pytest.importorskip("array_api_strict")
    device = xp.Device("device1")
    X = xp.asarray(X_GOOD, device=device)
    gm = bg.GaussianMixture(2, init_params="kmeans", random_state=0, means_init=xp.asarray([[0.0, 0.0], [1.0, 1.0]]))
    gm.fit(X)
    with sklearn.config_context(array_api_dispatch=False):
        reference = bg.GaussianMixture(2, init_params="kmeans", random_state=0, means_init=[[0.0, 0.0], [1.0, 1.0]])
        reference.fit(X_GOOD)

    def host(a):
        assert type(a) is type(X) and a.device == device
        return np.asarray(a.to_device(xp.Device("CPU_DEVICE")))

    for name in ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "volumes_"]:
        np.testing.assert_allclose(host(getattr(gm, name)), getattr(reference, name), rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(host(gm.predict(X)), reference.predict(X_GOOD))
    np.testing.assert_allclose(host(gm.predict_proba(X)), reference.predict_proba(X_GOOD), rtol=1e-12)
    np.testing.assert_allclose(host(gm.score_samples(X)), reference.score_samples(X_GOOD), rtol=1e-12)
    assert isinstance(gm.score(X), float) and isinstance(gm.bic(X), float)
    samples, labels = gm.sample(5)
    np.testing.assert_allclose(host(samples), reference.sample(5)[0])
    np.testing.assert_array_equal(host(labels), reference.sample(5)[1])
    gm.set_params(warm_start=True, max_iter=2).fit(X)  # the warm start reads the fitted arrays back
    assert host(gm.means_).shape == (2, 2)


def test_jax_arrays_give_numpy_or_jax_results(monkeypatch):
    X = jnp.asarray(X_GOOD, dtype=jnp.float32)
    gm = bg.GaussianMixture(2, random_state=0).fit(X)
    assert isinstance(gm.means_, np.ndarray) and gm.means_.dtype == np.float32
    assert isinstance(gm.predict(X), np.ndarray)
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        gm_jax = bg.GaussianMixture(2, random_state=0).fit(X)
        assert isinstance(gm_jax.means_, jax.Array) and gm_jax.means_.devices() == X.devices()
        labels = gm_jax.predict(X)
        assert isinstance(labels, jax.Array) and isinstance(gm_jax.sample(3)[0], jax.Array)
    np.testing.assert_allclose(np.asarray(gm_jax.means_), gm.means_)
    np.testing.assert_array_equal(np.asarray(labels), gm.predict(X_GOOD.astype(np.float32)))


def test_array_on_another_device_needs_array_api_dispatch():
    """Without dispatch, arrays go through np.asarray as in scikit-learn; one NumPy cannot read says so."""
    xp = pytest.importorskip("array_api_strict")
    X = xp.asarray(X_GOOD, device=xp.Device("device1"))
    with pytest.raises(RuntimeError, match="Can't convert array on the .*device1.* device to a NumPy array"):
        bg.GaussianMixture(2).fit(X)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([12, 40]),
    d=st.sampled_from([1, 3]),
    k=st.sampled_from([1, 3]),
    covariance_type=st.sampled_from(["full", "diag"]),
    float32=st.booleans(),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_shapes_dtypes_and_finiteness(n, d, k, covariance_type, float32, seed, scale):
    X = np.random.default_rng(seed).normal(size=(n, d)) * scale
    X = X.astype(np.float32) if float32 else X
    gm = bg.GaussianMixture(k, covariance_type=covariance_type, random_state=seed, reg_covar=1e-6 * scale**2).fit(X)
    dtype = X.dtype
    assert gm.weights_.shape == (k,) and gm.weights_.dtype == dtype
    assert gm.means_.shape == (k, d)
    assert gm.covariances_.shape == {"full": (k, d, d), "diag": (k, d)}[covariance_type]
    proba = gm.predict_proba(X)
    assert proba.shape == (n, k) and proba.dtype == dtype
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-4)
    assert np.all(np.isfinite(gm.score_samples(X)))
    assert gm.predict(X).shape == (n,)


# ------------------------------------------------------------------ BayesianGaussianMixture and its plots
# (refused before any fit or sampling, except where a posterior must exist)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dense_mass": "yes"}, ValueError,
     "The 'dense_mass' parameter of BayesianGaussianMixture must be an instance of 'bool'.* Got 'yes' instead"),
    ({"weight_concentration_prior": [0.1, 0.2, 0.3]}, ValueError,
     r"The 'weight_concentration_prior' parameter of BayesianGaussianMixture must be a number or an array of "
     r"shape \(2,\) \(one per component\). Got shape \(3,\) instead"),
    ({"mean_prior": [0.0, 0.0, 0.0]}, ValueError,
     r"The 'mean_prior' parameter of BayesianGaussianMixture must be an array of shape \(2,\) \(one per "
     r"feature\). Got shape \(3,\) instead"),
    ({"mean_prior": ["a", "b"]}, TypeError, r"The 'mean_prior' parameter .* of numbers. Got \['a', 'b'\] instead"),
    ({"covariance_prior_scale": np.ones((2, 2))}, ValueError,
     r"'covariance_prior_scale' parameter .* Got shape \(2, 2\) instead"),
])
def test_bayesian_arguments_are_named(kwargs, error, match):
    from bayesgmm.bayes.estimator import BayesianGaussianMixture

    with pytest.raises(error, match=match):
        BayesianGaussianMixture(2, **kwargs).fit(X_GOOD)


def test_posterior_ellipses_refuses_a_negative_number_of_draws():
    from bayesgmm.bayes.estimator import BayesianGaussianMixture
    from bayesgmm.plot import posterior_ellipses

    with pytest.raises(ValueError, match=r"The 'n_draws' parameter of posterior_ellipses must be an int in the "
                                         r"range \[0, inf\). Got -1 instead"):
        posterior_ellipses(BayesianGaussianMixture(2), n_draws=-1)
    with pytest.raises(ValueError, match="The 'level' parameter of posterior_ellipses must be a float"):
        posterior_ellipses(BayesianGaussianMixture(2), level=95)


@pytest.mark.slow
def test_summary_refuses_names_the_posterior_does_not_hold(faithful_posterior):
    bgm, _ = faithful_posterior
    with pytest.raises(ValueError, match=r"var_names has \['nope'\], which the posterior does not hold; choose "
                                         r"among \[.*'weights'.*'log_lik'"):
        bgm.summary(var_names=["weights", "nope"])
    assert set(bgm.summary(var_names="weights").index) == set(bgm.summary(var_names=["weights"]).index)
