"""Keyed initialisation in JAX: k-means, k-means++, random, random_from_data.

Every method works on chunked data, ``X`` of shape (n_chunks, chunk_size, D) with ``sample_weight``
of shape (n_chunks, chunk_size) (zero for padding rows, which are never chosen as seeds), and returns
a function ``resp_of_chunk(i) -> (chunk_size, K)`` of weighted responsibilities, from which
:func:`bayesgmm.em.m_step` gives the starting parameters as scikit-learn does. Nothing of size
N x K x D, N x K or N x D is ever formed: work space is O(N) (labels, distances to the closest
seed) plus O(chunk_size x K). ``mask`` marks the components
that exist when a grid is padded to one K.

References
----------
Arthur, D. and Vassilvitskii, S. (2007). k-means++: the advantages of careful seeding. SODA.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp

from bayesgmm._chunks import map_chunks, scan_chunks

InitMethod = Literal["kmeans", "k-means++", "random", "random_from_data", "hc"]
#: ``"hc"`` is mclust's model-based hierarchical agglomeration (:mod:`bayesgmm.hc`), computed on the host;
#: the compiled core receives its labels (:func:`label_responsibilities`).
INIT_METHODS: tuple[str, ...] = ("kmeans", "k-means++", "random", "random_from_data", "hc")


def _sq_distances(x: jax.Array, centers: jax.Array) -> jax.Array:
    """Squared Euclidean distances from rows x (S, D) to centers (M, D): shape (S, M).

    Explicit differences (no |x|^2 - 2 x.c + |c|^2 cancellation).
    """
    return jnp.sum((x[:, None, :] - centers[None, :, :]) ** 2, axis=-1)


#: Up to this many features x centers, the nearest center is found by an unrolled compare over
#: (S,) columns (3-6x faster on a CPU than an argmin over (S, K) distances with D on the minor axis).
UNROLL_MAX = 64


def _nearest(x: jax.Array, centers: jax.Array, mask: jax.Array) -> jax.Array:
    """Index of the nearest unmasked center for each row of x (S, D): int array of shape (S,)."""
    n_features, n_centers = x.shape[-1], centers.shape[0]
    if n_features * n_centers > UNROLL_MAX:
        return jnp.argmin(jnp.where(mask, _sq_distances(x, centers), jnp.inf), axis=-1)
    columns = x.T
    best_dist, best = jnp.full(x.shape[0], jnp.inf, x.dtype), jnp.zeros(x.shape[0], jnp.int32)
    for k in range(n_centers):
        dist = sum((columns[j] - centers[k, j]) ** 2 for j in range(n_features))
        closer = mask[k] & (dist < best_dist)  # strict: the first of equals wins, as argmin
        best_dist, best = jnp.where(closer, dist, best_dist), jnp.where(closer, k, best)
    return best


def _closest(X: jax.Array, sample_weight: jax.Array, centers: jax.Array) -> jax.Array:
    """Squared distance from each row of chunked X (C, S, D) to its closest center: shape (C, S)
    (zero in the trailing chunks of padding)."""
    return map_chunks(lambda i: jnp.min(_sq_distances(X[i], centers), axis=-1), sample_weight)


def kmeans_plusplus(key: jax.Array, X: jax.Array, sample_weight: jax.Array, mask: jax.Array) -> jax.Array:
    """Greedy k-means++ seeding (2 + log K local trials per seed, as scikit-learn).

    Work space is O(N) (each row's distance to its closest seed) plus one chunk.

    Returns
    -------
    indices : int array of shape (K,)
        Flat row indices of the seeds; masked components repeat the first seed.
    """
    n_components = mask.shape[0]
    n_trials = 2 + int(math.log(n_components))
    keys = jax.random.split(key, n_components)
    flat_X = X.reshape(-1, X.shape[-1])
    w = sample_weight.reshape(-1)
    p = w / jnp.sum(w)
    first = jax.random.choice(keys[0], w.shape[0], p=p).astype(jnp.int32)
    closest = _closest(X, sample_weight, flat_X[first][None])
    indices = jnp.zeros(n_components, jnp.int32).at[0].set(first)

    def add_seed(k, carry):
        indices, closest = carry
        potential = (sample_weight * closest).reshape(-1)
        probs = jnp.where(jnp.sum(potential) > 0, potential / jnp.sum(potential), p)
        candidates = jax.random.choice(keys[k], w.shape[0], shape=(n_trials,), p=probs).astype(jnp.int32)

        def trial_potentials(total, i):  # sum_n w_n min(closest_n, |x_n - c_t|^2) for each trial t
            return total + sample_weight[i] @ jnp.minimum(closest[i][:, None], _sq_distances(X[i], flat_X[candidates]))

        best = jnp.argmin(scan_chunks(trial_potentials, jnp.zeros(n_trials, X.dtype), sample_weight))
        chosen = jnp.where(mask[k], candidates[best], indices[0])
        new_closest = jnp.minimum(closest, _closest(X, sample_weight, flat_X[chosen][None]))
        return indices.at[k].set(chosen), jnp.where(mask[k], new_closest, closest)

    indices, _ = jax.lax.fori_loop(1, n_components, add_seed, (indices, closest))
    return indices


def kmeans_labels(key: jax.Array, X: jax.Array, sample_weight: jax.Array, mask: jax.Array,
                  max_iter: int = 100) -> jax.Array:
    """Weighted Lloyd iterations from k-means++ seeds until the labels stop changing: labels (C, S).

    Each iteration is one pass over the chunks that assigns the rows to their nearest center and
    sums them per label. Work space is O(N) (the labels) plus one chunk.
    """
    n_components = mask.shape[0]
    centers = X.reshape(-1, X.shape[-1])[kmeans_plusplus(key, X, sample_weight, mask)]

    def assign_and_sum(centers):
        """(labels (C, S) of the nearest centers, the centers of those labels)."""
        def one_chunk(carry, i):
            labels, sums, counts = carry
            lab = _nearest(X[i], centers, mask)
            weighted = jax.nn.one_hot(lab, n_components, dtype=X.dtype) * sample_weight[i][:, None]
            return labels.at[i].set(lab), sums + weighted.T @ X[i], counts + jnp.sum(weighted, axis=0)

        zeros = (jnp.zeros(sample_weight.shape, jnp.int32), jnp.zeros_like(centers), jnp.zeros(n_components, X.dtype))
        labels, sums, counts = scan_chunks(one_chunk, zeros, sample_weight)
        return labels, jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1e-30)[:, None], centers)

    def cond(state):
        i, _, labels, previous = state
        return (i < max_iter) & jnp.any(labels != previous)

    def body(state):
        i, centers, labels, _ = state
        new_labels, new_centers = assign_and_sum(centers)
        return i + 1, new_centers, new_labels, labels

    labels, centers = assign_and_sum(centers)
    _, _, labels, _ = jax.lax.while_loop(cond, body, (0, centers, labels, labels - 1))
    return labels


def label_responsibilities(labels: jax.Array, sample_weight: jax.Array,
                           mask: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """``resp_of_chunk(i)`` for given labels (n_chunks, chunk_size): one-hot rows times the sample
    weights; a label of -1 gives a zero row (the row takes no part in the first M-step)."""
    n_components = mask.shape[0]

    def resp_of_chunk(i):
        return jax.nn.one_hot(labels[i], n_components, dtype=sample_weight.dtype) * mask * sample_weight[i][:, None]

    return resp_of_chunk


def initial_responsibilities(key: jax.Array, X: jax.Array, sample_weight: jax.Array, mask: jax.Array,
                             method: InitMethod) -> Callable[[jax.Array], jax.Array]:
    """``resp_of_chunk(i)``: weighted responsibilities (chunk_size, K) of chunk ``i`` for ``method``."""
    n_chunks, chunk_size = sample_weight.shape
    n_components = mask.shape[0]
    if method in ("kmeans", "k-means++", "random_from_data"):
        if method == "kmeans":
            labels = kmeans_labels(key, X, sample_weight, mask)
        else:
            if method == "k-means++":
                seeds = kmeans_plusplus(key, X, sample_weight, mask)
            else:
                w = sample_weight.reshape(-1)
                seeds = jax.random.choice(key, w.shape[0], shape=(n_components,), replace=False, p=w / jnp.sum(w))
            labels = jnp.full(n_chunks * chunk_size, -1, jnp.int32).at[seeds].set(
                jnp.where(mask, jnp.arange(n_components, dtype=jnp.int32), -1))
            labels = labels.reshape(n_chunks, chunk_size)
        return label_responsibilities(labels, sample_weight, mask)  # label -1 (not a seed) gives a zero row

    if method == "random":

        def resp_of_chunk(i):  # one key per row position, so that the draw does not depend on the chunk size
            rows = i * chunk_size + jnp.arange(chunk_size)
            draw = jax.vmap(lambda r: jax.random.uniform(jax.random.fold_in(key, r), (n_components,), X.dtype))
            resp = draw(rows) * mask
            return resp / jnp.sum(resp, axis=1, keepdims=True) * sample_weight[i][:, None]

        return resp_of_chunk
    raise ValueError(f"init_params must be one of {INIT_METHODS[:-1]} here ('hc' needs labels), got {method!r}")
