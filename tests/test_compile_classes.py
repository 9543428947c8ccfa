"""Compile once per size class: nearby sizes and K share programs; the persistent cache; every core.

Programs are counted with JAX's public monitoring events: one ``jaxpr_to_mlir_module`` (lowering) per
program built, whether or not the persistent cache then supplies the compiled code.
"""

import contextlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from jax import monitoring

import bayesgmm as bg
from bayesgmm import _chunks

_LOWERED: list[str] = []
monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: _LOWERED.append(kw.get("fun_name", ""))
    if event == "/jax/core/compile/jaxpr_to_mlir_module_duration" else None)


@contextlib.contextmanager
def programs_built():
    """The names of the programs lowered inside the block."""
    start = len(_LOWERED)
    names: list[str] = []
    yield names
    names.extend(_LOWERED[start:])


def _data(n: int, d: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0] * d, [6.0] * d, [0.0] * (d - 1) + [12.0], [12.0] + [0.0] * (d - 1)])
    return centers[rng.integers(0, 4, n)] + rng.normal(size=(n, d))


def test_size_classes():
    assert [_chunks.chunk_count_class(c) for c in (1, 2, 4, 5, 16, 17, 64, 65, 100, 1000)] == [
        1, 4, 4, 16, 16, 64, 64, 72, 104, 1024]
    for c in range(65, 5000, 7):
        assert c <= _chunks.chunk_count_class(c) <= c * 1.125
    assert _chunks.chunk_layout(8, 256) == (1, 256)
    assert _chunks.chunk_layout(272, 256) == (4, 256)
    assert _chunks.chunk_layout(1000, 256) == (4, 256)
    assert _chunks.chunk_layout(5000, 256, n_devices=4) == (16, 256)  # 1250 rows per device
    assert _chunks.chunk_layout(300, 65536) == (1, 512)  # accelerator chunks: small data stay small
    assert [_chunks.component_count_class(k, 1024) for k in (1, 2, 4, 5, 9)] == [4, 4, 4, 8, 12]
    assert _chunks.component_count_class(5, 1 << 20) == 5  # large data: no padded arithmetic


def test_nearby_sizes_and_components_share_two_programs():
    """N = 150, 200, 272, 1000 rows and K = 2..4 (one covariance model): at most two fit programs,
    and as many for the E-step of predict."""
    with programs_built() as names:
        for n in (150, 200, 272, 1000):
            X = _data(n)
            for k in (2, 3, 4):
                gm = bg.GaussianMixture(k, covariance_type="EVI", random_state=0).fit(X)
                assert gm.weights_.shape == (k,) and gm.predict_proba(X).shape == (n, k)
                assert np.isclose(gm.weights_.sum(), 1.0)
    assert names.count("jit(fit)") <= 2, names
    assert names.count("jit(e_step_chunks)") <= 2, names
    # nothing else is built per size (jnp.asarray lifts each new array shape with a trivial "stage")
    repeated = {name for name in names if names.count(name) > 2 and name != "jit(stage)"}
    assert not repeated, names


def test_padded_components_change_nothing(monkeypatch):
    """A fit compiled for 4 components with one masked equals the fit compiled for exactly 3 (same start)."""
    X = _data(400)
    start = bg.GaussianMixture(3, covariance_type="full", random_state=1, max_iter=1).fit(X)
    init = dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
    padded = bg.GaussianMixture(3, tol=1e-10, max_iter=50, **init).fit(X)
    monkeypatch.setattr(_chunks, "SMALL_DATA_ROWS", 0)
    exact = bg.GaussianMixture(3, tol=1e-10, max_iter=50, **init).fit(X)
    assert exact.n_iter_ == padded.n_iter_
    np.testing.assert_allclose(padded.means_, exact.means_, rtol=1e-10)
    np.testing.assert_allclose(padded.covariances_, exact.covariances_, rtol=1e-9)
    np.testing.assert_allclose(padded.lower_bound_, exact.lower_bound_, rtol=1e-12)
    np.testing.assert_allclose(padded.predict_proba(X), exact.predict_proba(X), atol=1e-10)


