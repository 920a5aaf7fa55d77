"""One benchmark: prepare the call outside the timed region, measure the first call (compile time
in a compiled mode), calibrate, time with pytest-benchmark, then measure peak memory and the
adapter's overhead against a hand-written native call. Returns one benchmark record."""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from ..problem import Problem
from ..protocol import Binding
from ..records import BenchRecord
from . import memory
from .floor import floor_seconds
from .sweep import BenchSpec, bytes_moved, exps_needed

#: the shortest timed round: tiny calls are repeated inside a round so the timer's resolution and
#: the loop's own cost stay negligible
MIN_ROUND_S = 1e-3
MIN_ROUNDS, MAX_ROUNDS = 5, 200
MAX_SAMPLES = 200
#: alternations of adapter and native call for the overhead ratio (at least)
OVERHEAD_ROUNDS = 9


def _time_once(call: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def base_record(spec: BenchSpec, api: str, device: str, threads: int) -> BenchRecord:
    """A benchmark's record before it is timed."""
    return BenchRecord(id=spec.id, framework=spec.framework, binding=spec.binding, api=api, op=spec.op,
                       mode=spec.mode, dtype=spec.dtype, pass_=spec.pass_, batch=spec.batch, classes=spec.classes,
                       device=device, threads=threads)


def plan_rounds(t_call: float, budget_s: float) -> tuple[int, int]:
    """(rounds, iterations per round) for a call taking ``t_call`` within about ``budget_s``."""
    iterations = max(1, math.ceil(MIN_ROUND_S / max(t_call, 1e-9)))
    rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, round(budget_s / max(t_call * iterations, 1e-9)))))
    return rounds, iterations


def interleaved_ratio(a: Callable[[], Any], b: Callable[[], Any], rounds: int, iterations: int) -> dict:
    """Median time of ``a`` over median time of ``b``, timed alternately so drift hits both alike."""
    ta, tb = [], []
    for _ in range(rounds):
        for call, sink in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            for _ in range(iterations):
                call()
            sink.append((time.perf_counter() - t0) / iterations)
    ma, mb = statistics.median(ta), statistics.median(tb)
    return {"adapter_median_s": ma, "bare_median_s": mb, "ratio": ma / mb, "rounds": rounds}


def peak_memory(adapter: Any, call: Callable[[], Any], device: str, host_peak: int | None,
                framework: str) -> tuple[int | None, str]:
    """(peak bytes of one call, how it was measured). On the CPU the process's RSS high-water mark
    (measured on the calibration call); on a device the host's RSS says nothing, so the adapter's
    device allocator (``device_peak_bytes``), or nothing."""
    if device == "cpu":
        return host_peak, "process RSS"
    device_peak = getattr(adapter, "device_peak_bytes", None)
    peak = device_peak(call, device) if device_peak is not None else None
    if peak is None:
        return None, f"not measured: {framework}'s allocator cannot report one call's peak on {device}"
    return peak, "device allocator"


def measure(adapter: Any, binding: Binding, spec: BenchSpec, problem: Problem, benchmark: Any, *, floor: dict,
            budget_s: float, device: str, threads: int) -> BenchRecord:
    """Time ``binding`` on ``problem`` as ``spec`` says; the record carries stats, floor and memory."""
    rec = base_record(spec, binding.api, device, threads)
    call = adapter.prepare(binding, problem, grad=spec.grad, mode=spec.mode, device=device)
    first = _time_once(call)  # compiles, in a compiled mode; eager frameworks may also warm caches
    # the calibration call also gives the process's peak memory, saving a call at large sizes
    times: list[float] = []
    host_peak = memory.process_peak(lambda: times.append(_time_once(call)))
    t_call = times[0]
    if t_call < budget_s:  # a slow call is timed 5 times anyway: calibrating it further only costs time
        t_call = min(t_call, _time_once(call))
    rounds, iterations = plan_rounds(t_call, budget_s)
    info = rec.to_json()
    benchmark.extra_info.update({k: info[k] for k in ("framework", "binding", "api", "op", "mode", "dtype", "pass",
                                                      "batch", "classes", "device", "threads")})
    benchmark.pedantic(call, rounds=rounds, iterations=iterations, warmup_rounds=0)
    st = benchmark.stats.stats
    median = st.median
    nbytes = bytes_moved(spec.batch, spec.classes, spec.dtype, spec.grad)
    exp = floor["exp"].get(spec.dtype) or floor["exp"].get("float32")
    floor_s, bound = floor_seconds(nbytes, exps_needed(spec.batch, spec.classes), floor["bandwidth"], exp)
    rec.target, rec.reduction = problem.target_kind, problem.reduction
    rec.stats = {"median_s": median, "min_s": st.min, "max_s": st.max, "mean_s": st.mean, "stddev_s": st.stddev,
                 "q1_s": st.q1, "q3_s": st.q3, "iqr_s": st.iqr, "rounds": st.rounds, "iterations": iterations}
    rec.samples = list(st.data[:MAX_SAMPLES])
    rec.first_call_s = first
    rec.compile_s = max(0.0, first - median) if spec.mode == "compiled" else None
    rec.bytes, rec.gbps = nbytes, nbytes / median / 1e9
    rec.floor_s, rec.floor_bound, rec.floor_multiple = floor_s, bound, median / floor_s
    rec.peak_bytes, rec.peak_kind = peak_memory(adapter, call, device, host_peak, spec.framework)
    bare = getattr(adapter, "bare", None)
    native = bare(binding.name, problem, grad=spec.grad, device=device) if bare and spec.mode == "eager" else None
    if native is not None:
        native()
        rec.overhead = interleaved_ratio(call, native, max(OVERHEAD_ROUNDS, min(rounds, 30)), iterations)
    return rec
