"""GaussianMixtureClassifier (MclustDA and EDDA): reference tests against scikit-learn's QDA and LDA,
mclust's EDDA and MclustDA fits of iris and cvMclustDA's cross-validation of EDDA (recorded by
tests/fixtures/mclust/record_mclust.R), weights, priors, the Brier score, bad input, and scikit-learn's
estimator checks."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_classifiers_train, check_fit_idempotent, parametrize_with_checks

from bayesgmm import GaussianMixtureClassifier
from bayesgmm.classifier import brier_score
from bayesgmm.datasets import load_iris


#: R's mclust 6 on iris (classes in the order of classes_, which are sorted as R's factor levels).
MCLUST = json.loads((Path(__file__).parent / "fixtures" / "mclust" / "iris_da.json").read_text())
#: The models whose M-step has no closed form: mclust iterates VEI and VEV to 1.5e-8 relatively, and
#: on VEE, EVE and VVE its M-step and ours reach different optima of the M-step's objective (VVE's does
#: not maximise it; see test_mclust.py).
ITERATIVE_MSTEP = {"VEI", "VEV"}
MSTEP_OPTIMA_DIFFER = {"VEE", "EVE", "VVE"}


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


@pytest.fixture(scope="module")
def edda_mclust(iris):
    """EDDA without regularisation, as mclust fits it; the family is the doctest's (one compiled program
    for both, reg_covar being traced)."""
    return GaussianMixtureClassifier("EDDA", covariance_types=["EEE", "VEV", "VVV"], reg_covar=0.0).fit(*iris)


def test_edda_iris_is_mclusts(iris, edda_mclust):
    """mclust's ``MclustDA(iris[, 1:4], iris$Species, modelType = "EDDA")``: VEV (log-likelihood
    -187.7097, df 36, training error 0.02, Brier score 0.0127 in mclust's vignette), to the digits
    mclust's VEV M-step iterates to."""
    ref, clf = MCLUST["edda"], edda_mclust
    assert list(clf.classes_) == MCLUST["classes"]
    assert clf.covariance_types_ == [ref["modelName"]] * 3 and list(clf.n_components_) == [1, 1, 1]
    assert clf.log_likelihood_ == pytest.approx(ref["loglik"], rel=1e-9)
    assert clf.n_parameters_ == ref["df"]
    assert -clf.bic_ == pytest.approx(ref["bic"], rel=1e-9)  # mclust's sign: larger is better
    assert clf.training_error_ == pytest.approx(ref["training"]["error"], abs=1e-12)
    assert clf.training_brier_ == pytest.approx(ref["training"]["brier"], rel=1e-8)
    np.testing.assert_array_equal(np.searchsorted(clf.classes_, clf.predict(iris[0])) + 1,
                                  ref["training"]["classification"])
    np.testing.assert_allclose(clf.predict_proba(iris[0]), ref["training"]["z"], atol=1e-8)
    np.testing.assert_allclose(clf.priors_, ref["prop"], rtol=1e-12)
    for model, cls in zip(clf.models_, ref["classes"]):
        np.testing.assert_allclose(model.means_, cls["mean"], rtol=1e-12)
        np.testing.assert_allclose(model.covariances_, cls["sigma"], rtol=1e-5, atol=1e-6)
    table = clf.selection_table_.set_index("covariance_type")
    assert table.loc["VEV", "log_likelihood"] == pytest.approx(clf.log_likelihood_, rel=1e-10)
    for name in ("EEE", "VVV"):
        assert -table.loc[name, "bic"] == pytest.approx(ref["bic_table"][name], rel=1e-12), name
    assert table["bic"].idxmin() == "VEV" and not table["degenerate"].any()


