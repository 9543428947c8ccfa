"""Host-side layout of the data for the compiled EM program: padded row chunks."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

#: Data larger than this goes to the device in blocks of this many bytes, each written in place into
#: the padded device array, so that the host never holds a padded copy of large data.
TRANSFER_BLOCK_BYTES = 64 << 20


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
    modified. Data over ``TRANSFER_BLOCK_BYTES`` is sent in blocks into a zero device array, so
    peak memory is the data, the padded device copy and one block (on a CPU both are host memory).
    """
    n, d = X.shape
    n_devices = 1 if mesh is None else mesh.devices.size
    if n <= chunk_size and n_devices == 1:
        n_chunks, rows = 1, max(8, 1 << (n - 1).bit_length())
    else:
        n_chunks = n_devices * math.ceil(math.ceil(n / chunk_size) / n_devices)
        rows = 8 * math.ceil(n / n_chunks / 8)
    sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec("data"))
    padded_w = np.zeros(n_chunks * rows, dtype=X.dtype)
    padded_w[:n] = sample_weight
    padded_w = jax.device_put(padded_w.reshape(n_chunks, rows), sharding)
    if X.nbytes <= TRANSFER_BLOCK_BYTES:
        padded_X = np.zeros((n_chunks * rows, d), dtype=X.dtype)
        padded_X[:n] = X
        return jax.device_put(padded_X.reshape(n_chunks, rows, d), sharding), padded_w
    padded_X = jnp.zeros((n_chunks, rows, d), dtype=X.dtype, device=sharding)
    block = max(1, TRANSFER_BLOCK_BYTES // (d * X.itemsize))
    for start in range(0, n, block):  # a host-to-device transfer, once per fit: not a hot loop
        padded_X = _write_rows(padded_X, jax.device_put(X[start:start + block]), np.int32(start))
    return padded_X, padded_w


def chunk_labels(labels: np.ndarray, like: jax.Array) -> jax.Array:
    """Per-row int labels (n_samples,) padded with -1 and laid out, and sharded, as ``like``
    (the (n_chunks, chunk) sample weights from :func:`chunk_rows`)."""
    padded = np.full(like.size, -1, dtype=np.int32)
    padded[:len(labels)] = labels
    return jax.device_put(padded.reshape(like.shape), like.sharding)


@functools.partial(jax.jit, donate_argnums=0)
def _write_rows(chunks: jax.Array, block: jax.Array, start: jax.Array) -> jax.Array:
    """``chunks`` (n_chunks, rows, D) with the flat rows start..start + len(block) set to ``block``;
    ``chunks`` is donated, so the update is in place."""
    n_chunks, rows, d = chunks.shape
    flat = jax.lax.dynamic_update_slice(chunks.reshape(n_chunks * rows, d), block, (start, jnp.int32(0)))
    return flat.reshape(n_chunks, rows, d)
