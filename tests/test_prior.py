"""mclust's conjugate prior: default hyperparameters and MAP M-steps against R mclust 6.

The fixture ``tests/fixtures/mclust/prior_mstep.json`` comes from
``tests/fixtures/mclust/record_prior_mstep.R``: for a fixed soft responsibility matrix z it holds
mclust's ``mstep(..., prior = priorControl())`` (the ``ms*p`` routines) and the M-step of
``me(..., prior = priorControl())`` run for one iteration (the ``me*p`` routines EM iterates).
"""

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from bayesgmm.covariance import get_model
from bayesgmm.prior import ConjugatePrior, default_prior, map_m_step

FIXTURES = Path(__file__).parent / "fixtures" / "mclust"
DATA = Path(__file__).parent.parent / "bayesgmm" / "datasets" / "data"
PRIOR_FIXTURE = json.loads((FIXTURES / "prior_mstep.json").read_text())
DATASETS = PRIOR_FIXTURE["datasets"]
CASES = [(ds, model) for ds in DATASETS for model in DATASETS[ds]["models"]]
#: Models whose me*p and ms*p routines give different M-steps (see bayesgmm/prior.py).
ROUTINES_DIFFER = {"EII", "EEI", "EVI", "EEV"}


@functools.cache
def load(name: str) -> np.ndarray:
    faithful = pd.read_csv(DATA / "faithful.csv")[["eruptions", "waiting"]].to_numpy(np.float64)
    if name == "faithful":
        return faithful
    if name == "waiting":
        return faithful[:, 1:]
    return pd.read_csv(DATA / "iris.csv").iloc[:, :4].to_numpy(np.float64)


def statistics(X: np.ndarray, z: np.ndarray):
    """n_k, xbar_k and the scatter W_k about xbar_k (K, D, D), in numpy float64."""
    nk = z.sum(0)
    xbar = z.T @ X / nk[:, None]
    diff = X[None] - xbar[:, None]
    return nk, xbar, np.einsum("nk,kni,knj->kij", z, diff, diff)


def form_scatter(model: str, W):
    """The scatter statistics of the model's form: W itself (K, D, D) or its diagonals (K, D)."""
    if get_model(model).form.matrix:
        return W
    if isinstance(W, np.ndarray):
        return np.diagonal(W, axis1=-2, axis2=-1).copy()
    return jnp.diagonal(W, axis1=-2, axis2=-1)


def case(ds: str, model: str):
    X, z = load(ds), np.asarray(DATASETS[ds]["z"])
    nk, xbar, W = statistics(X, z)
    return X, z, nk, xbar, form_scatter(model, W)


def as_full(model, covariances, k, d):
    return np.asarray(get_model(model).form.full(np.asarray(covariances), k, d))


# ------------------------------------------------------------------------------------ default_prior

@pytest.mark.parametrize("ds, model", CASES)
def test_default_prior_matches_mclust(ds, model):
    reference = DATASETS[ds]["models"][model]["prior"]
    prior = default_prior(load(ds), DATASETS[ds]["G"], model)
    assert float(prior.shrinkage) == reference["shrinkage"]
    assert float(prior.dof) == reference["dof"]
    np.testing.assert_allclose(prior.mean, reference["mean"], rtol=1e-13)
    scale = np.asarray(reference["scale"])
    np.testing.assert_allclose(np.ravel(prior.scale), np.ravel(scale), rtol=1e-13)
    assert np.shape(prior.scale) == (() if scale.shape == (1,) else scale.shape)


def test_default_prior_matches_faithful_fixture():
    recorded = json.loads((FIXTURES / "faithful.json").read_text())["default_prior"]
    assert recorded["call"] == "defaultPrior(X, G = 3, modelName = m)"
    for model, reference in recorded.items():
        if model == "call":
            continue
        prior = default_prior(load("faithful"), 3, model)
        np.testing.assert_allclose(prior.mean, reference["mean"], rtol=1e-13)
        np.testing.assert_allclose(np.ravel(prior.scale), np.ravel(reference["scale"]), rtol=1e-13)
        assert (float(prior.shrinkage), float(prior.dof)) == (reference["shrinkage"], reference["dof"])


