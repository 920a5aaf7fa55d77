"""One benchmark: prepare the call outside the timed region, measure the first call (compile time
in a compiled mode), calibrate, time with pytest-benchmark round after round until the median is
known to the target precision (:mod:`.precision`), then measure peak memory and the adapter's
overhead against a hand-written native call. Returns one benchmark record."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from ..problem import Problem
from ..protocol import Binding
from ..records import BenchRecord
from . import memory, precision
from .floor import floor_seconds, linear_floor_seconds
from .sweep import BenchSpec, bytes_moved, exps_needed, linear_flops, linear_memory_floor

#: the shortest timed round: tiny calls are repeated inside a round so the timer's resolution and
#: the loop's own cost stay negligible
MIN_ROUND_S = 1e-3
MAX_SAMPLES = precision.MAX_ROUNDS
#: a configuration whose first timed round takes longer is timed in that one round
#: (``--bench-max-call``): at the quick sweep's largest size unfused eager bindings take seconds per
#: call, and six rounds of each would take the sweep past ten minutes
MAX_CALL_S = 0.5
#: an eager binding whose first call took this long is not called again to size its rounds: they are
#: one call each whatever its steady time (an eager binding's first call is its slowest)
CALIBRATE_BELOW_S = 0.05
#: alternations of adapter and native call for the overhead ratio: more for short calls, whose
#: times scatter more; a call of SLOW_CALL_S or more is alternated only OVERHEAD_ROUNDS_SLOW times
OVERHEAD_ROUNDS, OVERHEAD_ROUNDS_SLOW, SLOW_CALL_S = 9, 3, 0.05


def _time_once(call: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def base_record(spec: BenchSpec, api: str, device: str, threads: int) -> BenchRecord:
    """A benchmark's record before it is timed."""
    return BenchRecord(
        id=spec.id,
        framework=spec.framework,
        binding=spec.binding,
        api=api,
        op=spec.op,
        mode=spec.mode,
        dtype=spec.dtype,
        pass_=spec.pass_,
        batch=spec.batch,
        classes=spec.classes,
        device=device,
        threads=threads,
        hidden=spec.hidden,
    )


def plan_iterations(t_call: float) -> int:
    """Calls per round for a call taking ``t_call``: enough to fill :data:`MIN_ROUND_S`."""
    return max(1, math.ceil(MIN_ROUND_S / max(t_call, 1e-9)))


def timed_rounds(
    benchmark: Any, call: Callable[[], Any], iterations: int, *, target: float, budget_s: float, max_call_s: float
) -> tuple[str, int | None]:
    """Time ``call`` with pytest-benchmark until :class:`.precision.Stopper` says enough; returns why
    it stopped and the process's peak memory growth during the first round. pytest-benchmark has no
    stopping rule of its own, so the loop is given the most rounds and ended between two rounds (in
    ``teardown``, outside the timed region, where the memory is read too)."""
    stopper = precision.Stopper(target, budget_s, max_call_s=max_call_s)
    first_round: dict[str, int | None] = {}
    before = memory.start()

    def after_round() -> None:
        data = benchmark.stats.stats.data
        if not first_round:
            first_round["peak"] = memory.peak_since(before)
        if stopper.should_stop(data):
            raise precision.Enough

    try:
        benchmark.pedantic(
            call, rounds=precision.MAX_ROUNDS, iterations=iterations, warmup_rounds=0, teardown=after_round
        )
    except precision.Enough:
        benchmark.has_error = False  # ended on purpose: the rounds so far are the measurement
    return stopper.stopped, first_round.get("peak")


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