def test_padding_chunks_are_skipped_and_change_nothing():
    """40 rows in chunks of 8 (5 chunks of data in a class of 16) give the fit of one chunk of 64."""
    X = _data(40, d=2)
    start = bg.GaussianMixture(2, covariance_type="diag", random_state=0, max_iter=1).fit(X)
    init = dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
    small = bg.GaussianMixture(2, covariance_type="diag", chunk_size=8, tol=1e-10, **init).fit(X)
    one = bg.GaussianMixture(2, covariance_type="diag", chunk_size=64, tol=1e-10, **init).fit(X)
    assert small.n_iter_ == one.n_iter_
    np.testing.assert_allclose(small.means_, one.means_, rtol=1e-12)
    np.testing.assert_allclose(small.score_samples(X), one.score_samples(X), rtol=1e-12)


def test_select_on_data_of_a_similar_size_compiles_nothing():
    kw = dict(n_components=range(1, 4), covariance_types=("VVI",), n_init=2, random_state=0)
    bg.select(_data(272, d=2, seed=1), **kw)
    with programs_built() as names:
        sel = bg.select(_data(300, d=2, seed=2), **kw)
    assert not any("fit_grid" in name for name in names), names
    assert sel.best_.n_components == 3


_CACHE_SCRIPT = textwrap.dedent("""
    import json, sys
    from jax import monitoring
    hits = []
    monitoring.register_event_listener(lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
    import jax, numpy as np
    import bayesgmm as bg
    if sys.argv[1:] == ["fit"]:
        X = np.random.default_rng(0).normal(size=(100, 2))
        bg.GaussianMixture(2, covariance_type="spherical", random_state=0).fit(X)
    print(json.dumps({"dir": jax.config.jax_compilation_cache_dir, "hits": len(hits)}))
""")


def _run(script: str, *args: str, **env) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "BAYESGMM_CACHE_DIR")}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", script, *args], env=environ, capture_output=True, text=True, timeout=300,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_persistent_cache_by_default_and_never_over_the_users(tmp_path):
    cache = tmp_path / "cache"
    first = _run(_CACHE_SCRIPT, "fit", BAYESGMM_CACHE_DIR=str(cache))
    second = _run(_CACHE_SCRIPT, "fit", BAYESGMM_CACHE_DIR=str(cache))
    assert first["dir"] == second["dir"] == str(cache)
    assert second["hits"] >= 1 and any(cache.iterdir())  # the second process loads the fit program
    theirs = _run(_CACHE_SCRIPT, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "theirs"), BAYESGMM_CACHE_DIR=str(cache))
    assert theirs["dir"] == str(tmp_path / "theirs")
    assert _run(_CACHE_SCRIPT, BAYESGMM_CACHE_DIR="")["dir"] is None
    home = _run(_CACHE_SCRIPT, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert home["dir"] == str(tmp_path / "xdg" / "bayesgmm" / "jax")


def test_use_compilation_cache_moves_and_turns_off(tmp_path):
    import jax

    before = jax.config.jax_compilation_cache_dir
    try:
        assert bg.use_compilation_cache(tmp_path / "c") == tmp_path / "c"
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "c")
        assert bg.use_compilation_cache(False) is None
        assert jax.config.jax_compilation_cache_dir is None
    finally:
        bg.use_compilation_cache(before if before is not None else False)


def test_use_all_cores_before_jax_starts():
    script = textwrap.dedent("""
        import json, jax, bayesgmm as bg
        n = bg.use_all_cores(3)
        devices = jax.device_count()
        try:
            bg.use_all_cores(2)
            late = "accepted"
        except RuntimeError as err:
            late = str(err)
        print(json.dumps({"n": n, "devices": devices, "late": late}))
    """)
    out = _run(script, BAYESGMM_CACHE_DIR="")
    assert out["n"] == out["devices"] == 3
    assert "before the first JAX computation" in out["late"]
    with pytest.raises(ValueError, match="n_devices must be an integer >= 1"):
        bg.use_all_cores(0)