def test_edda_cross_validation_with_mclusts_folds_is_cvmclustdas(iris, edda_mclust):
    """``cvMclustDA(edda, nfold = 10)`` with the folds R drew (recorded): the same fold predictions,
    error, Brier score and their standard errors."""
    ref = MCLUST["edda"]["cv"]
    cv = edda_mclust.cross_validate(*iris, folds=ref["fold"])
    assert len(cv.fold_errors) == ref["nfold"]
    np.testing.assert_array_equal(np.searchsorted(edda_mclust.classes_, cv.classification) + 1,
                                  ref["classification"])
    np.testing.assert_allclose(cv.proba, ref["z"], atol=1e-8)
    assert cv.error == pytest.approx(ref["error"], abs=1e-12)
    assert cv.error_se == pytest.approx(ref["error_se"], rel=1e-9)
    assert cv.brier == pytest.approx(ref["brier"], rel=1e-8)
    assert cv.brier_se == pytest.approx(ref["brier_se"], rel=1e-6)
    with pytest.raises(ValueError, match=r"folds must hold one fold label per sample, shape \(150,\)"):
        edda_mclust.cross_validate(*iris, folds=np.zeros(150))


@pytest.mark.slow
def test_edda_chooses_mclusts_model_among_all_14(iris):
    """EDDA over mclust's whole family (one program of 14 M-steps, ~15 s to compile): mclust's BIC for
    every model, and so its choice."""
    ref = MCLUST["edda"]
    clf = GaussianMixtureClassifier("EDDA", reg_covar=0.0).fit(*iris)
    assert clf.covariance_types_ == [ref["modelName"]] * 3
    assert clf.log_likelihood_ == pytest.approx(ref["loglik"], rel=1e-9)
    table = clf.selection_table_.set_index("covariance_type")
    assert sorted(table.index) == sorted(ref["bic_table"])
    for name, bic in ref["bic_table"].items():
        ours = -table.loc[name, "bic"]
        if name in MSTEP_OPTIMA_DIFFER:  # our M-step's optimum, better or a little worse than mclust's
            assert ours >= bic - 0.01, (name, ours, bic)
        else:
            assert ours == pytest.approx(bic, rel=1e-9 if name in ITERATIVE_MSTEP else 1e-12), name


@pytest.mark.slow
def test_mclustda_iris_is_mclusts(iris):
    """``MclustDA(iris[, 1:4], iris$Species)`` chooses EEE with 2 components for setosa and one full
    Gaussian ("XXX": every full model is the same at G = 1) for the others. mclust's whole grid (G = 1:5,
    14 models) costs ~30 s to compile here (~6 s this one); its choice is also the best of this sub-grid, where the
    likelihood, df, training error and Brier score are mclust's (the log-likelihood to mclust's EM
    tolerance, 1e-5 relative: ours iterates on to 1e-6)."""
    ref = MCLUST["mclustda"]
    clf = GaussianMixtureClassifier(n_components=(1, 2), covariance_types=["EEE", "VVV"], reg_covar=0.0,
                                    random_state=0).fit(*iris)
    chosen = [(m.covariance_type if k > 1 else "XXX", k) for m, k in zip(clf.models_, clf.n_components_)]
    assert chosen == [(c["modelName"], c["G"]) for c in ref["classes"]]
    assert clf.log_likelihood_ == pytest.approx(ref["loglik"], rel=1e-6)
    assert clf.log_likelihood_ >= ref["loglik"] - 1e-9
    assert clf.n_parameters_ == ref["df"]
    assert clf.training_error_ == pytest.approx(ref["training"]["error"], abs=1e-12)
    assert clf.training_brier_ == pytest.approx(ref["training"]["brier"], rel=1e-6)
    np.testing.assert_array_equal(np.searchsorted(clf.classes_, clf.predict(iris[0])) + 1,
                                  ref["training"]["classification"])
    np.testing.assert_allclose(clf.predict_proba(iris[0]), ref["training"]["z"], atol=1e-8)
    # setosa's two components, to the spread mclust's earlier stop leaves (weights 2e-4, means 5e-4 apart)
    setosa, ref_setosa = clf.models_[0], ref["classes"][0]
    order, ref_order = np.argsort(setosa.weights_), np.argsort(ref_setosa["pro"])
    np.testing.assert_allclose(setosa.weights_[order], np.asarray(ref_setosa["pro"])[ref_order], atol=1e-3)
    np.testing.assert_allclose(setosa.means_[order], np.asarray(ref_setosa["mean"])[ref_order], atol=2e-3)
    np.testing.assert_allclose(setosa.covariances_, ref_setosa["sigma"][0], atol=5e-4)


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