def peak_memory(adapter: Any, call: Callable[[], Any], host_peak: int | None, framework: str) -> tuple[int | None, str]:
    """(peak bytes of one call, how it was measured). On the CPU the process's RSS high-water mark
    (measured over the first timed round); on a device (the adapter's ``device``) the host's RSS says
    nothing, so the adapter's device allocator (``device_peak_bytes``), or nothing."""
    device = getattr(adapter, "device", "cpu")
    if device == "cpu":
        return host_peak, "process RSS"
    device_peak = getattr(adapter, "device_peak_bytes", None)
    peak = device_peak(call) if device_peak is not None else None
    if peak is None:
        return None, f"not measured: {framework}'s allocator cannot report one call's peak on {device}"
    return peak, "device allocator"


def measure(
    adapter: Any,
    binding: Binding,
    spec: BenchSpec,
    problem: Problem,
    benchmark: Any,
    *,
    floor: dict,
    budget_s: float,
    target: float,
    max_call_s: float,
    threads: int,
) -> BenchRecord:
    """Time ``binding`` on ``problem`` as ``spec`` says (on the adapter's ``device``), to ``target``
    precision within about ``budget_s`` of timed rounds (one round when a call takes more than
    ``max_call_s``, unless it is 0); the record carries stats with the median's interval, floor and memory."""
    rec = base_record(spec, binding.api, getattr(adapter, "device", "cpu"), threads)
    call = adapter.prepare(binding, problem, grad=spec.grad, mode=spec.mode)
    first = t_call = _time_once(call)  # compiles, in a compiled mode; eager frameworks may also warm caches
    if spec.mode != "eager" or first < CALIBRATE_BELOW_S:  # a first call says too little about the rest
        t_call = _time_once(call)
        if t_call < MIN_ROUND_S:  # a round of tiny calls is sized on the faster of two calibrations
            t_call = min(t_call, _time_once(call))
    iterations = plan_iterations(t_call)
    info = rec.to_json()
    benchmark.extra_info.update(
        {
            k: info[k]
            for k in (
                "framework",
                "binding",
                "api",
                "op",
                "mode",
                "dtype",
                "pass",
                "batch",
                "classes",
                "device",
                "threads",
            )
        }
    )
    stopped, host_peak = timed_rounds(
        benchmark, call, iterations, target=target, budget_s=budget_s, max_call_s=max_call_s
    )
    st = benchmark.stats.stats
    median = st.median
    rec.target, rec.reduction = problem.target_kind, problem.reduction
    rec.stats = {
        "median_s": median,
        "min_s": st.min,
        "max_s": st.max,
        "mean_s": st.mean,
        "stddev_s": st.stddev,
        "q1_s": st.q1,
        "q3_s": st.q3,
        "iqr_s": st.iqr,
        "rounds": st.rounds,
        "iterations": iterations,
        **precision.summary(st.data, target, stopped),
    }
    rec.samples = list(st.data[:MAX_SAMPLES])
    rec.first_call_s = first
    rec.compile_s = max(0.0, first - median) if spec.mode == "compiled" else None
    if spec.hidden is not None:  # fused linear + cross-entropy: its own time and memory floors
        linear_record(rec, adapter, call, spec, median, floor["matmul"], host_peak)
        return rec
    nbytes = bytes_moved(spec.batch, spec.classes, spec.dtype, spec.grad)
    exp = floor["exp"].get(spec.dtype) or floor["exp"].get("float32")
    floor_s, bound = floor_seconds(nbytes, exps_needed(spec.batch, spec.classes), floor["bandwidth"], exp)
    rec.bytes, rec.gbps = nbytes, nbytes / median / 1e9
    rec.floor_s, rec.floor_bound, rec.floor_multiple = floor_s, bound, median / floor_s
    rec.peak_bytes, rec.peak_kind = peak_memory(adapter, call, host_peak, spec.framework)
    bare = getattr(adapter, "bare", None)
    native = bare(binding.name, problem, grad=spec.grad) if bare and spec.mode == "eager" else None
    if native is not None and stopped != "max-call":
        native()
        alternations = OVERHEAD_ROUNDS if median < SLOW_CALL_S else OVERHEAD_ROUNDS_SLOW
        rec.overhead = interleaved_ratio(call, native, alternations, iterations)
    return rec


