"""Self-checks of the naive reference M-steps in ``naive_msteps`` (the "twins" of the parsimonious models).

Nothing here uses ``bayesgmm``: these tests only make sure the twins are right before they are used to test
the JAX implementation.
"""

import functools
import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from naive_msteps import (MODELS, NESTINGS, UNIVARIATE_MODELS, _mm_orientation_step, compose, decompose,
                          n_var_params, naive_covariances, naive_parameters, q_objective, satisfies)

CONFIGS = [(K, d) for K in (1, 2, 3, 4) for d in (2, 3, 4)]


def random_scatter(K, d, seed):
    """Weighted counts and scatter matrices of K weighted samples around their weighted means."""
    rng = np.random.default_rng(seed)
    nk = np.empty(K)
    W = np.empty((K, d, d))
    for k in range(K):
        m = int(rng.integers(d + 3, 4 * d + 10))
        a = rng.normal(size=(d, d))
        cov = (a @ a.T + 0.3 * np.eye(d)) * rng.uniform(0.2, 5.0)
        X = rng.multivariate_normal(np.zeros(d), cov, size=m)
        z = rng.uniform(0.2, 1.0, size=m)
        Xc = X - (z[:, None] * X).sum(axis=0) / z.sum()
        W[k] = np.einsum("i,ij,il->jl", z, Xc, Xc)
        nk[k] = z.sum()
    return nk, W


@functools.lru_cache(maxsize=None)
def case(model, K, d):
    nk, W = random_scatter(K, d, seed=100 * K + d)
    volumes, shapes, orientations = naive_parameters(model, nk, W)
    covariances = naive_covariances(model, nk, W)
    return nk, W, volumes, shapes, orientations, covariances


def q_tol(q):
    return 1e-9 * (1.0 + abs(q))


def cayley(skew):
    """The rotation ``(I - S)^{-1} (I + S)`` of a skew-symmetric ``S`` (cheaper than a matrix exponential)."""
    eye = np.eye(skew.shape[0])
    return np.linalg.solve(eye - skew, eye + skew)


def inverse_cayley(rotation):
    eye = np.eye(rotation.shape[0])
    return (rotation - eye) @ np.linalg.inv(rotation + eye)


def random_rotation(rng, d, scale):
    a = rng.normal(size=(d, d)) * scale
    return cayley(a - a.T)


def superset_closure():
    """``(a, b)`` for every pair of models with the constraint set of ``a`` inside that of ``b``."""
    pairs = set(NESTINGS) | {(m, m) for m in MODELS}
    while True:
        more = {(a, c) for (a, b) in pairs for (b2, c) in pairs if b == b2} - pairs
        if not more:
            return pairs
        pairs |= more


# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K,d", CONFIGS)
@pytest.mark.parametrize("model", MODELS)
def test_solution_satisfies_its_model(model, K, d):
    nk, W, volumes, shapes, orientations, cov = case(model, K, d)
    assert cov.shape == (K, d, d)
    assert satisfies(model, cov)
    np.testing.assert_allclose(compose(volumes, shapes, orientations), cov, rtol=1e-10, atol=1e-12)
    # the layout promised by naive_parameters
    np.testing.assert_allclose(np.prod(shapes, axis=1), 1.0, rtol=1e-10)
    for k in range(K):
        np.testing.assert_allclose(orientations[k].T @ orientations[k], np.eye(d), atol=1e-10)
    letter_volume, letter_shape, letter_orientation = model
    if letter_volume == "E":
        assert np.all(volumes == volumes[0])
    if letter_shape == "E":
        assert np.all(shapes == shapes[0])
    if letter_shape == "I":
        assert np.all(shapes == 1.0)
    if letter_orientation == "E":
        assert np.all(orientations == orientations[0])
    if letter_orientation == "I":
        assert np.all(orientations == np.eye(d))


