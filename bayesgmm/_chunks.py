"""Host-side layout of the data for the compiled EM program: padded row chunks."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

# Rows x components x features per chunk that keep the work space in cache-sized pieces.
_WORKSPACE_ELEMENTS = 1 << 19


def default_chunk_size(n_components: int, n_features: int, n_batch: int = 1) -> int:
    """Rows per chunk so that chunk x K x D x batch stays near 2**19 elements (a power of two)."""
    rows = _WORKSPACE_ELEMENTS // max(1, n_components * n_features * n_batch)
    return int(min(1 << 16, max(64, 1 << max(0, rows.bit_length() - 1))))


def chunk_rows(X: np.ndarray, sample_weight: np.ndarray, chunk_size: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Pad rows with zero weight and reshape to (n_chunks, chunk, D) and (n_chunks, chunk).

    Data smaller than one chunk is padded to the next power of two (at least 8 rows), so that fits of
    similar small sizes share one compiled program. Larger data is split into equal chunks of at most
    ``chunk_size`` rows, padded by less than one chunk. The inputs are copied, never modified.
    """
    n, d = X.shape
    if n <= chunk_size:
        n_chunks, rows = 1, max(8, 1 << (n - 1).bit_length())
    else:
        n_chunks = math.ceil(n / chunk_size)
        rows = 8 * math.ceil(n / n_chunks / 8)
    padded_X = np.zeros((n_chunks * rows, d), dtype=X.dtype)
    padded_X[:n] = X
    padded_w = np.zeros(n_chunks * rows, dtype=X.dtype)
    padded_w[:n] = sample_weight
    return jnp.asarray(padded_X.reshape(n_chunks, rows, d)), jnp.asarray(padded_w.reshape(n_chunks, rows))