def test_default_prior_aliases_one_dimensional_data_and_few_rows():
    X = load("faithful")
    for alias, name in [("full", "VVV"), ("tied", "EEE"), ("diag", "VVI"), ("spherical", "VII")]:
        for got, want in zip(default_prior(X, 2, alias), default_prior(X, 2, name)):
            np.testing.assert_array_equal(got, want)
    waiting = default_prior(X[:, 1], 3, "E")  # a 1-D array is one feature
    np.testing.assert_allclose(waiting.scale, np.var(X[:, 1], ddof=1) / 9, rtol=1e-13)
    few = default_prior(X[:2], 3, "VVV")  # n <= d: mclust keeps the variances only
    np.testing.assert_allclose(few.scale, np.diag(np.var(X[:2], axis=0, ddof=1)) * 3 ** (-2 / 2), rtol=1e-13)


def test_default_prior_weights_are_frequency_weights():
    X = load("iris")
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=len(X))
    weighted = default_prior(X, 3, "VVV", sample_weight=counts.astype(float))
    repeated = default_prior(np.repeat(X, counts, axis=0), 3, "VVV")
    for got, want in zip(weighted, repeated):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    unit = default_prior(X, 3, "VII", sample_weight=np.ones(len(X)))
    for got, want in zip(unit, default_prior(X, 3, "VII")):
        np.testing.assert_allclose(got, want, rtol=1e-14)


# --------------------------------------------------------------------------------------- map_m_step
# Every model's M-steps of one problem run as one compiled program (one per model would spend most
# of the time compiling); that they compose under an outer jit is part of what is tested.

@functools.cache
def results(ds: str, padded: bool = False) -> dict:
    """{(model, routine): (means, covariances)} for the fixture's z, in float64 (numpy).

    ``padded``: with a fourth, masked component of junk statistics appended."""
    models = list(DATASETS[ds]["models"])
    X, z = load(ds), np.asarray(DATASETS[ds]["z"])
    nk, xbar, W = statistics(X, z)
    k, d = xbar.shape
    mask = None
    if padded:
        nk, xbar = np.append(nk, 0.0), np.vstack([xbar, np.full((1, d), 3.0)])
        W, mask = np.concatenate([W, 7.0 * np.eye(d)[None]]), np.arange(k + 1) < k
    priors = {model: default_prior(X, k, model) for model in models}

    def run(nk, xbar, W, priors, mask):
        return {(model, routine): map_m_step(model, nk, xbar, form_scatter(model, W), priors[model], mask=mask,
                                             routine=routine)
                for model in models for routine in ("em", "mstep")}

    with jax.enable_x64(True):
        out = jax.jit(run)(nk, xbar, W, priors, mask)
        return {key: tuple(np.asarray(a) for a in value) for key, value in out.items()}


@pytest.mark.parametrize("routine, key", [("mstep", "mstep"), ("em", "me1")])
@pytest.mark.parametrize("ds, model", CASES)
def test_map_m_step_matches_mclust(ds, model, routine, key):
    reference = DATASETS[ds]["models"][model][key]
    means, covariances = results(ds)[model, routine]
    nk, xbar = case(ds, model)[2:4]
    assert means.dtype == np.float64 and covariances.shape == get_model(model).form.chol_shape(*xbar.shape)
    np.testing.assert_allclose(means, reference["mean"], rtol=1e-6, atol=1e-12)
    sigma = np.asarray(reference["sigma"])
    np.testing.assert_allclose(as_full(model, covariances, *xbar.shape), sigma, rtol=1e-6,
                               atol=1e-10 * abs(sigma).max())
    np.testing.assert_allclose(nk / len(load(ds)), reference["pro"], rtol=1e-12)


@pytest.mark.parametrize("ds, model", CASES)
def test_routines_differ_where_mclust_does(ds, model):
    recorded = DATASETS[ds]["models"][model]
    same = np.allclose(recorded["mstep"]["sigma"], recorded["me1"]["sigma"], rtol=1e-12, atol=0)
    assert same == (model not in ROUTINES_DIFFER)
    em, ms = results(ds)[model, "em"][1], results(ds)[model, "mstep"][1]
    assert np.allclose(em, ms, rtol=1e-12, atol=0) == (model not in ROUTINES_DIFFER)


# The prior's dof at which each model's MAP covariance is the maximum-likelihood one (with zero
# shrinkage and scale): the ML M-steps of bayesgmm.covariance.
ML_DOF = {"em": {"VVV": lambda d: -(d + 2), "EEE": lambda d: -(d + 1), "EEV": lambda d: -(d + 1), "VEI": lambda d: -2,
                 "EEI": lambda d: -1},
          "mstep": {"VVV": lambda d: -(d + 1), "EVI": lambda d: -2, "EII": lambda d: -2}}


