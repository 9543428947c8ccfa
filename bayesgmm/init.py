"""Keyed initialisation in JAX: responsibilities from k-means, k-means++, random, random_from_data.

Every method returns weighted responsibilities of shape (N, K) from which :func:`bayesgmm.em.m_step`
gives the starting parameters, as scikit-learn does. Rows with zero sample weight (padding) are never
chosen as seeds. ``mask`` marks the components that exist when a grid is padded to one K.

References
----------
Arthur, D. and Vassilvitskii, S. (2007). k-means++: the advantages of careful seeding. SODA.
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp

InitMethod = Literal["kmeans", "k-means++", "random", "random_from_data"]
INIT_METHODS: tuple[str, ...] = ("kmeans", "k-means++", "random", "random_from_data")


def _sq_distances(X: jax.Array, centers: jax.Array) -> jax.Array:
    """Squared Euclidean distances, shape (N, K), from explicit differences (no cancellation)."""
    return jnp.sum((X[:, None, :] - centers[None, :, :]) ** 2, axis=-1)


def kmeans_plusplus(key: jax.Array, X: jax.Array, sample_weight: jax.Array, mask: jax.Array) -> jax.Array:
    """Greedy k-means++ seeding (2 + log K local trials per seed, as scikit-learn).

    Returns
    -------
    indices : int array of shape (K,)
        Rows of X chosen as seeds; masked components repeat the first seed.
    """
    n_components = mask.shape[0]
    n_trials = 2 + int(math.log(n_components))
    keys = jax.random.split(key, n_components)
    p = sample_weight / jnp.sum(sample_weight)
    first = jax.random.choice(keys[0], X.shape[0], p=p)
    closest = jnp.sum((X - X[first]) ** 2, axis=-1)
    indices = jnp.zeros(n_components, jnp.int32).at[0].set(first.astype(jnp.int32))

    def add_seed(k, carry):
        indices, closest = carry
        potential = sample_weight * closest
        probs = jnp.where(jnp.sum(potential) > 0, potential / jnp.sum(potential), p)
        candidates = jax.random.choice(keys[k], X.shape[0], shape=(n_trials,), p=probs)
        trial_closest = jnp.minimum(closest[None, :], _sq_distances(X, X[candidates]).T)
        best = jnp.argmin(trial_closest @ sample_weight)
        chosen = jnp.where(mask[k], candidates[best], indices[0])
        new_closest = jnp.where(mask[k], trial_closest[best], closest)
        return indices.at[k].set(chosen.astype(jnp.int32)), new_closest

    indices, _ = jax.lax.fori_loop(1, n_components, add_seed, (indices, closest))
    return indices


def kmeans_labels(key: jax.Array, X: jax.Array, sample_weight: jax.Array, mask: jax.Array,
                  max_iter: int = 100) -> jax.Array:
    """Weighted Lloyd iterations from k-means++ seeds until the labels stop changing; labels (N,)."""
    centers = X[kmeans_plusplus(key, X, sample_weight, mask)]

    def assign(centers):
        return jnp.argmin(jnp.where(mask[None, :], _sq_distances(X, centers), jnp.inf), axis=1)

    def cond(state):
        i, _, labels, previous = state
        return (i < max_iter) & jnp.any(labels != previous)

    def body(state):
        i, centers, labels, _ = state
        onehot = jax.nn.one_hot(labels, mask.shape[0], dtype=X.dtype) * sample_weight[:, None]
        counts = jnp.sum(onehot, axis=0)
        new_centers = jnp.where(counts[:, None] > 0, (onehot.T @ X) / jnp.maximum(counts, 1e-30)[:, None], centers)
        return i + 1, new_centers, assign(new_centers), labels

    labels = assign(centers)
    _, _, labels, _ = jax.lax.while_loop(cond, body, (0, centers, labels, labels - 1))
    return labels


def initial_responsibilities(key: jax.Array, X: jax.Array, sample_weight: jax.Array, mask: jax.Array,
                             method: InitMethod) -> jax.Array:
    """Weighted responsibilities (N, K) for the chosen initialisation ``method``."""
    n_samples, n_components = X.shape[0], mask.shape[0]
    if method == "kmeans":
        resp = jax.nn.one_hot(kmeans_labels(key, X, sample_weight, mask), n_components, dtype=X.dtype)
    elif method == "k-means++":
        indices = kmeans_plusplus(key, X, sample_weight, mask)
        resp = jnp.zeros((n_samples, n_components), X.dtype).at[indices, jnp.arange(n_components)].set(1.0)
    elif method == "random":
        resp = jax.random.uniform(key, (n_samples, n_components), X.dtype) * mask
        resp = resp / jnp.sum(resp, axis=1, keepdims=True)
    elif method == "random_from_data":
        p = sample_weight / jnp.sum(sample_weight)
        n_seeds = min(n_components, n_samples)
        indices = jax.random.choice(key, n_samples, shape=(n_seeds,), replace=False, p=p)
        resp = jnp.zeros((n_samples, n_components), X.dtype).at[indices, jnp.arange(n_seeds)].set(1.0)
    else:
        raise ValueError(f"init_params must be one of {INIT_METHODS}, got {method!r}")
    return resp * mask * sample_weight[:, None]
