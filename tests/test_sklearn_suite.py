"""scikit-learn's own GaussianMixture tests, run against :class:`bayesgmm.GaussianMixture`.

The test file inside the installed scikit-learn (``sklearn/mixture/tests/test_gaussian_mixture.py``) is
copied at collection time with one line changed, the import of ``GaussianMixture``, and its test
functions are collected here: one item per scikit-learn test and parametrisation. Everything else it
imports stays scikit-learn's, its private helpers included. Tests that cannot apply to bayesgmm are in
``SKIPPED`` with the reason.

As in scikit-learn, the float32 variants run with ``SKLEARN_RUN_FLOAT32_TESTS=1`` and
``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` ("42" by default, an int, "a-b" or "all") picks the seeds. The
array-API tests run where array-api-strict is installed (the test extra has it).
"""

import atexit
import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import bayesgmm

SKLEARN_TEST_MODULE = "sklearn.mixture.tests.test_gaussian_mixture"
SKLEARN_IMPORT = "from sklearn.mixture import GaussianMixture\n"
BAYESGMM_IMPORT = "from bayesgmm import GaussianMixture\n"

SCIKIT_LEARN_HELPER = "tests only scikit-learn's private helper {}, which bayesgmm does not use"
SKIPPED: dict[str, str] = {
    "test_suffstat_sk_full": SCIKIT_LEARN_HELPER.format("_estimate_gaussian_covariances_full"),
    "test_suffstat_sk_tied": SCIKIT_LEARN_HELPER.format("_estimate_gaussian_covariances_tied"),
    "test_suffstat_sk_diag": SCIKIT_LEARN_HELPER.format("_estimate_gaussian_covariances_diag"),
    "test_gaussian_suffstat_sk_spherical": SCIKIT_LEARN_HELPER.format("_estimate_gaussian_covariances_spherical"),
    "test_compute_log_det_cholesky": SCIKIT_LEARN_HELPER.format("_compute_log_det_cholesky"),
    "test_gaussian_mixture_log_probabilities": SCIKIT_LEARN_HELPER.format("_estimate_log_gaussian_prob"),
    "test_gaussian_mixture_precisions_init": (
        "calls GaussianMixture's private _set_parameters and _initialize(X, resp); bayesgmm's twin is "
        "test_precisions_init_gives_the_fit_it_came_from below"
    ),
    "test_gaussian_mixture_precisions_init_diag": (
        "depends on scikit-learn's random stream: its precisions_init come from scikit-learn's "
        "KMeans(random_state=0) partition, which bayesgmm's k-means start (JAX keys) finds too but may number "
        "the other way round, pairing the given precisions with the other cluster (one more iteration in "
        "float64); bayesgmm's twin is test_precisions_init_gives_the_fit_it_came_from below"
    ),
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters": (
        "counts calls of scikit-learn's private _estimate_gaussian_parameters (monkeypatched), which bayesgmm's "
        "compiled M-step never calls; bayesgmm starts without an initialisation when all three *_init are given"
    ),
    "test_check_weights": (
        "asserts scikit-learn's wording of the range check, which labels the minimum 'max value' and the "
        "maximum 'min value'; bayesgmm says them the right way round. Its checks, in scikit-learn's words, are "
        "tests/test_bad_input.py::test_weights_init_with_scikit_learn_words and ::test_weights_init_shape_and_range"
    ),
    "test_gaussian_mixture_raises_where_array_api_not_implemented": (
        "asserts a limitation of scikit-learn: its k-means initialisations are NumPy-only, so it refuses "
        "init_params 'kmeans' and 'k-means++' under array_api_dispatch. bayesgmm's initialisations run in JAX "
        "for any input (tests/test_bad_input.py::test_array_api_dispatch_with_kmeans_init)"
    ),
}


