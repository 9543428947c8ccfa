"""The layout of the data for the compiled programs: padded row chunks in size classes, and the loops
that walk them.

Rows are padded with weight 0 to a *size class*: a chunk count from a short ladder (1, 4, 16, 64, then
steps of at most 1/8), so that data sets of similar size share one compiled program (one compile per
size class, not per data set). The loops over chunks (:func:`scan_chunks`, :func:`map_chunks`) stop
after the last chunk that holds a row of positive weight, so the padding chunks cost memory but no
arithmetic. With a device mesh each device holds an equal share of the rows followed by its padding.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

#: Data larger than this goes to the device in blocks of this many bytes, each written in place into
#: the padded device array, so that the host never holds a padded copy of large data.
TRANSFER_BLOCK_BYTES = 64 << 20

#: Rows per chunk are never fewer than this for data that fit in one chunk (unless ``chunk_size`` is
#: smaller), so that all small data sets share one size class.
MIN_CHUNK_ROWS = 256


def default_chunk_size(n_runs: int = 1) -> int:
    """Rows per chunk for ``n_runs`` EM runs vectorised together (restarts x grid points).

    On CPU 256 rows for one run (the work space stays in cache; fastest measured on 2 cores for
    D = 2..64, K = 5..32), fewer as the runs multiply, since each step of the loop over chunks
    works on every run's copy of the chunk (``1024 / n_runs`` rows, at least 32: 4x faster EM
    iterations for ``select``'s 90 runs on Old Faithful than 256-row chunks); 65536 on
    accelerators (wide chunks keep the device busy), at least 4096 rows.
    """
    def floor_pow2(x: float) -> int:
        return 1 << max(0, int(math.floor(math.log2(max(x, 1.0)))))

    if jax.default_backend() == "cpu":
        return min(256, max(32, floor_pow2(1024 / max(1, n_runs))))
    return max(4096, floor_pow2((1 << 16) / max(1, n_runs)))


#: Data with fewer rows than this are not sharded across devices: on 2 CPU devices sharding made
#: ``select`` on Old Faithful slower (8.9 s -> 9.7 s warm, 13 s -> 17 s cold), while at 10^6 rows it
#: halves the time of an EM iteration (see the performance page).
MESH_MIN_ROWS = 1 << 15


def data_mesh(n_rows: int | None = None) -> Mesh | None:
    """A one-axis mesh ("data") over all JAX devices when there are several (and, given ``n_rows``,
    the data have at least :data:`MESH_MIN_ROWS` rows), else None.

    Across hosts (after ``jax.distributed.initialize()``) ``jax.devices()`` spans every process.
    """
    devices = jax.devices()
    if len(devices) < 2 or (n_rows is not None and n_rows < MESH_MIN_ROWS and jax.process_count() == 1):
        return None
    return Mesh(np.array(devices), ("data",))


def chunk_count_class(n_chunks: int) -> int:
    """The size class of ``n_chunks`` chunks: 1, 4, 16 or 64, then the next multiple of a power of
    two at most 1/8 of it (so large data are padded by less than 12.5%)."""
    for size in (1, 4, 16, 64):
        if n_chunks <= size:
            return size
    step = 1 << (n_chunks.bit_length() - 4)
    return step * math.ceil(n_chunks / step)


def chunk_layout(n: int, chunk_size: int, n_devices: int = 1) -> tuple[int, int]:
    """(chunks per device, rows per chunk) of the size class of ``n`` rows.

    Data that fit in one chunk per device get one chunk of ``max(MIN_CHUNK_ROWS, 2^ceil(log2 n))``
    rows (at most ``chunk_size``); larger data get chunks of ``chunk_size`` rows, their number per
    device rounded up by :func:`chunk_count_class`.
    """
    per_device = math.ceil(n / n_devices)
    if per_device <= chunk_size:
        return 1, min(chunk_size, max(MIN_CHUNK_ROWS, 1 << max(0, per_device - 1).bit_length()))
    return chunk_count_class(math.ceil(per_device / chunk_size)), chunk_size


#: Data padded to at most this many rows also have their number of components padded
#: (:func:`component_count_class`): there compilation, not arithmetic, is what the user waits for.
SMALL_DATA_ROWS = 4096


def component_count_class(n_components: int, padded_rows: int) -> int:
    """Components to compile for: on small data (``padded_rows <= SMALL_DATA_ROWS``) the next
    multiple of 4, so that nearby K share one program (the extra components are masked); on larger
    data exactly ``n_components``, as the padding would cost arithmetic there."""
    return 4 * math.ceil(n_components / 4) if padded_rows <= SMALL_DATA_ROWS else n_components


def _device_blocks(n: int, n_devices: int, block_rows: int):
    """(first row, rows, first flat position) of each device's share: device j holds rows
    [j * share, (j + 1) * share) at the start of its block of ``block_rows`` flat positions."""
    share = math.ceil(n / n_devices)
    for j in range(n_devices):
        first = min(n, j * share)
        yield first, min(n, first + share) - first, j * block_rows


def chunk_rows(X: np.ndarray, sample_weight: np.ndarray, chunk_size: int,
               mesh: Mesh | None = None) -> tuple[jax.Array, jax.Array]:
    """Pad rows with zero weight to the size class of X and reshape to (n_chunks, chunk, D) and
    (n_chunks, chunk) (:func:`chunk_layout`).

    With a ``mesh``, the chunks are split evenly across its devices, each device's rows first and
    its padding after. The inputs are copied, never modified. Data over ``TRANSFER_BLOCK_BYTES`` is
    sent in blocks into a zero device array, so peak memory is the data, the padded device copy and
    one block (on a CPU both are host memory).
    """
    n, d = X.shape
    n_devices = 1 if mesh is None else mesh.devices.size
    per_device, rows = chunk_layout(n, chunk_size, n_devices)
    n_chunks, block_rows = per_device * n_devices, per_device * rows
    sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec("data"))
    padded_w = np.zeros(n_chunks * rows, dtype=X.dtype)
    for first, count, at in _device_blocks(n, n_devices, block_rows):
        padded_w[at:at + count] = sample_weight[first:first + count]
    padded_w = jax.device_put(padded_w.reshape(n_chunks, rows), sharding)
    if X.nbytes <= TRANSFER_BLOCK_BYTES:
        padded_X = np.zeros((n_chunks * rows, d), dtype=X.dtype)
        for first, count, at in _device_blocks(n, n_devices, block_rows):
            padded_X[at:at + count] = X[first:first + count]
        return jax.device_put(padded_X.reshape(n_chunks, rows, d), sharding), padded_w
    padded_X = jnp.zeros((n_chunks, rows, d), dtype=X.dtype, device=sharding)
    block = max(1, TRANSFER_BLOCK_BYTES // (d * X.itemsize))
    for first, count, at in _device_blocks(n, n_devices, block_rows):  # a transfer, once per fit: not a hot loop
        for start in range(0, count, block):
            rows_here = X[first + start:first + min(count, start + block)]
            padded_X = _write_rows(padded_X, jax.device_put(rows_here), np.int32(at + start))
    return padded_X, padded_w


def chunk_labels(labels: np.ndarray, like: jax.Array) -> jax.Array:
    """Per-row int labels (n_samples,) padded with -1 and laid out, and sharded, as ``like``
    (the (n_chunks, chunk) sample weights from :func:`chunk_rows`)."""
    padded = np.full(like.size, -1, dtype=np.int32)
    n_devices = len(like.sharding.device_set)
    for first, count, at in _device_blocks(len(labels), n_devices, like.size // n_devices):
        padded[at:at + count] = labels[first:first + count]
    return jax.device_put(padded.reshape(like.shape), like.sharding)


def unchunk(values: np.ndarray, n: int) -> np.ndarray:
    """Per-row results (n_chunks, chunk, ...) of data laid out by :func:`chunk_rows` without a mesh,
    back to (n, ...)."""
    values = np.asarray(values)
    return values.reshape(-1, *values.shape[2:])[:n]


@functools.partial(jax.jit, donate_argnums=0)
def _write_rows(chunks: jax.Array, block: jax.Array, start: jax.Array) -> jax.Array:
    """``chunks`` (n_chunks, rows, D) with the flat rows start..start + len(block) set to ``block``;
    ``chunks`` is donated, so the update is in place."""
    n_chunks, rows, d = chunks.shape
    flat = jax.lax.dynamic_update_slice(chunks.reshape(n_chunks * rows, d), block, (start, jnp.int32(0)))
    return flat.reshape(n_chunks, rows, d)


# ---------------------------------------------------------------------- loops inside the programs

def used_chunks(sample_weight: jax.Array) -> jax.Array:
    """Number of leading chunks up to the last one holding a row of positive weight (traced int32);
    the chunks after it contribute nothing to any weighted sum."""
    occupied = jnp.any(sample_weight > 0, axis=-1)
    return jnp.max(jnp.where(occupied, jnp.arange(1, occupied.shape[0] + 1, dtype=jnp.int32), 0))


def scan_chunks(step: Callable, init, sample_weight: jax.Array):
    """``carry = step(carry, i)`` for the chunks ``i`` that hold data (:func:`used_chunks`); the final carry."""
    return jax.lax.fori_loop(0, used_chunks(sample_weight), lambda i, carry: step(carry, i), init)


def map_chunks(f: Callable, sample_weight: jax.Array):
    """``f(i)`` stacked over all chunks (a pytree with a leading n_chunks axis), computed for the
    chunks that hold data and zero for the others."""
    n_chunks = sample_weight.shape[0]
    shapes = jax.eval_shape(f, jnp.int32(0))
    out = jax.tree_util.tree_map(lambda s: jnp.zeros((n_chunks, *s.shape), s.dtype), shapes)

    def put(i, out):
        return jax.tree_util.tree_map(lambda o, v: o.at[i].set(v), out, f(i))

    return jax.lax.fori_loop(0, used_chunks(sample_weight), put, out)
