"""Undo label switching: match every draw's components to a reference by an optimal assignment.

A mixture's likelihood is invariant to permuting its components, so a sampler can visit all
``K!`` relabellings of one solution, within a chain or between chains. Per-component summaries and
R-hat are then meaningless. Each draw's components are matched to the components of a reference
(the EM solution first, then the posterior mean of the relabelled draws, iterated) by the
assignment that minimises the summed Kullback-Leibler divergence ``KL(draw_j || reference_k)``
between Gaussian components; weights, means and covariances are permuted together.

For ``n_components <= 6`` the assignment is a vectorised brute force over all ``K!`` permutations in
JAX; above that, ``scipy.optimize.linear_sum_assignment`` runs per draw on the host.

References
----------
Stephens, M. (2000). Dealing with label switching in mixture models. JRSS B 62(4).
Celeux, G., Hurn, M. and Robert, C. P. (2000). Computational and inferential difficulties with
mixture posterior distributions. JASA 95(451).
"""

from __future__ import annotations

import itertools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular
from scipy.optimize import linear_sum_assignment

from bayesgmm.bayes.models import CovarianceType, MixtureDraws, cov_factor_from_covariances
from bayesgmm.covariance import form_of

ArrayLikeOrNp = jax.Array | np.ndarray

#: Largest number of components solved by brute force over all permutations.
MAX_BRUTE_FORCE_COMPONENTS = 6


def _full_factor(cov_factor: jax.Array, covariance_type: CovarianceType, n_components: int,
                 n_features: int) -> jax.Array:
    """Covariance square roots as lower-triangular matrices of shape (..., K, D, D)."""
    return form_of(covariance_type).full(cov_factor, n_components, n_features)


@partial(jax.jit, static_argnames="covariance_type")
def kl_cost(draws: MixtureDraws, reference: MixtureDraws, covariance_type: CovarianceType) -> jax.Array:
    """Cost of giving draw component ``j`` the label of reference component ``k``.

    Parameters
    ----------
    draws : MixtureDraws
        Leading axis of length ``n_draws`` (flatten chains and draws first).
    reference : MixtureDraws
        One mixture (no sample axis).
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    jax.Array of shape (n_draws, n_components, n_components)
        ``KL(N(mu_j, Sigma_j) || N(m_k, S_k))``, the draw's component ``j`` (rows) against the
        reference component ``k`` (columns).
    """
    k, d = reference.means.shape
    draw_factor = _full_factor(draws.cov_factor, covariance_type, k, d)  # (S, K, D, D)
    ref_factor = _full_factor(reference.cov_factor, covariance_type, k, d)  # (K, D, D)
    eye = jnp.eye(d, dtype=ref_factor.dtype)
    ref_inv = jax.vmap(lambda f: solve_triangular(f, eye, lower=True))(ref_factor)  # (K, D, D)
    # || S_k^{-1/2} Sigma_j^{1/2} ||_F^2 = tr(S_k^{-1} Sigma_j)
    whitened = jnp.einsum("kab,sjbc->sjkac", ref_inv, draw_factor)
    trace = jnp.sum(whitened**2, axis=(-2, -1))
    diff = reference.means[None, None, :, :] - draws.means[:, :, None, :]  # (S, j, k, D)
    maha = jnp.sum(jnp.einsum("kab,sjkb->sjka", ref_inv, diff) ** 2, axis=-1)
    logdet_ref = jnp.sum(jnp.log(jnp.diagonal(ref_factor, axis1=-2, axis2=-1)), axis=-1)  # (K,)
    logdet_draw = jnp.sum(jnp.log(jnp.diagonal(draw_factor, axis1=-2, axis2=-1)), axis=-1)  # (S, K)
    return 0.5 * (trace + maha - d) + logdet_ref[None, None, :] - logdet_draw[:, :, None]


@partial(jax.jit, static_argnums=1)
def _brute_force(cost: jax.Array, n_components: int) -> jax.Array:
    perms = jnp.asarray(list(itertools.permutations(range(n_components))), dtype=jnp.int32)  # (P, K)
    # total[s, p] = sum_k cost[s, perms[p, k], k]
    total = jnp.sum(cost[:, perms, jnp.arange(n_components)], axis=-1)
    return perms[jnp.argmin(total, axis=-1)]


