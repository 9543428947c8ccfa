"""Faults users meet: a fit that fails or is interrupted leaves the estimator as it was; limits and grids
that are out of range get a clear answer (issue 14)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import bayesgmm as bg
from bayesgmm import em


def _state(estimator) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(estimator).items()}


def _assert_same_state(estimator, before: dict) -> None:
    after = vars(estimator)
    assert set(after) == set(before)
    for name, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[name], value, err_msg=name)
        elif name != "_stream":
            assert after[name] == value or after[name] is value, name


@pytest.fixture(scope="module")
def fitted(faithful):
    return bg.GaussianMixture(2, random_state=0).fit(faithful)


def test_a_failed_first_fit_leaves_an_unfitted_estimator():
    gm = bg.GaussianMixture(3)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        gm.fit(np.zeros((2, 4)) + np.arange(2)[:, None])
    assert not hasattr(gm, "n_features_in_")
    with pytest.raises(NotFittedError):
        check_is_fitted(gm)


def test_a_failed_refit_on_other_data_keeps_the_old_fit(fitted, faithful):
    before = _state(fitted)
    with pytest.raises(ValueError, match="sample_weight"):  # refused after validate_data set n_features_in_ = 5
        fitted.fit(np.arange(50.0).reshape(10, 5), sample_weight=-np.ones(10))
    _assert_same_state(fitted, before)
    assert fitted.predict(faithful).shape == (len(faithful),)


def test_an_interrupted_fit_keeps_the_old_fit(fitted, faithful, monkeypatch):
    before = _state(fitted)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(em, "fit_jit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fitted.fit(faithful[:100, :1])
    _assert_same_state(fitted, before)


def test_a_failed_partial_fit_keeps_the_running_statistics(faithful):
    first = bg.GaussianMixture(2, random_state=0)
    with pytest.raises(ValueError, match="step_size must be in"):
        first.partial_fit(faithful[:136], step_size=2.0)  # the first call had already fitted when it raised
    assert not hasattr(first, "n_features_in_") and not hasattr(first, "_stream")
    gm = bg.GaussianMixture(2, random_state=0).partial_fit(faithful[:136])
    before = _state(gm)
    stream = [np.array(s, copy=True) for s in gm._stream]
    for bad in ({"step_size": 2.0}, {"step_size": 0.0}):
        with pytest.raises(ValueError, match="step_size must be in"):
            gm.partial_fit(faithful[136:], **bad)
        _assert_same_state(gm, before)
        for a, b in zip(gm._stream, stream):
            np.testing.assert_array_equal(np.asarray(a), b)


def test_a_failed_bayesian_fit_leaves_an_unfitted_estimator():
    model = bg.BayesianGaussianMixture(2)
    X = np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 3.0], [2.0, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError):
            model.fit(X)
    assert not hasattr(model, "n_features_in_")


def test_a_huge_max_iter_is_no_limit(faithful):
    gm = bg.GaussianMixture(2, max_iter=10**12, random_state=0).fit(faithful)
    assert gm.converged_ and len(gm.lower_bounds_) == gm.n_iter_


@pytest.mark.parametrize("bad", [None, [2.5], ["2"], [True], [], [0], "3", 2.0])
def test_select_refuses_a_grid_that_is_not_integers(faithful, bad):
    with pytest.raises(ValueError, match="n_components must be an integer >= 1 or a non-empty collection"):
        bg.select(faithful, n_components=bad)


def test_select_takes_one_integer_as_mclust_takes_g(faithful):
    sel = bg.select(faithful, n_components=2, covariance_types=["tied"], n_init=1, random_state=0)
    assert sel.table["n_components"].tolist() == [2] and sel.best_.n_components == 2


def test_bad_tables_are_refused_by_name(fitted, faithful):
    import pandas as pd

    with pytest.raises(ValueError, match="X has no columns"):
        bg.GaussianMixture(2).fit(pd.DataFrame(index=range(5)))
    dated = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=6), "x": np.arange(6.0)})
    with pytest.raises(ValueError, match=r"column\(s\) 'when' \(datetime64"):
        bg.GaussianMixture(2).fit(dated)
    masked = np.ma.masked_array(faithful, mask=np.zeros_like(faithful, bool))
    masked[3, 1] = np.ma.masked
    with pytest.raises(ValueError, match="masked array with masked values"):
        bg.GaussianMixture(2).fit(masked)
    with pytest.raises(ValueError, match="masked array with masked values"):
        fitted.predict(masked)
    with pytest.raises(ValueError, match="'n_components' parameter must be an int"):
        bg.GaussianMixture(True).fit(faithful)


def test_criteria_take_lists_and_compare_refuses_what_is_not_a_mapping(fitted, faithful):
    assert fitted.bic(faithful.tolist()) == pytest.approx(fitted.bic(faithful))
    assert fitted.aic(faithful.tolist()) == pytest.approx(fitted.aic(faithful))
    for bad in ([fitted], "gm", {}):
        with pytest.raises(TypeError, match="fits must be a non-empty mapping"):
            bg.compare(bad, faithful)
