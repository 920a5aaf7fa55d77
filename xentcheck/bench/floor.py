"""The physical floor, measured in the same run on the same machine.

A cross-entropy call cannot be faster than the larger of (a) streaming its bytes once at the
achievable memory bandwidth and (b) evaluating one exponential per logit at the machine's
cache-resident exp throughput. Both rates are measured here with several kernels (NumPy's own, and
any exp kernel an adapter offers), and the fastest of each is kept: a floor must be a lower bound,
so it takes the best the machine was seen to do.

On a device (``--device=cuda``) only the adapters' device kernels count, each synchronised: the read
buffer is sized against the device's cache, and an exp kernel computes its exps as a fused chain of
:data:`EXP_CHAIN` exps per element it loads, at sizes where launch latency is negligible, so it
measures the exp units rather than memory bandwidth or launch overhead (either would give a rate too
low, and so a floor that is no lower bound).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

#: elements per call in the exp measurement on the host: from L2-resident to L3-resident in float32
EXP_SIZES = (1 << 17, 1 << 20, 1 << 22)
#: exps per call on a device: a launch's latency (microseconds) is then a negligible part of it
DEVICE_EXP_SIZES = (1 << 26, 1 << 28, 1 << 30)
#: a device exp kernel evaluates this many chained exps per element it loads (exp(-y), fused in one kernel)
EXP_CHAIN = 64
#: the smallest read buffer on the host and on a device (bytes); each is at least 8 times the cache
HOST_BUFFER_BYTES = 256 * 1024**2
DEVICE_BUFFER_BYTES = 1024**3


class FloorError(RuntimeError):
    """No kernel could measure a rate on the device; the message says which and why."""


def _best(call: Callable[[], Any], repeats: int) -> float:
    call()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def last_level_cache_bytes() -> int:
    """The largest CPU cache (bytes), from sysfs; 32 MiB when unknown."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip().upper()
        mult = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KMG")) * mult)
        except ValueError:
            pass
    return max(sizes, default=32 * 1024**2)


def read_buffer_bytes(host: bool, cache_bytes: int | None = None) -> int:
    """The read buffer for the bandwidth measurement: at least 8 times the cache it must not fit in
    (the host's last-level cache, or the device's as its adapter reports it)."""
    if host:
        return max(HOST_BUFFER_BYTES, 8 * last_level_cache_bytes())
    return max(DEVICE_BUFFER_BYTES, 8 * (cache_bytes or 0))