def perturb(model, volumes, shapes, orientations, rng, eps, parts):
    """Random parameters near the given ones that still obey the model's constraint."""
    K, d = shapes.shape
    letter_volume, letter_shape, letter_orientation = model
    volumes, shapes, orientations = volumes.copy(), shapes.copy(), orientations.copy()
    if "volume" in parts:
        volumes *= np.exp(eps * (rng.normal() if letter_volume == "E" else rng.normal(size=K)))
    if "shape" in parts and letter_shape != "I":
        z = rng.normal(size=d) if letter_shape == "E" else rng.normal(size=(K, d))
        z = z - z.mean(axis=-1, keepdims=True)
        shapes = shapes * np.exp(eps * z)
    if "orientation" in parts and letter_orientation != "I":
        if letter_orientation == "E":
            R = random_rotation(rng, d, eps)
            orientations = np.array([R @ orientations[k] for k in range(K)])
        else:
            orientations = np.array([random_rotation(rng, d, eps) @ orientations[k] for k in range(K)])
    return volumes, shapes, orientations


@pytest.mark.parametrize("K,d", CONFIGS)
@pytest.mark.parametrize("model", MODELS)
def test_no_feasible_perturbation_increases_q(model, K, d):
    nk, W, volumes, shapes, orientations, cov = case(model, K, d)
    q_best = q_objective(cov, nk, W)
    rng = np.random.default_rng(7)
    for eps in (0.3, 1e-2, 1e-4):
        for parts in (("volume",), ("shape",), ("orientation",), ("volume", "shape", "orientation")):
            for _ in range(2):
                perturbed = compose(*perturb(model, volumes, shapes, orientations, rng, eps, parts))
                assert satisfies(model, perturbed)
                assert q_objective(perturbed, nk, W) <= q_best + q_tol(q_best), (eps, parts)


