"""Chain methods, seeds and the progress bar of the NUTS path, on a tiny problem (compilation dominates)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bayesgmm.bayes import infer
from bayesgmm.bayes.estimator import BayesianGaussianMixture

# Runs of 100 draws per chain are too short for R-hat <= 1.05; the estimator rightly warns.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:worst R-hat")]

SETTINGS = dict(covariance_type="spherical", num_chains=2, num_warmup=100, num_samples=100)


def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(-2, 1, (20, 1)), rng.normal(2, 1, (20, 1))])


def test_same_seed_same_draws_whatever_the_chain_method():
    X = data()
    sequential = BayesianGaussianMixture(2, chain_method="sequential", random_state=3, **SETTINGS).fit(X)
    again = BayesianGaussianMixture(2, chain_method="sequential", random_state=3, **SETTINGS).fit(X)
    vectorized = BayesianGaussianMixture(2, chain_method="vectorized", random_state=3, **SETTINGS).fit(X)
    draws = sequential.idata_raw_["posterior"]["means"].values
    np.testing.assert_array_equal(again.idata_raw_["posterior"]["means"].values, draws)
    # Chains get the same keys and starting points in both methods, but batched linear algebra rounds
    # differently and NUTS trajectories amplify it: the posteriors agree, not the individual draws.
    np.testing.assert_allclose(vectorized.means_, sequential.means_, atol=0.25)
    np.testing.assert_allclose(np.sort(sequential.means_.ravel()), [-2, 2], atol=0.5)
    assert sequential.chain_method_ == "sequential" and vectorized.chain_method_ == "vectorized"
    other = BayesianGaussianMixture(2, chain_method="sequential", random_state=4, **SETTINGS).fit(X)
    assert not np.array_equal(other.idata_raw_["posterior"]["means"].values, draws)


def test_progress_bar_is_driven_from_the_compiled_loop(capsys):
    BayesianGaussianMixture(2, chain_method="sequential", progress_bar=True, random_state=0, **SETTINGS).fit(data())
    err = capsys.readouterr().err
    assert "NUTS, 2 chain(s)" in err and "200/200" in err
    assert infer._Progress.bars == {}  # closed


PARALLEL = """
import json, jax, numpy as np
from bayesgmm.bayes.estimator import BayesianGaussianMixture
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(-2, 1, (20, 1)), rng.normal(2, 1, (20, 1))])
settings = json.loads({settings!r})
fit = BayesianGaussianMixture(2, chain_method="auto", random_state=3, **settings).fit(X)
compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kw: compiles.append(event) if "backend_compile" in event else None)
again = BayesianGaussianMixture(2, chain_method="auto", random_state=3, **settings).fit(X)
print(json.dumps({{"method": fit.chain_method_, "means": fit.means_.ravel().tolist(), "compiles": len(compiles),
                  "same": bool(np.array_equal(again.means_, fit.means_))}}))
"""


def test_parallel_chains_on_several_devices():
    """With a device per chain, "auto" runs a chain per device, finds the two clusters, and an identical
    second fit compiles nothing (the parallel path is the same cached program as the others)."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    script = PARALLEL.format(settings=json.dumps(SETTINGS))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["method"] == "parallel"
    assert out["compiles"] == 0 and out["same"]
    np.testing.assert_allclose(np.sort(out["means"]), [-2, 2], atol=0.5)
