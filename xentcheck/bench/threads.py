"""Equal thread settings for every framework, applied before any framework is imported.

The count is enforced three ways, because frameworks read it differently: the process's CPU
affinity (XLA and oneDNN size their pools from it), the usual environment variables (OpenMP, BLAS,
TensorFlow's intra-op pool) and, for BLAS libraries NumPy already loaded, threadpoolctl. Adapters
then set their own runtime knob (``torch.set_num_threads``) through ``Adapter.set_threads``.
"""

from __future__ import annotations

import os

_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def available() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def apply(n: int, pin: bool = True) -> dict:
    """Restrict the process to ``n`` threads (with ``pin``, on the first ``n`` CPUs too); returns the
    facts recorded in the results."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    mine = cpus[:n] if cpus else []
    if pin and cpus and n < len(cpus):
        os.sched_setaffinity(0, mine)
    for var in _VARS:
        os.environ[var] = str(n)
    try:  # BLAS pools NumPy already started
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        threadpool_limits(n)
    return {"threads": n, "cpus": mine or None, "env": {v: str(n) for v in _VARS}}