#: how a linear_ce call's peak memory is measured, by method (the report states it)
LINEAR_MEMORY_METHODS = {
    "device allocator": "the device allocator's peak over one call minus what it held before "
    "(torch.cuda.max_memory_allocated after reset_peak_memory_stats): exact for the tensors the framework allocates",
    "host allocator": "the framework's CPU allocator over one extra, untimed call (torch.profiler memory "
    "events, profile_memory=True: the running sum of allocations and frees, its maximum): exact for the tensors "
    "torch allocates; misses memory outside its allocator (oneDNN/MKL scratch, NumPy buffers of Triton's interpreter)",
    "process RSS": "the process's resident-set growth during the first timed round (VmHWM reset just before): "
    "page-granular; blocks the C allocator kept from an earlier call are reused unseen, so a lower bound",
}


def linear_peaks(
    adapter: Any, call: Callable[[], Any], host_peak: int | None, framework: str
) -> tuple[int | None, str, int | None]:
    """(transient peak bytes of one linear_ce call above its inputs, the method, the process's RSS growth
    during the first timed round on the CPU or None). On a device the allocator's peak; on the CPU the
    framework's host allocator where its adapter offers one (``host_allocator_peak_bytes``), else the RSS."""
    if getattr(adapter, "device", "cpu") != "cpu":
        peak, kind = peak_memory(adapter, call, host_peak, framework)
        return peak, kind, None
    offer = getattr(adapter, "host_allocator_peak_bytes", None)
    peak = offer(call) if offer is not None else None
    if peak is None:
        return host_peak, "process RSS", host_peak
    return peak, "host allocator", host_peak


def linear_fields(spec: BenchSpec, median: float, matmul: dict, peak: int | None, method: str, rss: int | None) -> dict:
    """A linear_ce record's ``linear`` object: the FLOP floor at the measured matmul rate, the memory
    floor, and the peak against it (``peak`` is the transient above the inputs, which are counted in)."""
    n, d, v = spec.batch, spec.hidden, spec.classes
    mem = linear_memory_floor(n, d, v, spec.dtype, spec.grad)
    flops = linear_flops(n, d, v, spec.grad)
    floor_s = linear_floor_seconds(flops, matmul)

    def total(transient: int | None) -> int | None:
        return None if transient is None else mem["inputs"] + transient

    return {
        "hidden": d,
        "flops": flops,
        "matmul_flop_per_s": matmul.get("flop_per_s"),
        "matmul_kernel": matmul.get("kernel"),
        "floor_s": floor_s,
        "floor_multiple": median / floor_s if floor_s else None,
        "inputs_bytes": mem["inputs"],
        "gradients_bytes": mem["gradients"],
        "memory_floor_bytes": mem["floor"],
        "logits_bytes": mem["logits"],
        "peak_bytes": total(peak),
        "peak_over_floor": None if peak is None else total(peak) / mem["floor"],
        "peak_method": method,
        "peak_method_text": LINEAR_MEMORY_METHODS.get(method, method),
        "rss_peak_bytes": total(rss),
        "rss_over_floor": None if rss is None else total(rss) / mem["floor"],
    }


def linear_record(
    rec: BenchRecord,
    adapter: Any,
    call: Callable[[], Any],
    spec: BenchSpec,
    median: float,
    matmul: dict,
    host_peak: int | None,
) -> None:
    """Fill a linear_ce record's floor and memory fields (time floor: 2 N D V FLOPs per matmul at the
    matmul rate measured in the run, ``floor_bound`` ``matmul``)."""
    peak, method, rss = linear_peaks(adapter, call, host_peak, spec.framework)
    rec.linear = linear_fields(spec, median, matmul, peak, method, rss)
    rec.floor_s, rec.floor_multiple = rec.linear["floor_s"], rec.linear["floor_multiple"]
    rec.floor_bound = "matmul" if rec.floor_s is not None else None
    rec.peak_bytes, rec.peak_kind = peak, method
