"""Faults users meet: a fit that fails or is interrupted leaves the estimator as it was; limits and grids
that are out of range get a clear answer (issue 14)."""

import copy
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


# ------------------------------------------------------------------ warm starts and set_params after a fit


@pytest.mark.parametrize("change", [{"n_components": 3}, {"covariance_type": "diag"}, {"n_features": 1}])
def test_warm_start_after_a_change_of_shape_is_a_cold_start(faithful, change):
    """As scikit-learn: warm only from a fit of the same shapes; otherwise the fit a new estimator makes."""
    gm = bg.GaussianMixture(2, warm_start=True, random_state=0).fit(faithful)
    change = dict(change)
    X = faithful[:, :change.pop("n_features", 2)]
    gm.set_params(**change)
    cold = bg.GaussianMixture(**{**gm.get_params(), "warm_start": False}).fit(X)
    gm.fit(X)
    np.testing.assert_array_equal(gm.means_, cold.means_)
    np.testing.assert_array_equal(gm.covariances_, cold.covariances_)
    assert gm.n_iter_ == cold.n_iter_ and gm.n_features_in_ == X.shape[1]


def test_warm_start_with_the_same_shapes_continues(fitted, faithful):
    gm = bg.GaussianMixture(**{**fitted.get_params(), "warm_start": True, "covariance_type": "VVV"})
    gm.fit(faithful).fit(faithful)  # VVV is full's storage: the second fit starts at the first's optimum
    assert gm.n_iter_ <= 2
    np.testing.assert_allclose(gm.means_, fitted.means_, rtol=1e-3)


def test_predictions_use_the_fit_whatever_was_set_since(fitted, faithful):
    gm = bg.GaussianMixture(**fitted.get_params()).fit(faithful)
    proba, score, bic = gm.predict_proba(faithful), gm.score(faithful), gm.bic(faithful)
    gm.set_params(n_components=5, covariance_type="diag")
    np.testing.assert_array_equal(gm.predict_proba(faithful), proba)  # 2 columns, not 5
    assert (gm.score(faithful), gm.bic(faithful)) == (score, bic)
    with pytest.raises(ValueError, match="X has 1 features, but GaussianMixture is expecting 2 features as input"):
        gm.predict(faithful[:, :1])


# ------------------------------------------------------------------ partial_fit after fit


@pytest.fixture(scope="module")
def converged(faithful):
    """A tight fit with a visible reg_covar (which the running statistics must not count twice)."""
    gm = bg.GaussianMixture(2, tol=1e-10, reg_covar=1e-2, random_state=0).fit(faithful)
    assert gm.converged_
    return gm


def test_partial_fit_after_fit_continues_from_the_fit(converged, faithful, tmp_path):
    gm = copy.deepcopy(converged)
    gm.partial_fit(faithful, step_size=0.5)  # a step from the optimum towards the same data stays there
    np.testing.assert_allclose(gm.means_, converged.means_, rtol=1e-7)
    np.testing.assert_allclose(gm.covariances_, converged.covariances_, rtol=1e-6)
    assert gm.n_iter_ == 2  # fit counts as the first step

    gm = bg.load(converged.save(tmp_path / "fitted.bgmm"))  # a loaded fit too
    batch = faithful[:40]
    gm.partial_fit(batch)  # default step after a fit: 3 ** -0.6; the weights move by stepwise EM's rule
    g = 3 ** -0.6
    np.testing.assert_allclose(gm.weights_, (1 - g) * converged.weights_ + g * converged.predict_proba(batch).mean(0),
                               rtol=1e-10)


def test_partial_fit_takes_one_row_after_the_first_call(converged, faithful):
    gm = copy.deepcopy(converged)
    for row in faithful[:3]:
        gm.partial_fit(row[None])
    assert gm.n_iter_ == 4 and np.all(np.isfinite(gm.means_))
    fresh = bg.GaussianMixture(2, random_state=0).partial_fit(faithful[:10]).partial_fit(faithful[10:11])
    assert fresh.n_iter_ == 2
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        bg.GaussianMixture(2).partial_fit(faithful[:1])
    with pytest.raises(ValueError, match="X has 1 features, but GaussianMixture is expecting 2"):
        gm.partial_fit(faithful[:5, :1])
    gm.set_params(n_components=3)  # another structure: starts again from the batch
    gm.partial_fit(faithful[:30])
    assert gm.means_.shape == (3, 2) and gm.n_iter_ == 1


# ------------------------------------------------------------------ sample weights


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_uniform_sample_weights_of_any_scale_give_the_unweighted_fit(fitted, faithful, scale):
    gm = bg.GaussianMixture(**fitted.get_params()).fit(faithful, sample_weight=np.full(len(faithful), scale))
    np.testing.assert_allclose(gm.means_, fitted.means_, rtol=1e-12)
    np.testing.assert_allclose(gm.covariances_, fitted.covariances_, rtol=1e-10)
    assert gm.n_iter_ == fitted.n_iter_ and gm.lower_bound_ == pytest.approx(fitted.lower_bound_, rel=1e-12)


def test_compare_takes_the_weights_sum_as_n_as_select_does(faithful):
    """BIC's log n is the log of the weights' sum (a weight of 2 is a duplicated row) in both."""
    w = np.random.default_rng(0).integers(1, 4, len(faithful)).astype(float)
    sel = bg.select(faithful, n_components=2, covariance_types=["tied"], n_init=1, random_state=0, sample_weight=w)
    table = bg.compare({"em": sel.best_}, faithful, sample_weight=w)
    assert table.loc["em", "bic"] == pytest.approx(sel.table["bic"].iloc[0], rel=1e-9)
    log_lik = float(w @ sel.best_.score_samples(faithful))
    assert table.loc["em", "bic"] == pytest.approx(-2 * log_lik + table.loc["em", "n_parameters"] * np.log(w.sum()))
