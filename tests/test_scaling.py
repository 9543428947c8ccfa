"""Scaling: multi-device sharding, streaming (stepwise) EM, float32 that holds."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import bayesgmm as bg
from bayesgmm.estimators import PrecisionWarning
from conftest import sample_mixture

_SHARDED_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    import bayesgmm as bg
    from bayesgmm import _chunks
    _chunks.MESH_MIN_ROWS = 0  # shard these 5000 rows (by default only larger data are sharded)
    X = np.load(sys.argv[1])
    out = {"devices": jax.device_count()}
    for ct in ["full", "diag"]:
        gm = bg.GaussianMixture(3, covariance_type=ct, n_init=2, random_state=0, chunk_size=256, tol=1e-10,
                                max_iter=200).fit(X)
        out[ct] = {"lower_bound": gm.lower_bound_, "means": gm.means_.tolist(), "n_iter": gm.n_iter_}
    sel = bg.select(X, n_components=[2, 3], covariance_types=["tied"], random_state=0, chunk_size=256)
    out["select"] = sel.table.log_likelihood.tolist()
    with jax.enable_x64(True):
        w = np.linspace(0.5, 2.0, len(X))
        host = _chunks.chunk_rows(X, w, 256, _chunks.data_mesh())
        _chunks.TRANSFER_BLOCK_BYTES = 4096  # large-data path: blocks written into the device array
        blocks = _chunks.chunk_rows(X, w, 256, _chunks.data_mesh())
        out["blocks_equal"] = all(np.array_equal(np.asarray(a), np.asarray(b)) and a.dtype == b.dtype
                                  and a.sharding.is_equivalent_to(b.sharding, a.ndim) for a, b in zip(host, blocks))
    print(json.dumps(out))
""")


