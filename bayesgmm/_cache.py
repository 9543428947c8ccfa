"""JAX's persistent compilation cache, on by default for bayesgmm, and every CPU core on request.

Compiled programs are kept in ``$XDG_CACHE_HOME/bayesgmm/jax`` (``~/.cache/bayesgmm/jax``), so a new
Python process that fits a model of a size class it has seen before loads the program instead of
compiling it. ``BAYESGMM_CACHE_DIR=/some/dir`` moves the cache and ``BAYESGMM_CACHE_DIR=`` (empty)
turns it off; :func:`use_compilation_cache` does the same from Python. A cache the user configured
for JAX (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is left as it is, and no other JAX setting
is changed (JAX caches the programs whose compilation takes over a second).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "BAYESGMM_CACHE_DIR"

# the cache directory this module set, so that it can tell its own setting from the user's
_ours: str | None = None


def compilation_cache_dir() -> Path | None:
    """The default cache folder: ``BAYESGMM_CACHE_DIR`` (empty: none), else
    ``$XDG_CACHE_HOME/bayesgmm/jax`` or ``~/.cache/bayesgmm/jax``."""
    configured = os.environ.get(ENV_VAR)
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bayesgmm" / "jax"


def use_compilation_cache(path: str | os.PathLike | None | bool = True) -> Path | None:
    """Keep compiled programs in ``path`` (True: :func:`compilation_cache_dir`; False or None: off).

    Called when bayesgmm is imported, with the default. It never replaces a cache folder that was
    configured for JAX by someone else; call it with a path to choose one anyway. Takes effect for
    programs compiled afterwards (JAX opens the cache at its first compilation: call it before that
    to turn the cache on in a process that has already compiled something).

    Returns
    -------
    pathlib.Path or None
        The folder in use, or None when no cache is in use.
    """
    global _ours
    import jax

    current = jax.config.jax_compilation_cache_dir
    if path is True:
        if current is not None and current != _ours:
            return Path(current)  # the user's own cache
        target = compilation_cache_dir()
    else:
        target = None if path is None or path is False else Path(path).expanduser()
    if target is not None:
        try:
            target.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            target = None  # a read-only home: run without the cache
    value = None if target is None else str(target)
    if value != current:
        from jax.experimental.compilation_cache import compilation_cache

        jax.config.update("jax_compilation_cache_dir", value)
        compilation_cache.reset_cache()
    _ours = value
    return target


def use_all_cores(n_devices: int | None = None) -> int:
    """Give JAX one CPU device per core (or ``n_devices``), so that EM shards its passes over the rows
    and NUTS runs its chains in parallel on every core.

    Call it before the first JAX computation of the process (it sets ``jax_num_cpu_devices``, which
    JAX reads when it starts); afterwards it raises ``RuntimeError``. Fits are the same whatever the
    number of devices.

    Returns
    -------
    int
        The number of CPU devices JAX will have.
    """
    import jax

    n = (os.cpu_count() or 1) if n_devices is None else n_devices
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n_devices must be an integer >= 1, got {n_devices!r}")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError as err:
        if jax.config.jax_num_cpu_devices == n:
            return n
        raise RuntimeError("use_all_cores() must be called before the first JAX computation of the process") from err
    return n
