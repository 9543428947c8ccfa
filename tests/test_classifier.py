"""GaussianMixtureClassifier (MclustDA and EDDA): reference tests against scikit-learn's QDA and LDA,
mclust's EDDA fit of iris, weights, priors, the Brier score and cross-validation, bad input, and
scikit-learn's estimator checks."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_classifiers_train, check_fit_idempotent, parametrize_with_checks

from bayesgmm import GaussianMixtureClassifier
from bayesgmm.classifier import brier_score
from bayesgmm.datasets import load_iris


@pytest.fixture(scope="module")
def iris():
    data = load_iris()
    return data.drop(columns="species").to_numpy(), data["species"].to_numpy()


@pytest.fixture(scope="module")
def probe(iris):
    """Points scattered about the iris flowers, many between two species (probabilities neither 0 nor 1)."""
    X, _ = iris
    return X + np.random.default_rng(0).normal(scale=0.4, size=X.shape)


@pytest.fixture(scope="module")
def edda_vvv(iris):
    return GaussianMixtureClassifier("EDDA", covariance_types="VVV", reg_covar=0.0).fit(*iris)


@pytest.fixture(scope="module")
def mclustda_qda(iris):
    return GaussianMixtureClassifier(n_components=1, covariance_types="full", reg_covar=0.0, random_state=0).fit(*iris)


@pytest.fixture(scope="module")
def bimodal():
    """Blobs along a line at x = -4, 0, 4, 8, of classes a, b, a, b: each class has the same spread
    about its mean, so a Gaussian per class (QDA) cannot tell them apart, and two per class can."""
    rng = np.random.default_rng(1)
    blobs = [rng.normal([x, 0], 0.7, (60, 2)) for x in (-4, 4, 0, 8)]
    return np.concatenate(blobs), np.array(["a"] * 120 + ["b"] * 120)


MCLUSTDA_BIMODAL = GaussianMixtureClassifier(n_components=(1, 2), covariance_types="VVV", n_init=3, random_state=0)


@pytest.fixture(scope="module")
def mclustda_bimodal(bimodal):
    return clone(MCLUSTDA_BIMODAL).fit(*bimodal)


# ------------------------------------------------------------------ references: QDA, LDA, mclust


@pytest.mark.parametrize("model_type", ["MclustDA", "EDDA"])
def test_one_full_component_per_class_is_qda(model_type, iris, probe, edda_vvv, mclustda_qda):
    clf = edda_vvv if model_type == "EDDA" else mclustda_qda
    qda = QuadraticDiscriminantAnalysis().fit(*iris)
    np.testing.assert_array_equal(clf.predict(probe), qda.predict(probe))
    np.testing.assert_allclose(clf.predict_proba(probe), qda.predict_proba(probe), rtol=1e-8, atol=1e-12)
    # QDA's decision function leaves out -D/2 log(2 pi), the same for every class
    assert np.ptp(clf.decision_function(probe) - qda.decision_function(probe), axis=1).max() < 1e-8
    assert clf.covariance_types_ == [clf.models_[0].covariance_type] * 3 and list(clf.n_components_) == [1, 1, 1]


def test_priors_are_bayes_rule(iris, probe, edda_vvv):
    priors = [0.6, 0.3, 0.1]
    clf = GaussianMixtureClassifier("EDDA", covariance_types="VVV", reg_covar=0.0, priors=priors).fit(*iris)
    qda = QuadraticDiscriminantAnalysis(priors=priors).fit(*iris)
    np.testing.assert_allclose(clf.predict_proba(probe), qda.predict_proba(probe), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(clf.priors_, priors)
    # same densities as with the class frequencies (1/3 each): the posterior odds move by the prior odds
    odds = np.log(clf.predict_proba(probe)[:, 0] / clf.predict_proba(probe)[:, 1])
    frequency_odds = np.log(edda_vvv.predict_proba(probe)[:, 0] / edda_vvv.predict_proba(probe)[:, 1])
    finite = np.isfinite(odds) & np.isfinite(frequency_odds)
    np.testing.assert_allclose((odds - frequency_odds)[finite], np.log(2.0), rtol=1e-8)
    assert np.sum(clf.predict(probe) == "setosa") >= np.sum(edda_vvv.predict(probe) == "setosa")


def test_priors_are_renormalised(iris):
    with pytest.warns(UserWarning, match="priors sum to 4, not 1; renormalising"):
        clf = GaussianMixtureClassifier("EDDA", covariance_types="VVV", priors=[2, 1, 1]).fit(*iris)
    np.testing.assert_allclose(clf.priors_, [0.5, 0.25, 0.25])


def test_edda_eee_is_lda(iris, probe):
    clf = GaussianMixtureClassifier("EDDA", covariance_types="EEE", reg_covar=0.0).fit(*iris)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(*iris)  # the ML pooled covariance, as EEE's
    np.testing.assert_array_equal(clf.predict(probe), lda.predict(probe))
    np.testing.assert_allclose(clf.predict_proba(probe), lda.predict_proba(probe), rtol=1e-8, atol=1e-12)
    assert clf.models_[0].covariance_type == "EEE"
    np.testing.assert_allclose(clf.models_[0].covariances_, clf.models_[2].covariances_)


def test_edda_iris_is_mclusts(iris):
    """mclust's ``MclustDA(iris[, -5], iris$Species, modelType = "EDDA")``: VEV, log-likelihood
    -187.7097, df 36, training error 0.02, Brier score 0.0127 (mclust's vignette). The family is the
    doctest's, so both share one compiled program."""
    clf = GaussianMixtureClassifier("EDDA", covariance_types=["EEE", "VEV", "VVV"]).fit(*iris)
    assert clf.covariance_types_ == ["VEV"] * 3
    assert clf.log_likelihood_ == pytest.approx(-187.7097, abs=1e-3)
    assert clf.n_parameters_ == 36
    assert clf.bic_ == pytest.approx(-2 * clf.log_likelihood_ + 36 * np.log(150))
    assert clf.training_error_ == pytest.approx(0.02)
    assert clf.training_brier_ == pytest.approx(0.0127, abs=5e-5)
    table = clf.selection_table_.set_index("covariance_type")
    assert table.loc["VEV", "log_likelihood"] == pytest.approx(clf.log_likelihood_, rel=1e-10)
    assert table["bic"].idxmin() == "VEV" and not table["degenerate"].any()


def test_a_mixture_per_class_separates_what_qda_cannot(bimodal, mclustda_bimodal):
    X, y = bimodal
    clf = mclustda_bimodal
    assert list(clf.n_components_) == [2, 2]
    assert clf.training_error_ < 0.02
    assert np.mean(QuadraticDiscriminantAnalysis().fit(X, y).predict(X) != y) > 0.2
    table = clf.selection_table_
    assert list(table["class"]) == ["a", "a", "b", "b"] and set(table["n_components"]) == {1, 2}
    assert clf.n_parameters_ == 2 * (1 + 2 * 2 + 2 * 3)  # per class: a weight, two means, two covariances


# ------------------------------------------------------------------ weights, probabilities, Brier score


@pytest.mark.parametrize("model_type", ["MclustDA", "EDDA"])
def test_sample_weight_equals_repeated_rows(model_type, iris, probe):
    X, y = iris
    w = np.random.default_rng(2).integers(0, 4, len(y))
    kwargs = {"n_components": 1, "covariance_types": "VVV"} if model_type == "MclustDA" else {
        "covariance_types": ["EEE", "VVV"]}
    weighted = GaussianMixtureClassifier(model_type, **kwargs).fit(X, y, sample_weight=w)
    repeated = GaussianMixtureClassifier(model_type, **kwargs).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(probe), repeated.predict_proba(probe), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(weighted.class_count_, np.bincount(np.unique(y, return_inverse=True)[1], weights=w))
    for name in ("log_likelihood_", "bic_", "training_error_", "training_brier_"):
        assert getattr(weighted, name) == pytest.approx(getattr(repeated, name), rel=1e-9), name


def test_probabilities_and_decisions_agree(mclustda_bimodal, bimodal):
    X, _ = bimodal
    clf = mclustda_bimodal
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    shown = proba > 1e-250  # where exp(log p) has not underflowed
    np.testing.assert_allclose(clf.predict_log_proba(X)[shown], np.log(proba[shown]), rtol=1e-10, atol=1e-12)
    decision = clf.decision_function(X)
    assert decision.shape == (len(X),)  # two classes: the log posterior odds of classes_[1]
    np.testing.assert_allclose(decision, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(decision > 0).astype(int)])


