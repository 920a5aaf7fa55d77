"""JAX's settings for the run, shared by the jax adapter and the keras[jax] worker.

float64 needs ``jax_enable_x64`` (inputs carry explicit dtypes, so float32 cases stay float32). Eager
JAX compiles every primitive once per shape and dtype, which dominates its checks: a persistent
compilation cache (keyed by the program, compile options and jax/XLA versions, so it never serves a
stale executable) makes repeated runs about twice as fast. ``XENTCHECK_JAX_CACHE=off`` disables it.

Before the cache can be asked, JAX lowers the function to an MLIR module, and for every lowering it
builds a new MLIR context, loading every dialect: about 5 ms, 80% of the lowering and most of an eager
JAX check warm (docs/performance.md, stop 35). :func:`share_mlir_context` hands JAX one context per
thread instead, renewed every ``RENEW_EVERY`` lowerings so that what a context interns cannot grow
without bound (what llvm/llvm-project#217320's resettable contexts are for). The modules JAX builds
and compiles are the same: the same number of lowerings and compilations, every one served by the same
cache entries, and the same records, value for value (``tests/test_jax_config.py`` compares the
lowered text). ``XENTCHECK_JAX_SHARED_CONTEXT=off`` gives every lowering its own context again.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

#: lowerings served by one shared context before a fresh one replaces it
RENEW_EVERY = 1000


def configure(x64: bool = True) -> None:
    """Apply the settings (before the first computation); ``x64``: enable float64."""
    import jax

    jax.config.update("jax_enable_x64", x64)
    # Eager dispatch lowers each primitive per shape, and by default writes up to 100 frames of the
    # Python stack (pytest's, deep) into every operation's location: debug information only, which no
    # check reads and the compilation cache's key leaves out. Without it JAX's checks take ~8% less.
    jax.config.update("jax_include_full_tracebacks_in_locations", False)
    cache = os.environ.get(
        "XENTCHECK_JAX_CACHE", str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xentcheck" / "jax")
    )
    if cache != "off":
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    if os.environ.get("XENTCHECK_JAX_SHARED_CONTEXT") != "off":
        share_mlir_context()


def share_mlir_context(renew_every: int = RENEW_EVERY) -> bool:
    """Make JAX lower into one MLIR context per thread, a fresh one every ``renew_every`` lowerings.
    Returns whether it applies: False where this JAX has no ``make_ir_context`` to wrap (a JAX whose
    internals moved runs as it comes)."""
    from jax._src.interpreters import mlir

    fresh = getattr(mlir, "make_ir_context", None)
    if fresh is None:
        return False
    if getattr(fresh, "xentcheck_shared", False):
        return True
    local = threading.local()

    def shared_context():
        uses = getattr(local, "uses", renew_every)
        if uses >= renew_every:
            local.context, uses = fresh(), 0
        local.uses = uses + 1
        return local.context

    shared_context.xentcheck_shared = True
    shared_context.__wrapped__ = fresh
    mlir.make_ir_context = shared_context
    return True


def mlir_context() -> str:
    """How this process's JAX lowers, for the results' environment."""
    from jax._src.interpreters import mlir

    if getattr(getattr(mlir, "make_ir_context", None), "xentcheck_shared", False):
        return (
            f"one MLIR context per thread, renewed every {RENEW_EVERY} lowerings "
            f"(XENTCHECK_JAX_SHARED_CONTEXT=off: one per lowering)"
        )
    return "one MLIR context per lowering (JAX's own)"


def host_array(a, dtype) -> np.ndarray:
    """``a`` as a NumPy array of ``dtype`` as JAX holds it (int64 and float64 are 32-bit without x64),
    cast on the host: handed to ``jax.device_put`` it is put on the device as it is, where
    ``jnp.asarray(a, dtype)`` would compile a convert_element_type for its shape."""
    import jax

    return np.asarray(a).astype(jax.dtypes.canonicalize_dtype(dtype))


def ones_like(y) -> np.ndarray:
    """Ones of ``y``'s shape and dtype on the host (a cotangent): ``jnp.ones_like`` compiles a broadcast
    for every shape."""
    return np.ones(np.shape(y), dtype=y.dtype)
