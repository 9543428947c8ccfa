"""Saving and loading models: bit-identical round trips, no pickle, clear errors on bad files."""

import json
import struct
import zipfile

import numpy as np
import pandas as pd
import pytest

import bayesgmm as bg
from bayesgmm.bayes.estimator import BayesianGaussianMixture
from bayesgmm.io import FORMAT_VERSION, MANIFEST, ModelFileError


def assert_same_arrays(a, b):
    assert type(a) is type(b) or (hasattr(a, "dtype") and hasattr(b, "dtype"))
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(("covariance_type", "dtype"), [("full", np.float64), ("tied", np.float32)])
def test_gaussian_mixture_round_trip_is_bit_identical(tmp_path, faithful, covariance_type, dtype):
    X = faithful.astype(dtype)
    gm = bg.GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    path = gm.save(tmp_path / "model.bgmm")
    loaded = bg.load(path)
    assert type(loaded) is bg.GaussianMixture
    assert loaded.get_params() == gm.get_params()
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert_same_arrays(getattr(loaded, name), getattr(gm, name))
    assert (loaded.converged_, loaded.n_iter_, loaded.lower_bound_, loaded.lower_bounds_) == (
        gm.converged_, gm.n_iter_, gm.lower_bound_, gm.lower_bounds_)
    assert_same_arrays(loaded.predict_proba(X), gm.predict_proba(X))
    assert_same_arrays(loaded.score_samples(X), gm.score_samples(X))
    assert_same_arrays(loaded.predict(X), gm.predict(X))


def test_feature_names_random_state_and_user_init_survive(tmp_path):
    df = bg.datasets.load_faithful()
    rs = np.random.RandomState(3)
    gm = bg.GaussianMixture(2, means_init=[[2.0, 55.0], [4.5, 80.0]], random_state=rs).fit(df)
    loaded = bg.load(gm.save(tmp_path / "m.bgmm"))
    assert list(loaded.feature_names_in_) == ["eruptions", "waiting"]
    assert_same_arrays(np.asarray(loaded.means_init), np.asarray(gm.means_init))
    # the saved RandomState continues the same stream: sample() draws the same points
    assert_same_arrays(loaded.sample(5)[0], gm.sample(5)[0])
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(df.rename(columns={"waiting": "wait"}))


def test_file_is_plain_zip_with_json_and_npy(tmp_path, faithful):
    gm = bg.GaussianMixture(2, random_state=0).fit(faithful)
    path = gm.save(tmp_path / "m.bgmm")
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read(MANIFEST))
        assert all(n == MANIFEST or n.endswith(".npy") for n in archive.namelist())
    assert manifest["format"] == "bayesgmm-model" and manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"]["class"] == "GaussianMixture"
    assert manifest["model"]["params"]["n_components"] == 2


@pytest.mark.slow
def test_bayesian_round_trip_keeps_posterior_and_predictions(tmp_path, faithful_posterior):
    bgm, X = faithful_posterior
    loaded = bg.load(bgm.save(tmp_path / "post.bgmm"))
    assert type(loaded) is BayesianGaussianMixture
    assert loaded.idata_.identical(bgm.idata_)
    assert loaded.idata_raw_.identical(bgm.idata_raw_)
    assert set(loaded.idata_.children) >= {"posterior", "sample_stats", "log_likelihood", "observed_data"}
    for field in bgm.draws_._fields:
        assert_same_arrays(getattr(loaded.draws_, field), getattr(bgm.draws_, field))
    for name in ("weights_", "means_", "covariances_", "n_occupied_posterior_", "relabel_permutations_"):
        assert_same_arrays(getattr(loaded, name), getattr(bgm, name))
    assert_same_arrays(loaded.em_.means_, bgm.em_.means_)
    assert_same_arrays(loaded.predict_proba(X), bgm.predict_proba(X))
    assert_same_arrays(loaded.score_samples(X), bgm.score_samples(X))
    pd.testing.assert_frame_equal(loaded.summary(), bgm.summary())