def measure_bandwidth(
    threads: int,
    kernels: dict[str, Callable[[int], Callable[[], Any]]] | None = None,
    *,
    host: bool = True,
    repeats: int = 5,
    cache_bytes: int | None = None,
) -> dict:
    """Achievable read bandwidth (bytes/s): the fastest of several streaming read kernels over a
    buffer far larger than the cache. ``kernels`` are ``name -> factory(nbytes)`` from the adapters
    (on the device under test); ``host`` adds NumPy's own (for the CPU). Raises FloorError when no
    kernel could be measured."""
    nbytes = read_buffer_bytes(host, cache_bytes)
    rates, failures = {}, {}
    with ThreadPoolExecutor(threads) as pool:
        factories = dict(kernels or {})
        if host:
            a = np.ones(nbytes // 4, dtype=np.float32)
            chunks = np.array_split(a, threads)
            m, v = a.reshape(-1, 4096), np.ones(4096, dtype=np.float32)
            factories["numpy.max, one chunk per thread"] = lambda n: lambda: list(pool.map(np.max, chunks))
            factories["numpy.sum, one chunk per thread"] = lambda n: lambda: list(pool.map(np.sum, chunks))
            factories["BLAS sgemv (matrix read once)"] = lambda n: lambda: m @ v
        for name, factory in factories.items():
            try:
                rates[name] = nbytes / _best(factory(nbytes), repeats)
            except Exception as e:  # a failing kernel is only one candidate fewer
                failures[name] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
    if not rates:
        tried = "; ".join(f"{k}: {v}" for k, v in failures.items()) or "no adapter offers a read kernel there"
        raise FloorError(f"cannot measure the read bandwidth {'of the host' if host else 'on the device'} ({tried})")
    best = max(rates, key=rates.get)
    return {"bytes_per_s": rates[best], "kernel": best, "buffer_bytes": nbytes, "kernels": rates}


def numpy_exp_kernel(threads: int, pool: ThreadPoolExecutor) -> Callable[[int, str], Callable[[], Any]]:
    """NumPy's exp over one chunk per thread (NumPy ufuncs release the GIL)."""

    def factory(n: int, dtype: str) -> Callable[[], Any]:
        rng = np.random.default_rng(0)
        bufs = [rng.random(n // threads).astype(dtype) for _ in range(threads)]
        outs = [np.empty_like(b) for b in bufs]
        return lambda: list(pool.map(lambda i: np.exp(bufs[i], out=outs[i]), range(threads)))

    return factory


def measure_exp(
    threads: int,
    dtype: str,
    kernels: dict[str, Callable[[int, str], Callable[[], Any]]] | None = None,
    *,
    host: bool = True,
    repeats: int = 5,
) -> dict:
    """Exp throughput (exponentials/s) in ``dtype``: the best of NumPy (host) and the ``kernels``
    adapters offer (``name -> factory(n, dtype)`` returning a call that computes n exps), each at
    several sizes (per-call overhead favours the larger ones): cache-resident on the host,
    :data:`DEVICE_EXP_SIZES` on a device."""
    rates = {}
    with ThreadPoolExecutor(threads) as pool:
        factories = dict(kernels or {})
        if host and dtype in ("float32", "float64"):
            factories["numpy.exp, one chunk per thread"] = numpy_exp_kernel(threads, pool)
        for name, factory in factories.items():
            for n in EXP_SIZES if host else DEVICE_EXP_SIZES:
                try:
                    rate = n / _best(factory(n, dtype), repeats)
                except Exception:  # e.g. no exp in that dtype: that kernel is no candidate
                    break
                if rate > rates.get(name, (0, 0))[0]:
                    rates[name] = (rate, n)
    if not rates:
        return {"exp_per_s": None, "kernel": None, "kernels": {}}
    best = max(rates, key=lambda k: rates[k][0])
    return {
        "exp_per_s": rates[best][0],
        "kernel": f"{best} ({rates[best][1]} elements)",
        "kernels": {k: v[0] for k, v in rates.items()},
    }


def floor_seconds(nbytes: int, exps: int, bandwidth: dict, exp: dict) -> tuple[float, str]:
    """(floor time, which bound it is: ``bandwidth`` or ``exp``)."""
    t_mem = nbytes / bandwidth["bytes_per_s"]
    t_exp = exps / exp["exp_per_s"] if exp.get("exp_per_s") else 0.0
    return (t_mem, "bandwidth") if t_mem >= t_exp else (t_exp, "exp")


#: square matmul sizes (n x n times n x n) for the matmul peak: on the host from L2-resident to larger
#: than the last-level cache, on a device large enough for its tensor cores to be busy
MATMUL_SIZES = (512, 1024, 2048)
DEVICE_MATMUL_SIZES = (4096, 8192)


def measure_matmul(
    dtype: str,
    kernels: dict[str, Callable[[int, str], Callable[[], Any]]],
    *,
    host: bool = True,
    repeats: int = 3,
) -> dict:
    """Matmul throughput (FLOP/s, 2 n^3 per n x n product) in ``dtype``: the best of the framework's own
    matmul kernels (``name -> factory(n, dtype)`` returning a call that computes one n x n by n x n
    product and waits for it) over :data:`MATMUL_SIZES` (:data:`DEVICE_MATMUL_SIZES` on a device). The
    fused linear + cross-entropy floor divides its unavoidable FLOPs by it; ``flop_per_s`` is None where
    no kernel ran in that dtype."""
    rates: dict[str, tuple[float, int]] = {}
    failures: dict[str, str] = {}
    for name, factory in kernels.items():
        for n in MATMUL_SIZES if host else DEVICE_MATMUL_SIZES:
            try:
                rate = 2 * n**3 / _best(factory(n, dtype), repeats)
            except Exception as e:  # e.g. no matmul in that dtype: that kernel is no candidate
                failures[name] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
                break
            if rate > rates.get(name, (0.0, 0))[0]:
                rates[name] = (rate, n)
    if not rates:
        return {"flop_per_s": None, "kernel": None, "kernels": {}, "failures": failures}
    best = max(rates, key=lambda k: rates[k][0])
    return {
        "flop_per_s": rates[best][0],
        "kernel": f"{best} ({rates[best][1]}x{rates[best][1]})",
        "kernels": {k: v[0] for k, v in rates.items()},
        "failures": failures,
    }


def linear_floor_seconds(flops: int, matmul: dict) -> float | None:
    """The fused linear + cross-entropy time floor: its unavoidable FLOPs at the measured matmul peak
    (None where the peak could not be measured in that dtype)."""
    rate = matmul.get("flop_per_s")
    return flops / rate if rate else None