def _load_suite():
    """scikit-learn's test module, copied with bayesgmm's GaussianMixture imported in place of its own."""
    source = Path(importlib.util.find_spec(SKLEARN_TEST_MODULE).origin).read_text()
    assert source.count(SKLEARN_IMPORT) == 1, f"scikit-learn's test file no longer has {SKLEARN_IMPORT!r}"
    folder = tempfile.mkdtemp(prefix="bayesgmm-sklearn-suite-")
    atexit.register(shutil.rmtree, folder, True)
    # a test_*.py name on sys.path, so that pytest's import hook rewrites its asserts
    name = "test_sklearn_gaussian_mixture_on_bayesgmm"
    Path(folder, f"{name}.py").write_text(source.replace(SKLEARN_IMPORT, BAYESGMM_IMPORT))
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(folder)


def _skipped(name: str):
    """One skipped item in place of a scikit-learn test and all its parametrisations, with our reason."""

    @pytest.mark.skip(reason=SKIPPED[name])
    def test():
        pass

    test.__name__ = test.__qualname__ = name
    return test


SUITE = _load_suite()
SUITE_TESTS = sorted(name for name, obj in vars(SUITE).items() if name.startswith("test_") and callable(obj))
for _name in SUITE_TESTS:
    globals()[_name] = _skipped(_name) if _name in SKIPPED else getattr(SUITE, _name)


# ------------------------------------------------------------------ scikit-learn's conftest fixtures

_SKIP_FLOAT32 = pytest.mark.skipif(os.environ.get("SKLEARN_RUN_FLOAT32_TESTS", "0") != "1",
                                   reason="Set SKLEARN_RUN_FLOAT32_TESTS=1 to run float32 dtype tests")


@pytest.fixture(params=[pytest.param(np.float32, marks=_SKIP_FLOAT32), np.float64])
def global_dtype(request):
    return request.param


def _global_random_seeds() -> list[int]:
    value = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED")
    if value is None:
        return [42]
    if value == "all":
        return list(range(100))
    start, _, stop = value.partition("-")
    return list(range(int(start), int(stop or start) + 1))


@pytest.fixture(params=_global_random_seeds())
def global_random_seed(request):
    return request.param


@pytest.fixture(autouse=True)
def _scipy_array_api(monkeypatch):
    """scikit-learn refuses array_api_dispatch, and its array-API tests skip, without SCIPY_ARRAY_API=1;
    SciPy reads it once at import, and bayesgmm passes SciPy NumPy arrays only, so setting it here is safe."""
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")


# ------------------------------------------------------------------ the copy itself


def test_skip_list_names_tests_of_the_suite():
    assert set(SKIPPED) <= set(SUITE_TESTS), set(SKIPPED) - set(SUITE_TESTS)


def test_suite_uses_bayesgmm_and_keeps_scikit_learn_helpers():
    import sklearn.mixture._gaussian_mixture as sklearn_gm

    assert SUITE.GaussianMixture is bayesgmm.GaussianMixture
    assert SUITE._estimate_gaussian_parameters is sklearn_gm._estimate_gaussian_parameters


# ------------------------------------------------------------------ bayesgmm's twins of skipped tests


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_precisions_init_gives_the_fit_it_came_from(covariance_type):
    """Twin of the skipped precisions_init tests: the initial precisions of bayesgmm's own k-means start,
    given back as precisions_init, give the same start (max_iter=0) and the same fit in as many iterations."""
    GaussianMixture = bayesgmm.GaussianMixture
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(300, 2) + 20, rng.randn(300, 2) @ np.array([[0.0, -0.7], [3.5, 0.7]])])
    kwargs = dict(n_components=2, covariance_type=covariance_type, random_state=0)
    start = GaussianMixture(max_iter=0, **kwargs).fit(X)
    given = GaussianMixture(max_iter=0, precisions_init=start.precisions_, **kwargs).fit(X)
    np.testing.assert_allclose(given.precisions_cholesky_, start.precisions_cholesky_, rtol=1e-10)
    fitted = GaussianMixture(**kwargs).fit(X)
    fitted_given = GaussianMixture(precisions_init=start.precisions_, **kwargs).fit(X)
    assert fitted_given.n_iter_ == fitted.n_iter_
    np.testing.assert_allclose(fitted_given.precisions_cholesky_, fitted.precisions_cholesky_, rtol=1e-8)
