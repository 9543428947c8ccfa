"""The uniform noise component (mclust's noise; Banfield and Raftery 1993) and the anomaly API.

The reference is R's mclust 6 on three Gaussian clusters plus 1/7 planted uniform noise
(tests/fixtures/mclust/record_noise.R writes the data and the fit); the test run does not need R.
"""

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import bayesgmm as bg
from bayesgmm import em
from bayesgmm._chunks import chunk_rows
from bayesgmm.io import ModelFileError
from bayesgmm.noise import hypervolume_box

FIXTURES = Path(__file__).parent / "fixtures" / "mclust"
TRUE_MEANS = np.array([[0.0, 0.0], [3.0, 5.0], [6.0, 0.0]])  # sorted by the first coordinate


@pytest.fixture(scope="module")
def data():
    table = np.genfromtxt(FIXTURES / "noise_data.csv", delimiter=",", skip_header=1)
    return table[:, :2], table[:, 2].astype(bool)


@pytest.fixture(scope="module")
def ref():
    return json.loads((FIXTURES / "noise.json").read_text())


@pytest.fixture(scope="module")
def mclust_fit(data):
    """mclust's recorded fit, repeated: VVV, hierarchical start on the rows outside the initial noise."""
    X, mask = data
    return bg.GaussianMixture(3, covariance_type="VVV", noise_init=mask, init_params="hc", tol=1e-13,
                              max_iter=1000).fit(X)


@pytest.fixture(scope="module")
def default_fit(data):
    """noise=True without a mask: k-means on every row, the noise weight starting at 0.1."""
    return bg.GaussianMixture(3, noise=True, random_state=0).fit(data[0])


@pytest.fixture(scope="module")
def plain_fit(data):
    """No noise component."""
    return bg.GaussianMixture(3, random_state=0).fit(data[0])


def _sorted(gm):
    order = np.argsort(gm.means_[:, 0])
    return gm.weights_[order], gm.means_[order], gm.covariances_[order]


# ------------------------------------------------------------------ against mclust


def test_hypervolume_is_mclusts_hypvol(mclust_fit, ref):
    assert mclust_fit.hypervolume_ == pytest.approx(ref["hypvol"], rel=1e-12)  # the bounding box here
    assert 1 / mclust_fit.hypervolume_ == pytest.approx(ref["Vinv"], rel=1e-12)
    np.testing.assert_array_equal(mclust_fit.noise_axes_, np.eye(2))


def test_hypervolume_of_a_correlated_cloud_is_its_principal_box(ref):
    box = hypervolume_box(np.array(ref["elongated"]))
    assert math.exp(box.log_volume) == pytest.approx(ref["elongated_hypvol"], rel=1e-10)
    assert ref["elongated_hypvol"] < ref["elongated_box_volume"] / 2
    np.testing.assert_allclose(box.axes.T @ box.axes, np.eye(2), atol=1e-12)
    assert np.min(np.abs(box.axes)) > 0.5  # rotated: close to the diagonals


def test_fit_matches_mclust(mclust_fit, ref, data):
    X, _ = data
    weights, means, covariances = _sorted(mclust_fit)
    order = np.argsort(np.array(ref["mean"])[:, 0])
    assert mclust_fit.score(X) * len(X) == pytest.approx(ref["loglik"], rel=1e-9)
    np.testing.assert_allclose(weights, np.array(ref["pro"][:3])[order], atol=1e-6)
    assert mclust_fit.noise_weight_ == pytest.approx(ref["pro"][3], abs=1e-6)
    np.testing.assert_allclose(means, np.array(ref["mean"])[order], atol=1e-6)
    np.testing.assert_allclose(covariances, np.array(ref["sigma"])[order], atol=1e-5)
    assert weights.sum() + mclust_fit.noise_weight_ == pytest.approx(1.0, abs=1e-12)


def test_bic_counts_the_noise_as_mclust(mclust_fit, ref, data):
    X, _ = data
    assert mclust_fit._n_parameters() == ref["df"] == 17 + 2  # VVV, K = 3, D = 2; + noise weight + hypervolume
    assert -mclust_fit.bic(X) == pytest.approx(ref["bic"], rel=1e-9)  # mclust's sign


def test_noise_labels_match_mclust(mclust_fit, ref, data):
    labels = mclust_fit.predict(data[0])
    np.testing.assert_array_equal(labels == -1, np.array(ref["classification"]) == 0)