def test_zero_prior_limit_is_maximum_likelihood():
    X, z = load("iris"), np.asarray(DATASETS["iris"]["z"])
    nk, xbar, W = statistics(X, z)
    d = X.shape[1]
    cases = [(routine, model) for routine in ML_DOF for model in ML_DOF[routine]]

    def flat(model, routine):
        scale = np.zeros((d, d)) if get_model(model).form.matrix else 0.0
        return ConjugatePrior(shrinkage=0.0, mean=np.full(d, 1e3), dof=float(ML_DOF[routine][model](d)), scale=scale)

    def run(nk, xbar, W):
        mask = jnp.ones(len(nk), bool)
        return {(routine, model): (map_m_step(model, nk, xbar, form_scatter(model, W), flat(model, routine),
                                              routine=routine),
                                   get_model(model).covariances_from_scatter(nk, form_scatter(model, W), 0.0, mask))
                for routine, model in cases}

    with jax.enable_x64(True):
        out = jax.jit(run)(nk, xbar, W)
        for (routine, model), ((means, covariances), ml) in out.items():
            np.testing.assert_allclose(means, xbar, rtol=1e-13, err_msg=f"{routine} {model}")
            # VEI: two alternations, each stopped within sqrt(eps) of the same fixed point
            np.testing.assert_allclose(covariances, ml, rtol=1e-6 if model == "VEI" else 1e-12,
                                       err_msg=f"{routine} {model}")
        np.testing.assert_allclose(out["em", "VVV"][0][1], W / nk[:, None, None], rtol=1e-12)


@pytest.mark.parametrize("ds, model", [(ds, model) for ds, model in CASES if ds != "iris"])
def test_padded_components_take_no_part(ds, model):
    k, d = np.shape(DATASETS[ds]["models"][model]["mstep"]["mean"])
    form = get_model(model).form
    for routine in ("em", "mstep"):
        want_means, want_cov = results(ds)[model, routine]
        means, cov = results(ds, padded=True)[model, routine]
        np.testing.assert_allclose(means[:k], want_means, rtol=1e-13)
        np.testing.assert_array_equal(means[k], np.full(d, 3.0))
        if form.per_component:
            np.testing.assert_allclose(cov[:k], want_cov, rtol=1e-12)
            np.testing.assert_array_equal(as_full(model, cov, k + 1, d)[k], np.eye(d))
        else:
            np.testing.assert_allclose(cov, want_cov, rtol=1e-12)


def test_vmap_over_problems_and_priors():
    """A batch of two problems: iris's, and the same with counts, scatter, shrinkage and prior scale
    all 1.5 times larger, which leaves VEV's MAP estimates unchanged."""
    with jax.enable_x64(True):
        X, z, nk, xbar, scatter = case("iris", "VEV")
        prior = default_prior(X, len(nk), "VEV")
        assert len(jax.tree_util.tree_leaves(prior)) == 4
        scaled = prior._replace(shrinkage=1.5 * prior.shrinkage, scale=1.5 * prior.scale)
        batch_prior = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), prior, scaled)
        step = jax.jit(jax.vmap(functools.partial(map_m_step, "VEV")))
        means, covariances = step(np.stack([nk, 1.5 * nk]), np.stack([xbar, xbar]), np.stack([scatter, 1.5 * scatter]),
                                  batch_prior)
    want_means, want_cov = results("iris")["VEV", "em"]
    for i in range(2):
        np.testing.assert_allclose(means[i], want_means, rtol=1e-12)
        np.testing.assert_allclose(covariances[i], want_cov, rtol=1e-8)


