"""Host-side layout of the data for the compiled EM program: padded row chunks."""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

def default_chunk_size() -> int:
    """Rows per chunk: 256 on CPU (the work space stays in cache; fastest measured on 2 cores for
    D = 2..64, K = 5..32), 65536 on accelerators, where wide chunks keep the device busy."""
    return 256 if jax.default_backend() == "cpu" else 1 << 16


def data_mesh() -> Mesh | None:
    """A one-axis mesh ("data") over all JAX devices when there are several, else None.

    Across hosts (after ``jax.distributed.initialize()``) ``jax.devices()`` spans every process.
    """
    devices = jax.devices()
    return Mesh(np.array(devices), ("data",)) if len(devices) > 1 else None


def chunk_rows(X: np.ndarray, sample_weight: np.ndarray, chunk_size: int,
               mesh: Mesh | None = None) -> tuple[jax.Array, jax.Array]:
    """Pad rows with zero weight and reshape to (n_chunks, chunk, D) and (n_chunks, chunk).

    Data smaller than one chunk is padded to the next power of two (at least 8 rows), so that fits of
    similar small sizes share one compiled program. Larger data is split into equal chunks of at most
    ``chunk_size`` rows, padded by less than one chunk. With a ``mesh``, the number of chunks is a
    multiple of its devices and the chunks are sharded across them. The inputs are copied, never
    modified. Peak host memory is the data, its padded copy and the device copy; the padded copy is
    freed on return. (``jax.device_put``, not ``jnp.asarray``, which stages one more copy on CPU.)
    """
    n, d = X.shape
    n_devices = 1 if mesh is None else mesh.devices.size
    if n <= chunk_size and n_devices == 1:
        n_chunks, rows = 1, max(8, 1 << (n - 1).bit_length())
    else:
        n_chunks = n_devices * math.ceil(math.ceil(n / chunk_size) / n_devices)
        rows = 8 * math.ceil(n / n_chunks / 8)
    padded_X = np.zeros((n_chunks * rows, d), dtype=X.dtype)
    padded_X[:n] = X
    padded_w = np.zeros(n_chunks * rows, dtype=X.dtype)
    padded_w[:n] = sample_weight
    padded_X, padded_w = padded_X.reshape(n_chunks, rows, d), padded_w.reshape(n_chunks, rows)
    sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec("data"))
    return jax.device_put(padded_X, sharding), jax.device_put(padded_w, sharding)