def test_select_with_noise_matches_mclust(ref, data):
    X, mask = data
    sel = bg.select(X, n_components=3, covariance_types="VVV", noise_init=mask, n_init=1, tol=1e-13,
                    random_state=0)
    row = sel.table.iloc[0]
    assert row["n_parameters"] == ref["df"]
    assert -row["bic"] == pytest.approx(ref["bic"], rel=1e-9)
    assert sel.best_.noise_weight_ == pytest.approx(ref["pro"][3], abs=1e-6)
    assert sel.best_.hypervolume_ == pytest.approx(ref["hypvol"], rel=1e-12)


# ------------------------------------------------------------------ recovery and invariants


def test_default_start_recovers_planted_noise(default_fit, data, ref):
    X, mask = data
    assert default_fit.noise_weight_ == pytest.approx(mask.mean(), abs=0.02)
    weights, means, _ = _sorted(default_fit)
    np.testing.assert_allclose(means, TRUE_MEANS, atol=0.15)
    np.testing.assert_allclose(weights / weights.sum(), np.array([200, 220, 180]) / 600, atol=0.02)
    # the planted noise points inside the clusters go to them: the noise labels are mclust's
    labels = default_fit.predict(X)
    assert np.mean((labels == -1) == (np.array(ref["classification"]) == 0)) > 0.99
    assert np.mean(labels[mask] == -1) > 0.7 and np.mean(labels[~mask] == -1) < 0.02


def test_lower_bound_never_decreases(mclust_fit, default_fit):
    for gm in (mclust_fit, default_fit):
        assert np.all(np.diff(gm.lower_bounds_) >= -1e-12)