@pytest.fixture(scope="module")
def branches():
    """y = +-sqrt(x), a multimodal p(y | x): the data and settings of the regressor's doctest (one
    compiled program for both)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 4, 600)
    return x[:, None], rng.choice([-1.0, 1.0], 600) * np.sqrt(x) + rng.normal(0, 0.05, 600)


def test_regressor_round_trip_predicts_identically(tmp_path, branches):
    X, y = branches
    reg = bg.GaussianMixtureRegressor(n_components=6, random_state=0).fit(X, y)
    loaded = bg.load(reg.save(tmp_path / "reg.bgmm"))
    assert type(loaded) is bg.GaussianMixtureRegressor and loaded.get_params() == reg.get_params()
    assert (loaded.n_features_in_, loaded.n_targets_, loaded.n_iter_) == (1, 1, reg.n_iter_)
    for a, b in zip(loaded.predict(X, return_std=True), reg.predict(X, return_std=True)):
        assert_same_arrays(a, b)
    assert_same_arrays(loaded.predict_distribution(X[:5]).weights, reg.predict_distribution(X[:5]).weights)
    # a y of one column keeps its shape: the private flag that says so is in the file
    column = bg.GaussianMixtureRegressor(n_components=6, random_state=0).fit(X, y[:, None])
    back = bg.load(column.save(tmp_path / "column.bgmm"))
    assert back.predict(X).shape == (len(X), 1)
    assert_same_arrays(back.predict(X), column.predict(X))


@pytest.mark.parametrize("model_type", ["EDDA", "MclustDA"])
def test_classifier_round_trip_predicts_identically(tmp_path, model_type):
    """EDDA with the doctest's family, MclustDA with one full Gaussian per class (the programs
    test_classifier.py compiles); string and integer labels."""
    iris = bg.datasets.load_iris()
    X, y = iris.drop(columns="species"), iris["species"]
    if model_type == "EDDA":
        clf = bg.GaussianMixtureClassifier("EDDA", covariance_types=["EEE", "VEV", "VVV"]).fit(X, y)
    else:
        X, y = X.to_numpy(), np.unique(y, return_inverse=True)[1]
        clf = bg.GaussianMixtureClassifier(n_components=range(1, 2), covariance_types="full", reg_covar=0.0,
                                           random_state=0).fit(X, y)
    loaded = bg.load(clf.save(tmp_path / "clf.bgmm"))
    assert type(loaded) is bg.GaussianMixtureClassifier and loaded.get_params() == clf.get_params()
    assert loaded.classes_.dtype == clf.classes_.dtype and loaded.classes_.tolist() == clf.classes_.tolist()
    assert_same_arrays(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    pd.testing.assert_frame_equal(loaded.selection_table_, clf.selection_table_)
    assert (loaded.covariance_types_, loaded.bic_, loaded.training_error_) == (
        clf.covariance_types_, clf.bic_, clf.training_error_)
    assert [type(m) for m in loaded.models_] == [bg.GaussianMixture] * 3
    # the stacked components are derived from models_, never read: a file whose models_ disagree
    # with its classes is refused
    short = rewrite_manifest(tmp_path / "clf.bgmm", tmp_path / "short.bgmm",
                             lambda m: m["model"]["fitted"]["models_"].pop())
    with pytest.raises(ModelFileError, match="models_ must be a list of 3 GaussianMixture"):
        bg.load(short)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        bg.load(tmp_path / "nope.bgmm")


def test_foreign_and_corrupted_files_give_clear_errors(tmp_path, faithful):
    text = tmp_path / "data.csv"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(ModelFileError, match=r"data\.csv: not a bayesgmm model file \(not a ZIP archive\)"):
        bg.load(text)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(ModelFileError, match="no bayesgmm.json inside"):
        bg.load(other)

    good = bg.GaussianMixture(2, random_state=0).fit(faithful).save(tmp_path / "good.bgmm")
    data = bytearray(good.read_bytes())
    truncated = tmp_path / "truncated.bgmm"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated.bgmm: not a bayesgmm model file"):
        bg.load(truncated)

    # flip bytes inside a stored array: the CRC check catches it
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("arrays/0.npy")
    flipped = bytearray(data)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    for i in range(start + 5, start + 15):
        flipped[i] ^= 0xFF
    corrupted = tmp_path / "corrupted.bgmm"
    corrupted.write_bytes(bytes(flipped))
    with pytest.raises(ModelFileError, match="corrupted.bgmm: corrupted model file"):
        bg.load(corrupted)


def rewrite_manifest(src, dst, change):
    with zipfile.ZipFile(src) as archive, zipfile.ZipFile(dst, "w") as out:
        for name in archive.namelist():
            data = archive.read(name)
            if name == MANIFEST:
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest)
            out.writestr(name, data)
    return dst


def test_manifest_that_names_code_or_newer_version_is_refused(tmp_path, faithful):
    good = bg.GaussianMixture(2, random_state=0).fit(faithful).save(tmp_path / "good.bgmm")
    evil = rewrite_manifest(good, tmp_path / "evil.bgmm",
                            lambda m: m["model"].__setitem__("class", "os.system"))
    with pytest.raises(ModelFileError, match="unknown model class 'os.system'"):
        bg.load(evil)
    newer = rewrite_manifest(good, tmp_path / "newer.bgmm",
                             lambda m: m.__setitem__("format_version", FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match="newer than this bayesgmm reads"):
        bg.load(newer)
    foreign = rewrite_manifest(good, tmp_path / "foreign.bgmm", lambda m: m.__setitem__("format", "other"))
    with pytest.raises(ModelFileError, match="format field"):
        bg.load(foreign)


def test_object_array_inside_is_refused_without_unpickling(tmp_path, faithful):
    good = bg.GaussianMixture(2, random_state=0).fit(faithful).save(tmp_path / "good.bgmm")
    bad = tmp_path / "pickled.bgmm"
    with zipfile.ZipFile(good) as archive, zipfile.ZipFile(bad, "w") as out:
        for name in archive.namelist():
            if name == "arrays/0.npy":
                with out.open(name, "w") as f:
                    np.lib.format.write_array(f, np.array([object()], dtype=object), allow_pickle=True)
            else:
                out.writestr(name, archive.read(name))
    with pytest.raises(ModelFileError, match="allow_pickle=False"):
        bg.load(bad)


def test_save_refuses_unfitted_and_foreign_objects(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        bg.save(bg.GaussianMixture(2), tmp_path / "x.bgmm")
    with pytest.raises(TypeError, match="save expects one of bayesgmm's estimators .GaussianMixture, "
                                        "BayesianGaussianMixture, GaussianMixtureRegressor, GaussianMixtureClassifier"):
        bg.save({"weights_": 1}, tmp_path / "x.bgmm")
    for unfitted in (bg.GaussianMixtureRegressor(2), bg.GaussianMixtureClassifier()):
        with pytest.raises(ValueError, match=f"this {type(unfitted).__name__} is not fitted yet"):
            unfitted.save(tmp_path / "x.bgmm")