@pytest.mark.parametrize("K,d", CONFIGS)
def test_vvv_is_scatter_over_counts(K, d):
    nk, W, *_, cov = case("VVV", K, d)
    np.testing.assert_allclose(cov, W / nk[:, None, None], rtol=1e-14)
    nk, W, *_, cov = case("EEE", K, d)
    np.testing.assert_allclose(cov, np.tile(W.sum(axis=0) / nk.sum(), (K, 1, 1)), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("K,d", CONFIGS)
def test_nested_models_order_q(K, d):
    q = {m: q_objective(case(m, K, d)[-1], *case(m, K, d)[:2]) for m in MODELS}
    for smaller, larger in NESTINGS:
        assert q[smaller] <= q[larger] + q_tol(q[larger]), (smaller, larger)
    # the chain of the brief, spelled out
    chain = ["VVV", "EVV", "EEV", "EEE", "EEI", "EII"]
    for a, b in zip(chain, chain[1:]):
        assert q[a] >= q[b] - q_tol(q[a])


@pytest.mark.parametrize("K,d", [(2, 2), (2, 3), (3, 3), (3, 4)])
def test_solution_satisfies_exactly_the_larger_models(K, d):
    """With generic data the optimum of model a satisfies model b exactly when a's set lies inside b's."""
    inside = superset_closure()
    for a in MODELS:
        cov = case(a, K, d)[-1]
        for b in MODELS:
            assert satisfies(b, cov) == ((a, b) in inside), (a, b)


def random_feasible(model, K, d, rng):
    """Random volumes, shapes and orientations with the model's layout (E parts equal, I parts identity)."""
    letter_volume, letter_shape, letter_orientation = model
    volumes = np.exp(rng.normal(size=1 if letter_volume == "E" else K)) * np.ones(K)
    if letter_shape == "I":
        shapes = np.ones((K, d))
    else:
        z = rng.normal(size=(1 if letter_shape == "E" else K, d))
        shapes = np.exp(z - z.mean(axis=1, keepdims=True)) * np.ones((K, d))
    if letter_orientation == "I":
        orientations = np.tile(np.eye(d), (K, 1, 1))
    elif letter_orientation == "E":
        orientations = np.tile(random_rotation(rng, d, 1.0), (K, 1, 1))
    else:
        orientations = np.array([random_rotation(rng, d, 1.0) for _ in range(K)])
    return volumes, shapes, orientations


@pytest.mark.parametrize("K,d", [(2, 2), (3, 3), (4, 4), (2, 4)])
@pytest.mark.parametrize("model", MODELS)
def test_recovers_feasible_unconstrained_optimum(model, K, d):
    """If W_k / n_k already obeys the constraint it is the constrained optimum too."""
    rng = np.random.default_rng(K * 10 + d)
    sigma = compose(*random_feasible(model, K, d, rng))
    assert satisfies(model, sigma)
    nk = rng.uniform(5, 50, size=K)
    W = sigma * nk[:, None, None]
    np.testing.assert_allclose(naive_covariances(model, nk, W), sigma, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_single_component_reductions(model):
    """With K = 1, E and V coincide: the models reduce to VVV, VVI or VII."""
    nk, W = random_scatter(1, 3, seed=5)
    expected = {"I": np.trace(W[0]) / (3 * nk[0]) * np.eye(3),
                "E": np.diag(np.diag(W[0])) / nk[0]}
    shape, orientation = model[1], model[2]
    want = expected["I"] if shape == "I" else expected["E"] if orientation == "I" else W[0] / nk[0]
    np.testing.assert_allclose(naive_covariances(model, nk, W)[0], want, rtol=1e-8, atol=1e-12)


def test_mm_orientation_step_never_increases_its_objective():
    """Each MM1+MM2 update of Browne and McNicholas decreases f(D) = sum_k tr(W_k D B_k D^T) (or keeps it)."""
    rng = np.random.default_rng(11)
    for K, d in [(1, 2), (2, 3), (3, 4), (4, 4)]:
        nk, W = random_scatter(K, d, seed=K + 7 * d)
        weights = np.exp(rng.normal(size=(K, d)))
        omega_max = np.array([np.linalg.eigvalsh(W[k])[-1] for k in range(K)])

        def f(D):
            return sum(np.trace(W[k] @ (D * weights[k]) @ D.T) for k in range(K))

        D = random_rotation(rng, d, 1.0)
        values = [f(D)]
        for _ in range(50):
            D = _mm_orientation_step(D, weights, W, omega_max)
            np.testing.assert_allclose(D.T @ D, np.eye(d), atol=1e-12)
            values.append(f(D))
        assert np.all(np.diff(values) <= 1e-12 * values[0])
        assert values[-1] < values[0]


# ----------------------------------------------------------------------------------------------------------
# an independent generic optimiser over the model's free parameters


def unpack(model, theta, K, d):
    """Volumes, shapes, orientations from unconstrained parameters (log volumes, log shapes with the last
    one fixed by det = 1, Cayley parameters of the rotations)."""
    letter_volume, letter_shape, letter_orientation = model
    pos = 0

    def take(size):
        nonlocal pos
        out = theta[pos:pos + size]
        pos += size
        return out

    volumes = np.exp(take(1)) * np.ones(K) if letter_volume == "E" else np.exp(take(K))
    if letter_shape == "I":
        shapes = np.ones((K, d))
    else:
        rows = 1 if letter_shape == "E" else K
        free = take(rows * (d - 1)).reshape(rows, d - 1)
        logs = np.concatenate([free, -free.sum(axis=1, keepdims=True)], axis=1)
        shapes = np.exp(logs) * np.ones((K, d))
    m = d * (d - 1) // 2
    iu = np.triu_indices(d, 1)

    def rotation(g):
        a = np.zeros((d, d))
        a[iu] = g
        return cayley(a - a.T)

    if letter_orientation == "I":
        orientations = np.tile(np.eye(d), (K, 1, 1))
    elif letter_orientation == "E":
        orientations = np.tile(rotation(take(m)), (K, 1, 1))
    else:
        orientations = np.array([rotation(take(m)) for _ in range(K)])
    assert pos == len(theta)
    return volumes, shapes, orientations


def pack(model, volumes, shapes, orientations):
    """Inverse of :func:`unpack` (orientations with determinant -1 get their last column flipped, which
    leaves the covariances alone)."""
    K, d = shapes.shape
    letter_volume, letter_shape, letter_orientation = model
    parts = [np.log(volumes[:1] if letter_volume == "E" else volumes)]
    if letter_shape != "I":
        rows = shapes[:1] if letter_shape == "E" else shapes
        parts.append(np.log(rows[:, :-1]).ravel())
    iu = np.triu_indices(d, 1)
    if letter_orientation != "I":
        for Dk in orientations[:1] if letter_orientation == "E" else orientations:
            Dk = Dk.copy()
            if np.linalg.det(Dk) < 0:
                Dk[:, -1] = -Dk[:, -1]
            parts.append(inverse_cayley(Dk)[iu])
    return np.concatenate(parts)


@pytest.mark.parametrize("K,d", [(2, 3)])
@pytest.mark.parametrize("model", MODELS)
def test_generic_optimiser_does_not_beat_the_twin(model, K, d):
    nk, W = random_scatter(K, d, seed=1000 + 10 * K + d)
    size = n_var_params(model, d, K)
    # the free parameters of the unpacked parametrisation are exactly mclust's count
    assert satisfies(model, compose(*unpack(model, np.zeros(size), K, d)))
    q_twin = q_objective(naive_covariances(model, nk, W), nk, W)

    def loss(theta):
        q = q_objective(compose(*unpack(model, theta, K, d)), nk, W)
        return -q if np.isfinite(q) else 1e300

    rng = np.random.default_rng(3)
    starts = [rng.normal(scale=0.7, size=size) for _ in range(3)]
    starts.append(pack(model, *naive_parameters(model, nk, W)) + rng.normal(scale=0.05, size=size))
    found = []
    for theta0 in starts:
        result = minimize(loss, theta0, method="BFGS", options={"gtol": 1e-7})
        found.append(-result.fun)
    assert max(found) <= q_twin + 1e-8 * (1 + abs(q_twin))
    # not vacuous: started near the twin, the optimiser comes back to its value; and for every model but the
    # two whose orientation problem has local optima, random starts find it too
    assert found[-1] >= q_twin - 1e-6 * (1 + abs(q_twin))
    if model not in ("EVE", "VVE"):
        assert max(found[:-1]) >= q_twin - 1e-6 * (1 + abs(q_twin))


@pytest.mark.parametrize("d", range(1, 5))
@pytest.mark.parametrize("K", [1, 2, 3, 4])
def test_n_var_params_matches_free_parameter_count(K, d):
    m = d * (d - 1) // 2
    for model in MODELS:
        volume = {"E": 1, "V": K}[model[0]]
        shape = {"I": 0, "E": d - 1, "V": K * (d - 1)}[model[1]]
        orientation = {"I": 0, "E": m, "V": K * m}[model[2]]
        assert n_var_params(model, d, K) == volume + shape + orientation, model
    assert n_var_params("E", d, K) == 1
    assert n_var_params("V", d, K) == K


def test_n_var_params_mclust_example():
    # mapply(nVarParams, mclust.options("emModelNames"), d = 2, G = 3) in mclust
    expected = dict(EII=1, VII=3, EEI=2, VEI=4, EVI=4, VVI=6, EEE=3, VEE=5, EVE=5, VVE=7, EEV=5, VEV=7,
                    EVV=7, VVV=9)
    assert {m: n_var_params(m, 2, 3) for m in MODELS} == expected


# ----------------------------------------------------------------------------------------------------------
# univariate models, decompose, q_objective, satisfies


@pytest.mark.parametrize("K", [1, 2, 3, 4])
def test_univariate_models(K):
    nk, W = random_scatter(K, 1, seed=K)
    e = naive_covariances("E", nk, W)
    v = naive_covariances("V", nk, W)
    np.testing.assert_allclose(e[:, 0, 0], W[:, 0, 0].sum() / nk.sum())
    np.testing.assert_allclose(v[:, 0, 0], W[:, 0, 0] / nk)
    assert satisfies("E", e) and satisfies("V", v) and satisfies("V", e)
    assert satisfies("E", v) == (K == 1)
    assert q_objective(e, nk, W) <= q_objective(v, nk, W) + q_tol(q_objective(v, nk, W))
    # at D = 1 the multivariate names reduce to the univariate ones
    np.testing.assert_allclose(naive_covariances("EII", nk, W), e)
    np.testing.assert_allclose(naive_covariances("VVV", nk, W), v)
    for variance, eps in itertools.product((e, v), (0.1, -0.1)):
        if variance is e:
            assert q_objective(e * np.exp(eps), nk, W) <= q_objective(e, nk, W)
        else:
            bumped = v.copy()
            bumped[0] *= np.exp(eps)
            assert q_objective(bumped, nk, W) <= q_objective(v, nk, W)
    with pytest.raises(ValueError):
        naive_covariances("E", np.ones(2), np.ones((2, 2, 2)))
    assert n_var_params("E", 1, K) == 1 and n_var_params("V", 1, K) == K
    assert UNIVARIATE_MODELS == ("E", "V")


def test_decompose_and_q_objective():
    rng = np.random.default_rng(0)
    K, d = 3, 4
    volumes = np.exp(rng.normal(size=K))
    z = rng.normal(size=(K, d))
    shapes = np.sort(np.exp(z - z.mean(axis=1, keepdims=True)), axis=1)[:, ::-1]
    orientations = np.array([random_rotation(rng, d, 1.0) for _ in range(K)])
    sigma = compose(volumes, shapes, orientations)
    v, s, o = decompose(sigma)
    np.testing.assert_allclose(v, volumes, rtol=1e-12)
    np.testing.assert_allclose(s, shapes, rtol=1e-10)
    assert np.all(np.diff(s, axis=1) <= 0)
    np.testing.assert_allclose(compose(v, s, o), sigma, rtol=1e-10, atol=1e-12)
    for k in range(K):   # same columns up to sign
        np.testing.assert_allclose(np.abs(o[k].T @ orientations[k]), np.eye(d), atol=1e-8)
    nk = np.array([3.0, 5.0, 7.0])
    W = sigma * nk[:, None, None]
    expected = sum(-0.5 * nk[k] * np.log(np.linalg.det(sigma[k])) - 0.5 * nk[k] * d for k in range(K))
    np.testing.assert_allclose(q_objective(sigma, nk, W), expected, rtol=1e-12)
    bad = sigma.copy()
    smallest = np.linalg.eigvalsh(sigma[1])[:2]
    bad[1] = sigma[1] - smallest.mean() * np.eye(d)              # one negative eigenvalue: det < 0
    assert q_objective(bad, nk, W) == -np.inf
    assert not satisfies("VVV", bad)


def test_satisfies_details():
    rng = np.random.default_rng(1)
    D = random_rotation(rng, 3, 1.0)
    A1, A2 = np.array([3.0, 1.0, 1 / 3]), np.array([1 / 3, 3.0, 1.0])      # same sorted shape, permuted
    eve = np.array([2.0 * (D * A1) @ D.T, 2.0 * (D * A2) @ D.T])
    assert satisfies("EVE", eve) and satisfies("EEV", eve)               # common D, equal sorted shapes
    assert not satisfies("VEE", eve) and not satisfies("EEE", eve)       # but not D A D^T with one A
    diag_perm = np.array([np.diag(A1), np.diag(A2)])
    assert satisfies("EVI", diag_perm) and satisfies("EEV", diag_perm)
    assert not satisfies("EEI", diag_perm)                                # EEI compares in axis order
    tied = np.array([np.diag([2.0, 2.0, 0.25]), (D * [2.0, 2.0, 0.25]) @ D.T])
    assert satisfies("EEV", tied) and not satisfies("EVE", tied)
    eq = np.array([np.eye(3) * 2.0, np.eye(3) * 2.0 * (1 + 1e-9)])
    assert satisfies("EII", eq) and not satisfies("EII", np.array([np.eye(3), 2 * np.eye(3)]))
    assert satisfies("VII", np.array([np.eye(3), 2 * np.eye(3)]))
    with pytest.raises(ValueError):
        satisfies("XYZ", eq)