def _run_with_devices(n_devices: int, data_path) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n_devices}"}
    result = subprocess.run([sys.executable, "-c", _SHARDED_SCRIPT, str(data_path)], env=env, capture_output=True,
                            text=True, timeout=600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_one_and_four_devices_give_the_same_fit(tmp_path):
    X, _, _ = sample_mixture(5, n=5000)
    path = tmp_path / "X.npy"
    np.save(path, X)
    one, four = _run_with_devices(1, path), _run_with_devices(4, path)
    assert one["devices"] == 1 and four["devices"] == 4
    for ct in ["full", "diag"]:
        assert one[ct]["n_iter"] == four[ct]["n_iter"]
        np.testing.assert_allclose(four[ct]["lower_bound"], one[ct]["lower_bound"], rtol=1e-10)
        np.testing.assert_allclose(four[ct]["means"], one[ct]["means"], rtol=1e-8)
    np.testing.assert_allclose(four["select"], one["select"], rtol=1e-8)
    assert one["blocks_equal"] and four["blocks_equal"]


def test_large_data_goes_to_the_device_in_blocks(monkeypatch):
    """Above TRANSFER_BLOCK_BYTES the rows are written block by block into the padded device array
    (no padded host copy): same chunks, same zero-weight padding, same fit."""
    from bayesgmm import _chunks

    X, _, _ = sample_mixture(2, n=1000)
    X32 = X.astype(np.float32)
    w = np.linspace(0.5, 2.0, len(X), dtype=np.float32)
    host = _chunks.chunk_rows(X32, w, 96)
    before = bg.GaussianMixture(3, random_state=0, chunk_size=96).fit(X32)
    monkeypatch.setattr(_chunks, "TRANSFER_BLOCK_BYTES", 1000)  # 125 rows of 2 float32: 9 blocks
    blocks = _chunks.chunk_rows(X32, w, 96)
    assert blocks[0].shape == (16, 96, 2)  # 11 chunks of data, in the size class of 16
    for a, b in zip(host, blocks):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
    np.testing.assert_array_equal(np.asarray(blocks[0]).reshape(-1, 2)[1000:], 0.0)
    after = bg.GaussianMixture(3, random_state=0, chunk_size=96).fit(X32)
    np.testing.assert_array_equal(after.means_, before.means_)


def test_stepwise_em_reaches_the_batch_optimum():
    X, _, _ = sample_mixture(3, n=8000)
    batch = bg.GaussianMixture(3, tol=1e-9, n_init=3, max_iter=500, random_state=0).fit(X)
    online = bg.GaussianMixture(3, random_state=0)
    rng = np.random.default_rng(0)
    for _ in range(8):
        order = rng.permutation(len(X))
        for part in np.array_split(order, 10):
            online.partial_fit(X[part])
    assert online.n_iter_ == 80 and not online.converged_
    match = [int(np.argmin(((online.means_ - m) ** 2).sum(1))) for m in batch.means_]
    assert sorted(match) == [0, 1, 2]
    np.testing.assert_allclose(online.means_[match], batch.means_, atol=0.05)
    np.testing.assert_allclose(online.weights_[match], batch.weights_, atol=0.01)
    np.testing.assert_allclose(online.covariances_[match], batch.covariances_, atol=0.1 * np.abs(batch.covariances_).max())
    assert online.score(X) > batch.score(X) - 1e-3


def test_partial_fit_first_step_is_a_batch_step_and_fit_resets(faithful):
    gm = bg.GaussianMixture(2, random_state=0).partial_fit(faithful)
    ref = bg.GaussianMixture(2, random_state=0, max_iter=1, tol=0.0)
    with pytest.warns(Warning):
        ref.fit(faithful)
    np.testing.assert_allclose(gm.means_, ref.means_, rtol=1e-10)
    with pytest.raises(ValueError, match="step_size must be in \\(0, 1\\]"):
        gm.partial_fit(faithful, step_size=1.5)
    with pytest.raises(ValueError, match="X has 3 features"):
        gm.partial_fit(np.zeros((5, 3)))
    gm.fit(faithful)
    assert not hasattr(gm, "_stream")


def test_float32_with_a_large_offset_fits_as_well_as_centered():
    X, _, _ = sample_mixture(7, n=3000, spread=3.0)
    centered = bg.GaussianMixture(3, n_init=2, random_state=0).fit(X.astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        shifted = bg.GaussianMixture(3, n_init=2, random_state=0).fit((X + 1e4).astype(np.float32))
    assert shifted.means_.dtype == np.float32
    np.testing.assert_allclose(shifted.score((X + 1e4).astype(np.float32)), centered.score(X.astype(np.float32)),
                               atol=2e-3)
    np.testing.assert_allclose(np.sort(shifted.means_[:, 0] - 1e4), np.sort(centered.means_[:, 0]), atol=2e-2)
    for gm in (centered, shifted):
        assert np.all(np.linalg.eigvalsh(gm.covariances_) > 0)


def test_float32_precision_warning_names_the_column():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=500), 1e6 + rng.normal(size=500)]).astype(np.float32)
    with pytest.warns(PrecisionWarning, match="column 1 has \\|mean\\| / std = 1.0.e\\+06"):
        gm = bg.GaussianMixture(2, random_state=0).fit(X)
    assert np.all(np.isfinite(gm.score_samples(X)))


@pytest.mark.slow
@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_a_million_float32_rows_give_no_nan(covariance_type):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(1_000_000, 2)) * [1.0, 30.0] + rng.integers(0, 3, size=(1_000_000, 1)) * 8.0)
    X = X.astype(np.float32)
    gm = bg.GaussianMixture(3, covariance_type=covariance_type, max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # may stop at max_iter
        gm.fit(X)
    for name in ["weights_", "means_", "covariances_", "precisions_cholesky_"]:
        assert np.all(np.isfinite(getattr(gm, name))), name
    assert np.all(gm.covariances_ > 0) if covariance_type == "spherical" else np.all(
        np.linalg.eigvalsh(gm.covariances_) > 0)
    assert np.all(np.isfinite(gm.score_samples(X[:1000])))
    assert np.isfinite(gm.lower_bound_) and np.all(np.diff(gm.lower_bounds_) > -1e-4)


def test_column_moments_match_numpy_without_a_copy_of_the_data():
    from bayesgmm.estimators import column_moments

    rng = np.random.default_rng(3)
    X = rng.normal(1e4, 2.0, size=(150_000, 3)).astype(np.float32)  # more than two blocks of rows
    w = rng.uniform(0, 2, size=len(X))
    mean, variance = column_moments(X, w)
    np.testing.assert_allclose(mean, np.average(X.astype(np.float64), axis=0, weights=w), rtol=1e-12)
    np.testing.assert_allclose(variance, np.cov(X, rowvar=False, aweights=w, bias=True).diagonal(), rtol=1e-9)
    np.testing.assert_allclose(column_moments(X)[1], X.astype(np.float64).var(axis=0), rtol=1e-9)