def optimal_permutations(cost: ArrayLikeOrNp) -> np.ndarray:
    """Per draw, the assignment of draw components to reference labels with the smallest total cost.

    Parameters
    ----------
    cost : array of shape (n_draws, n_components, n_components)
        ``cost[s, j, k]``: draw component ``j`` given reference label ``k``.

    Returns
    -------
    numpy.ndarray of int, shape (n_draws, n_components)
        ``perm[s, k]`` is the draw component that takes label ``k``; relabelled quantities are
        ``x[s, perm[s, k]]``.
    """
    cost = jnp.asarray(cost)
    n_components = cost.shape[-1]
    if not bool(jnp.all(jnp.isfinite(cost))):
        raise ValueError("relabeling cost is not finite: a draw has a non-finite or singular component")
    if n_components <= MAX_BRUTE_FORCE_COMPONENTS:
        return np.asarray(_brute_force(cost, n_components))
    cost_np = np.asarray(cost, dtype=np.float64)
    # col[j] is the label given to draw component j; the inverse permutation maps labels to components.
    cols = np.stack([linear_sum_assignment(c)[1] for c in cost_np])
    return np.argsort(cols, axis=-1)


@partial(jax.jit, static_argnames="covariance_type")
def permute_components(draws: MixtureDraws, perms: ArrayLikeOrNp, covariance_type: CovarianceType) -> MixtureDraws:
    """Reorder the components of every draw: ``x[s, k] <- x[s, perms[s, k]]``.

    Parameters
    ----------
    draws : MixtureDraws
        Leading axis ``n_draws``.
    perms : array of int, shape (n_draws, n_components)
    covariance_type : {"full", "tied", "diag", "spherical"}
        A tied covariance is shared, so it is left as is.

    Returns
    -------
    MixtureDraws
    """
    perms = jnp.asarray(perms)

    def take(x: jax.Array) -> jax.Array:
        index = perms.reshape(perms.shape + (1,) * (x.ndim - 2))
        return jnp.take_along_axis(x, index, axis=1)

    if not form_of(covariance_type).per_component:
        return MixtureDraws(take(draws.weights), take(draws.means), draws.covariances, draws.cov_factor)
    return MixtureDraws(*(take(x) for x in draws))


@partial(jax.jit, static_argnames="covariance_type")
def posterior_mean(draws: MixtureDraws, covariance_type: CovarianceType) -> MixtureDraws:
    """Mean of the weights, means and covariances over the leading axis, with its covariance square roots."""
    weights = jnp.mean(draws.weights, axis=0)
    covariances = jnp.mean(draws.covariances, axis=0)
    return MixtureDraws(weights / jnp.sum(weights), jnp.mean(draws.means, axis=0), covariances,
                        cov_factor_from_covariances(covariances, covariance_type))


def relabel(
    draws: MixtureDraws,
    reference: MixtureDraws,
    covariance_type: CovarianceType,
    max_iter: int = 3,
) -> tuple[MixtureDraws, np.ndarray, MixtureDraws]:
    """Relabel draws against a reference, then against the relabelled posterior mean, until stable.

    Parameters
    ----------
    draws : MixtureDraws
        Raw draws with one leading axis ``n_draws`` (flatten chains and draws first).
    reference : MixtureDraws
        Starting reference, e.g. the EM solution (no sample axis).
    covariance_type : {"full", "tied", "diag", "spherical"}
    max_iter : int, default 3
        Rounds of "reference <- posterior mean of the relabelled draws"; stops early when no draw
        changes labels.

    Returns
    -------
    relabelled : MixtureDraws
    perms : numpy.ndarray of shape (n_draws, n_components)
        Applied to the raw draws: ``relabelled.x[s, k] == draws.x[s, perms[s, k]]``.
    reference : MixtureDraws
        The final reference (the posterior mean of ``relabelled``, or the input reference when
        ``max_iter == 0``).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from bayesgmm.bayes.models import MixtureDraws
    >>> ref = MixtureDraws(jnp.array([0.5, 0.5]), jnp.array([[0.0], [5.0]]),
    ...                    jnp.ones((2, 1, 1)), jnp.ones((2, 1, 1)))
    >>> swapped = MixtureDraws(ref.weights[None], ref.means[::-1][None],
    ...                        ref.covariances[None], ref.cov_factor[None])
    >>> _, perms, _ = relabel(swapped, ref, "full", max_iter=0)
    >>> perms.tolist()
    [[1, 0]]
    """
    perms = optimal_permutations(kl_cost(draws, reference, covariance_type))
    relabelled = permute_components(draws, perms, covariance_type)
    for _ in range(max_iter):
        reference = posterior_mean(relabelled, covariance_type)
        new_perms = optimal_permutations(kl_cost(draws, reference, covariance_type))
        changed = bool(np.any(new_perms != perms))
        perms = new_perms
        relabelled = permute_components(draws, perms, covariance_type)
        if not changed:
            break
    if max_iter > 0:
        reference = posterior_mean(relabelled, covariance_type)
    return relabelled, perms, reference