def test_warm_start_reaches_the_same_fixed_point():
    with jax.enable_x64(True):
        X, z = load("iris"), np.asarray(DATASETS["iris"]["z"])
        nk, xbar, W = statistics(X, z)
        cold = {model: results("iris")[model, "em"][1] for model in ("VEI", "VEV")}

        def run(nk, xbar, W, vei, vev):
            return {"VEI": map_m_step("VEI", nk, xbar, form_scatter("VEI", W), default_prior(X, 3, "VEI"),
                                      previous=vei)[1],
                    "VEV": map_m_step("VEV", nk, xbar, W, default_prior(X, 3, "VEV"), previous=vev)[1]}

        # VEI from diagonal covariances (its form), VEV from (K, D, D) matrices
        warm = jax.jit(run)(nk, xbar, W, cold["VEI"], cold["VEV"])
        for model in cold:
            np.testing.assert_allclose(warm[model], cold[model], rtol=1e-6)
        # a start away from the fixed point gets there too
        far = jax.jit(run)(nk, xbar, W, np.ones_like(cold["VEI"]), np.broadcast_to(np.eye(4), (3, 4, 4)))
        for model in cold:
            np.testing.assert_allclose(far[model], cold[model], rtol=1e-5)


def test_float32():
    X, z, nk, xbar, scatter = case("faithful", "VVV")
    prior = default_prior(X, 3, "VVV")
    f32 = [a.astype(np.float32) for a in (nk, xbar, scatter)]
    means, cov = map_m_step("VVV", *f32, prior)
    assert means.dtype == jnp.float32 and cov.dtype == jnp.float32
    np.testing.assert_allclose(cov, DATASETS["faithful"]["models"]["VVV"]["me1"]["sigma"], rtol=1e-4)


# ---------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("name", ["VEE", "EVE", "VVE", "EVV", "XXX", "vvv", None, ("VVV",)])
def test_unsupported_models(name):
    for call in (lambda: default_prior(load("faithful"), 3, name),
                 lambda: map_m_step(name, np.ones(3), np.zeros((3, 2)), np.ones((3, 2, 2)),
                                    ConjugatePrior(0.01, np.zeros(2), 4.0, np.eye(2)))):
        with pytest.raises(ValueError, match=r"has no conjugate prior.*'EII'.*'VVV'.*'E', 'V'"):
            call()


def test_bad_input():
    X = load("faithful")
    with pytest.raises(ValueError, match="one feature"):
        default_prior(X, 3, "E")
    with pytest.raises(ValueError, match="n_components"):
        default_prior(X, 0, "VVV")
    with pytest.raises(ValueError, match="shape"):
        default_prior(X[None], 3, "VVV")
    with pytest.raises(ValueError, match="sample_weight"):
        default_prior(X, 3, "VVV", sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="non-negative"):
        default_prior(X, 3, "VVV", sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="total weight"):
        default_prior(X, 3, "VVV", sample_weight=np.full(len(X), 1e-3))
    with pytest.raises(ValueError, match="finite"):
        default_prior(np.array([[np.nan, 1.0], [0.0, 1.0]]), 3, "VVV")

    nk, xbar = np.ones(3) * 5, np.zeros((3, 2))
    full_prior = ConjugatePrior(0.01, np.zeros(2), 4.0, np.eye(2))
    scalar_prior = ConjugatePrior(0.01, np.zeros(2), 4.0, 1.0)
    with pytest.raises(ValueError, match="one feature"):
        map_m_step("V", nk, xbar, np.ones((3, 2)), scalar_prior)
    with pytest.raises(ValueError, match=r"scatter must be of shape \(3, 2, 2\)"):
        map_m_step("VVV", nk, xbar, np.ones((3, 2)), full_prior)
    with pytest.raises(ValueError, match="prior.scale"):
        map_m_step("VVV", nk, xbar, np.ones((3, 2, 2)), scalar_prior)
    with pytest.raises(ValueError, match="prior.scale"):
        map_m_step("VII", nk, xbar, np.ones((3, 2)), full_prior)
    with pytest.raises(ValueError, match="prior.mean"):
        map_m_step("VII", nk, xbar, np.ones((3, 2)), scalar_prior._replace(mean=np.zeros(3)))
    with pytest.raises(ValueError, match="routine"):
        map_m_step("VII", nk, xbar, np.ones((3, 2)), scalar_prior, routine="ms")
    with pytest.raises(ValueError, match="mask"):
        map_m_step("VII", nk, xbar, np.ones((3, 2)), scalar_prior, mask=np.ones(2, bool))
    with pytest.raises(ValueError, match="nk must be"):
        map_m_step("VII", nk[:2], xbar, np.ones((3, 2)), scalar_prior)
    with pytest.raises(ValueError, match="previous"):
        map_m_step("VEI", nk, xbar, np.ones((3, 2)), scalar_prior, previous=np.ones(3))