def test_brier_score_by_hand(edda_vvv, iris, probe):
    X, y = iris
    proba = edda_vvv.predict_proba(probe)
    by_hand = sum((float(y[i] == c) - proba[i, j]) ** 2 for i in range(len(y))
                  for j, c in enumerate(edda_vvv.classes_)) / (2 * len(y))
    assert edda_vvv.brier_score(probe, y) == pytest.approx(by_hand, rel=1e-12)
    assert brier_score(y, proba, classes=edda_vvv.classes_) == pytest.approx(by_hand, rel=1e-12)
    w = np.arange(len(y)) % 3
    assert edda_vvv.brier_score(probe, y, sample_weight=w) == pytest.approx(
        brier_score(np.repeat(y, w), np.repeat(proba, w, axis=0), classes=edda_vvv.classes_), rel=1e-12)
    assert edda_vvv.training_brier_ == pytest.approx(edda_vvv.brier_score(X, y), rel=1e-12)
    assert brier_score(["a", "b"], [[0.0, 1.0], [1.0, 0.0]]) == 1.0


def test_cross_validation_as_cvmclustda(edda_vvv, iris):
    X, y = iris
    cv = edda_vvv.cross_validate(X, y, n_folds=5)
    assert cv.proba.shape == (150, 3) and len(cv.fold_errors) == len(cv.fold_briers) == 5
    np.testing.assert_allclose(cv.proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(cv.classification, edda_vvv.classes_[np.argmax(cv.proba, axis=1)])
    assert cv.error == pytest.approx(np.mean(cv.classification != y))
    assert cv.brier == pytest.approx(brier_score(y, cv.proba, classes=edda_vvv.classes_), rel=1e-12)
    assert cv.error_se == pytest.approx(np.std(cv.fold_errors, ddof=1) / np.sqrt(5))
    assert edda_vvv.training_error_ <= cv.error < 0.1
    again = edda_vvv.cross_validate(X, y, n_folds=5)  # folds from random_state=None: any split, same sizes
    assert again.proba.shape == cv.proba.shape


def test_cross_validation_of_mclustda_refits_each_class_model(mclustda_qda, iris):
    """MclustDA's folds refit each class's chosen model (GaussianMixture); with one full component per
    class that is QDA, as EDDA's VVV folds are: the same folds (random_state) give the same probabilities."""
    X, y = iris
    cv = mclustda_qda.cross_validate(X, y, n_folds=3)
    edda = GaussianMixtureClassifier("EDDA", covariance_types="VVV", reg_covar=0.0, random_state=0).fit(X, y)
    np.testing.assert_allclose(cv.proba, edda.cross_validate(X, y, n_folds=3).proba, rtol=1e-7, atol=1e-12)
    assert mclustda_qda.selection_table_.shape[0] == 3  # the fit itself is left alone


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("kwargs, y, match", [
    ({}, "one", "y must contain at least two classes, got one class: 'setosa'"),
    ({"priors": [0.5, 0.5]}, None, r"priors must have shape \(3,\), one per class of y, got \(2,\)"),
    ({"priors": [0.5, 0.6, -0.1]}, None, "priors must be finite and non-negative with a positive sum"),
    ({"model_type": "EDDA", "n_components": 3}, None, "n_components must be None .or 1. for model_type='EDDA'"),
    ({"n_components": [0, 2]}, None, "n_components must be an int >= 1 or a non-empty sequence of ints >= 1"),
    ({"covariance_types": ["XYZ"]}, None, "covariance_types must be a non-empty subset of the model names"),
    ({}, "single", "class 'virginica' has 1 sample.s. with positive sample_weight; each class needs at least 2"),
])
def test_bad_input(kwargs, y, match, iris):
    X, labels = iris
    if y == "one":
        X, labels = X[:50], labels[:50]
    elif y == "single":
        X, labels = X[:101], labels[:101]
    with pytest.raises(ValueError, match=match):
        GaussianMixtureClassifier(**kwargs).fit(X, labels)


def test_bad_parameters_and_labels(iris, edda_vvv):
    X, y = iris
    with pytest.raises(InvalidParameterError, match="'model_type' parameter"):
        GaussianMixtureClassifier("LDA").fit(X, y)
    with pytest.raises(ValueError, match="requires y to be passed"):
        GaussianMixtureClassifier().fit(X, None)
    with pytest.raises(ValueError, match="class 'setosa' has 0 sample.s. with positive sample_weight"):
        GaussianMixtureClassifier("EDDA").fit(X, y, sample_weight=(y != "setosa").astype(float))
    with pytest.raises(ValueError, match="y has labels that are not among the classes of the fit"):
        edda_vvv.cross_validate(X, np.where(y == "setosa", "rose", y))
    with pytest.raises(ValueError, match="n_folds must be an int >= 2"):
        edda_vvv.cross_validate(X, y, n_folds=1)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixtureClassifier is expecting 4"):
        edda_vvv.predict(X[:, :2])
    with pytest.raises(ValueError, match=r"proba must have shape \(2, 2\)"):
        brier_score([0, 1], [[1.0, 0.0, 0.0]] * 2)


# ------------------------------------------------------------------ scikit-learn's checks

EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks([GaussianMixtureClassifier("EDDA", covariance_types="EEE")],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="every EDDA model has a collapsed")
        check(estimator)


@pytest.mark.parametrize("check", [check_classifiers_train, check_fit_idempotent])
def test_mclustda_sklearn_checks(check):
    """Checks of MclustDA's own fitting path (per-class model selection); the rest of the estimator
    (validation, prediction, pickling) is EDDA's, checked in full above."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check("GaussianMixtureClassifier", clone(MCLUSTDA_BIMODAL))  # compiles what the bimodal fixture compiled
