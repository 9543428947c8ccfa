"""Relabelling: synthetic draws with randomly permuted labels, and the R-hat failure it fixes (fast)."""

import jax.numpy as jnp
import numpy as np
import pytest
from arviz_base import from_dict
from arviz_stats import rhat

from bayesgmm.bayes.models import COVARIANCE_TYPES, MixtureDraws, cov_factor_from_covariances
from bayesgmm.bayes.relabel import kl_cost, optimal_permutations, permute_components, relabel


def synthetic_posterior(n_draws: int, k: int, d: int, covariance_type: str, seed: int = 0):
    """Draws scattered around a reference mixture with well-separated components, in sklearn shapes."""
    rng = np.random.default_rng(seed)
    ref_means = rng.normal(0, 6, size=(k, d))
    ref_weights = rng.dirichlet(np.full(k, 5.0))
    base = {
        "full": np.stack([np.eye(d) * (0.5 + i) + 0.2 for i in range(k)]),
        "tied": np.eye(d) + 0.3,
        "diag": 0.5 + rng.uniform(size=(k, d)),
        "spherical": 0.5 + np.arange(k, dtype=float),
    }[covariance_type]
    means = ref_means + 0.2 * rng.normal(size=(n_draws, k, d))
    weights = ref_weights * np.exp(0.05 * rng.normal(size=(n_draws, k)))
    weights /= weights.sum(-1, keepdims=True)
    jitter = np.exp(0.05 * rng.normal(size=(n_draws,) + (1,) * base.ndim))
    cov = base[None] * jitter
    def as_draws(w, m, c):
        c = jnp.asarray(c, jnp.float32)
        return MixtureDraws(jnp.asarray(w, jnp.float32), jnp.asarray(m, jnp.float32), c,
                            cov_factor_from_covariances(c, covariance_type))
    reference = as_draws(ref_weights, ref_means, base)
    return as_draws(weights, means, cov), reference


def scramble(draws: MixtureDraws, covariance_type: str, seed: int = 1):
    """Permute every draw's components at random: raw[s, j] = clean[s, pi_s[j]]."""
    rng = np.random.default_rng(seed)
    n_draws, k = draws.weights.shape
    pis = np.stack([rng.permutation(k) for _ in range(n_draws)])
    return permute_components(draws, pis, covariance_type), pis


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("k", [3, 8])  # brute force over K! (K <= 6) and linear_sum_assignment
def test_random_permutations_are_recovered_exactly(covariance_type, k):
    clean, reference = synthetic_posterior(500, k, 2, covariance_type)
    raw, pis = scramble(clean, covariance_type)
    relabelled, perms, _ = relabel(raw, reference, covariance_type)
    # relabelled[s, k] = raw[s, perm[s, k]] = clean[s, pi_s[perm[s, k]]] must be clean[s, k].
    np.testing.assert_array_equal(np.take_along_axis(pis, perms, axis=1), np.tile(np.arange(k), (500, 1)))
    for got, want in zip(relabelled, clean):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_brute_force_and_assignment_solver_agree():
    rng = np.random.default_rng(3)
    cost = jnp.asarray(rng.exponential(size=(300, 5, 5)), jnp.float32)
    brute = optimal_permutations(cost)
    from scipy.optimize import linear_sum_assignment

    solver = np.stack([np.argsort(linear_sum_assignment(c)[1]) for c in np.asarray(cost, np.float64)])
    # cost[s, p[s, k], k] summed over k, for both solutions.
    tb = np.asarray(cost)[np.arange(300)[:, None], brute, np.arange(5)].sum(-1)
    ts = np.asarray(cost)[np.arange(300)[:, None], solver, np.arange(5)].sum(-1)
    np.testing.assert_allclose(tb, ts, rtol=1e-6)


def test_kl_cost_is_zero_on_the_reference_and_positive_elsewhere():
    clean, reference = synthetic_posterior(1, 3, 2, "full")
    ref_as_draw = MixtureDraws(*(x[None] for x in reference))
    cost = np.asarray(kl_cost(ref_as_draw, reference, "full"))[0]
    np.testing.assert_allclose(np.diag(cost), 0.0, atol=1e-4)
    assert np.all(cost[~np.eye(3, dtype=bool)] > 1.0)


def test_non_finite_cost_is_an_error():
    with pytest.raises(ValueError, match="relabeling cost is not finite"):
        optimal_permutations(jnp.full((2, 3, 3), jnp.nan))


def test_label_switched_chains_fail_rhat_and_relabelling_fixes_it():
    """Two chains that found the same solution with swapped labels: R-hat far above 1.01 until relabelled."""
    clean, reference = synthetic_posterior(2000, 2, 2, "full")
    swap = np.zeros((2000, 2), dtype=int)
    swap[:1000] = [0, 1]
    swap[1000:] = [1, 0]  # the second chain has the labels swapped
    raw = permute_components(clean, swap, "full")

    def worst_rhat(draws: MixtureDraws) -> float:
        tree = from_dict({"posterior": {"means": np.asarray(draws.means).reshape(2, 1000, 2, 2),
                                        "weights": np.asarray(draws.weights).reshape(2, 1000, 2)}})
        values = rhat(tree)
        return max(float(values[v].max()) for v in ("means", "weights"))

    assert worst_rhat(raw) > 1.5
    relabelled, _, _ = relabel(raw, reference, "full")
    assert worst_rhat(relabelled) <= 1.01
