"""JAX's settings for the run, shared by the jax adapter and the keras[jax] worker.

float64 needs ``jax_enable_x64`` (inputs carry explicit dtypes, so float32 cases stay float32). Eager
JAX compiles every primitive once per shape and dtype, which dominates its checks: a persistent
compilation cache (keyed by the program, compile options and jax/XLA versions, so it never serves a
stale executable) makes repeated runs about twice as fast. ``XENTCHECK_JAX_CACHE=off`` disables it.
"""

from __future__ import annotations

import os
from pathlib import Path


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