def test_predict_is_the_argmax_with_noise_last(default_fit, data):
    X, _ = data
    proba = default_fit.predict_proba(X)
    assert proba.shape == (len(X), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    argmax = np.argmax(proba, axis=1)
    np.testing.assert_array_equal(default_fit.predict(X), np.where(argmax == 3, -1, argmax))
    assert np.any(argmax == 3)


def test_score_samples_is_the_mixture_density(default_fit, data):
    X, _ = data
    gm = default_fit
    density = sum(w * multivariate_normal(m, c).pdf(X) for w, m, c in zip(gm.weights_, gm.means_, gm.covariances_))
    np.testing.assert_allclose(gm.score_samples(X), np.log(density + gm.noise_weight_ / gm.hypervolume_), rtol=1e-10)


def test_sample_draws_the_noise_share_from_the_box(default_fit):
    gm = default_fit
    X, y = gm.sample(20000)
    share = np.mean(y == -1)
    assert abs(share - gm.noise_weight_) < 4 * math.sqrt(gm.noise_weight_ * (1 - gm.noise_weight_) / 20000)
    coords = X[y == -1] @ gm.noise_axes_
    lower, upper = gm.noise_bounds_
    assert np.all((coords >= lower) & (coords <= upper))
    np.testing.assert_allclose(coords.mean(axis=0), (lower + upper) / 2, atol=0.05 * np.max(upper - lower))
    assert np.prod(upper - lower) == pytest.approx(gm.hypervolume_, rel=1e-12)
    assert np.all(np.diff(y[y >= 0]) >= 0) and np.all(y[-np.sum(y == -1):] == -1)  # sorted, the noise last


@pytest.mark.parametrize("d", [2, 3])  # the feature-major chunk statistics, then the matmul ones
def test_noise_weight_zero_changes_nothing(d):
    """The noise column at weight 0 leaves the EM step bit for bit as without it."""
    rng = np.random.default_rng(d)
    X = np.vstack([rng.normal(size=(60, d)), rng.normal(4, 1, size=(40, d))])
    step = jax.jit(em.em_step)
    with jax.enable_x64(True):
        Xc, wc = chunk_rows(X, np.ones(len(X)), 256)
        mask = jnp.ones(2, bool)
        resp, _ = chunk_rows(np.eye(2)[(X[:, 0] > 2).astype(int)], np.ones(len(X)), 256)  # padding rows: 0
        plain = jax.jit(em.m_step, static_argnums=3)(Xc, resp, 1e-6, "VVV")
        noisy = plain.replace(noise_weight=jnp.zeros(()), noise_log_density=jnp.asarray(-3.0))
        for _ in range(3):
            plain, plain_bound = step(Xc, wc, plain, 1e-6, mask)
            noisy, noisy_bound = step(Xc, wc, noisy, 1e-6, mask)
            assert float(noisy.noise_weight) == 0.0 and float(plain_bound) == float(noisy_bound)
            for name in ("weights", "means", "precisions_cholesky"):
                np.testing.assert_array_equal(np.asarray(getattr(plain, name)), np.asarray(getattr(noisy, name)))


# ------------------------------------------------------------------ the anomaly API


def test_predict_outliers_with_noise_is_the_noise_label(default_fit, data):
    X, _ = data
    np.testing.assert_array_equal(default_fit.predict_outliers(X), default_fit.predict(X) == -1)


def test_predict_outliers_with_contamination_flags_the_lowest_scores(default_fit, data):
    X, _ = data
    flags = default_fit.predict_outliers(X, contamination=0.1)
    scores = default_fit.score_samples(X)
    assert flags.sum() == 70  # 10% of 700
    assert scores[flags].max() < scores[~flags].min()


def test_predict_outliers_needs_contamination_without_noise(plain_fit, data):
    X, _ = data
    plain = plain_fit
    with pytest.raises(ValueError, match="contamination"):
        plain.predict_outliers(X)
    assert not hasattr(plain, "noise_weight_") and plain.predict_proba(X[:5]).shape == (5, 3)
    assert plain._n_parameters() == 17
    np.testing.assert_array_equal(plain.predict_outliers(X, 0.05), plain.score_samples(X) < np.quantile(
        plain.score_samples(X), 0.05))


def test_bad_contamination_is_refused_by_name(default_fit, data):
    for bad in (0.0, 0.6, -1, True, "0.1"):
        with pytest.raises(ValueError, match="contamination"):
            default_fit.predict_outliers(data[0], contamination=bad)


# ------------------------------------------------------------------ files, bad input, refusals


def test_model_file_round_trips_the_noise(default_fit, mclust_fit, data, tmp_path):
    X, mask = data
    path = default_fit.save(tmp_path / "noise.bgmm")
    loaded = bg.load(path)
    for name in ("noise_weight_", "hypervolume_"):
        assert getattr(loaded, name) == getattr(default_fit, name)
    np.testing.assert_array_equal(loaded.noise_bounds_, default_fit.noise_bounds_)
    np.testing.assert_array_equal(loaded.score_samples(X), default_fit.score_samples(X))
    np.testing.assert_array_equal(loaded.predict(X), default_fit.predict(X))
    np.testing.assert_array_equal(bg.load(mclust_fit.save(tmp_path / "mask.bgmm")).noise_init, mask)


def test_model_file_without_the_noise_attributes_is_refused(default_fit, tmp_path):
    import copy

    broken = copy.copy(default_fit)
    del broken.hypervolume_
    path = broken.save(tmp_path / "broken.bgmm")
    with pytest.raises(ModelFileError, match="hypervolume_ is missing"):
        bg.load(path)


def test_bad_noise_init_is_refused_by_name(data):
    X, mask = data
    for bad, words in ((mask.astype(int), "boolean"), (mask[:-1], "shape"), (np.ones(len(X), bool), "every row")):
        with pytest.raises(ValueError, match="noise_init"):
            bg.GaussianMixture(3, noise_init=bad).fit(X)
        with pytest.raises(ValueError, match=words):
            bg.GaussianMixture(3, noise_init=bad).fit(X)


def test_constant_column_has_no_hypervolume():
    X = np.column_stack([np.arange(10.0), np.ones(10)])
    with pytest.raises(ValueError, match="hypervolume is 0"):
        hypervolume_box(X)


def test_noise_refuses_what_it_does_not_define(default_fit, data):
    X, _ = data
    with pytest.raises(NotImplementedError, match="noise"):
        default_fit.condition([0], [1.0])
    with pytest.raises(ValueError, match="partial_fit does not support noise"):
        bg.GaussianMixture(3, noise=True).partial_fit(X)


def test_sample_float32_with_an_empty_component(plain_fit):
    """float32 weights whose float64 sum passes 1 (0.6f + 0.4f) used to fail numpy's multinomial
    ("sum(pvals[:-1]) > 1.0") for every seed when the last component is empty."""
    import copy

    gm = copy.deepcopy(plain_fit)
    gm.weights_ = np.array([0.6, 0.4, 0.0], np.float32)
    gm.means_, gm.covariances_ = gm.means_.astype(np.float32), gm.covariances_.astype(np.float32)
    assert float(np.sum(gm.weights_[:2], dtype=np.float64)) > 1 + 1e-12
    for seed in range(3):
        gm.random_state = seed
        Xs, y = gm.sample(50)
        assert Xs.dtype == np.float32 and not np.any(y == 2)
