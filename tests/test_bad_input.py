"""Bad input gets a clear error that names the argument; degenerate data gives a finite fit."""

import numpy as np
import pandas as pd
import pytest
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
        ({"weights_init": [0.2, 0.2]}, "weights_init must be in \\[0, 1\\] and sum to 1"),
        ({"weights_init": [1.0]}, "weights_init must have shape \\(2,\\)"),
        ({"means_init": np.zeros((3, 2))}, "means_init must have shape \\(2, 2\\)"),
        ({"precisions_init": -np.stack([np.eye(2)] * 2)}, "precisions_init must be positive definite"),
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
    with pytest.raises(ValueError, match="n_samples must be at least 1"):
        gm.sample(0)


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
