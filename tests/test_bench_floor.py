"""The physical floor's logic on a device, framework-free and on a virtual clock (no wall-clock
figures are asserted): only the adapters' device kernels count there, the exp units are measured at
device sizes, the read buffer is sized against the device's cache, and no kernel is a clear error."""

import pytest

from xentcheck.bench import floor, runner
from xentcheck.bench.plan import BenchPlan


@pytest.fixture
def clock(monkeypatch):
    """A virtual perf_counter: a kernel advances it by its own modelled duration."""
    now = [0.0]
    monkeypatch.setattr(floor.time, "perf_counter", lambda: now[0])
    return now


def exp_kernel(clock, rate: float, seen: list):
    """A factory whose call computes n exps at ``rate`` per second of virtual time, plus 5 us of launch."""

    def factory(n, dtype):
        seen.append((n, dtype))

        def call():
            clock[0] += 5e-6 + n / rate

        return call

    return factory


def read_kernel(clock, bytes_per_s: float, seen: list):
    def factory(nbytes):
        seen.append(nbytes)

        def call():
            clock[0] += nbytes / bytes_per_s

        return call

    return factory


def test_device_exp_is_measured_at_device_sizes_with_the_adapters_kernels_only(clock):
    seen_a, seen_b = [], []
    kernels = {"chain": exp_kernel(clock, 4e12, seen_a), "plain": exp_kernel(clock, 5e11, seen_b)}
    out = floor.measure_exp(1, "float32", kernels, host=False, repeats=2)
    assert [n for n, _ in seen_a] == list(floor.DEVICE_EXP_SIZES)  # no cache-sized (launch-bound) calls
    assert set(out["kernels"]) == {"chain", "plain"}  # NumPy's host kernel is no candidate on a device
    n = floor.DEVICE_EXP_SIZES[-1]
    assert out["exp_per_s"] == pytest.approx(n / (5e-6 + n / 4e12))  # the fastest kernel at its best size
    assert out["kernel"].startswith("chain")


def test_the_host_measures_cache_resident_sizes(clock):
    seen = []
    floor.measure_exp(1, "float32", {"k": exp_kernel(clock, 1e9, seen)}, host=True, repeats=1)
    assert [n for n, _ in seen] == list(floor.EXP_SIZES)


def test_device_bandwidth_reads_a_buffer_far_larger_than_the_device_cache(clock):
    seen = []
    cache = 512 * 1024**2  # a device whose cache exceeds the default buffer's eighth
    out = floor.measure_bandwidth(1, {"sum": read_kernel(clock, 4e12, seen)}, host=False, repeats=2, cache_bytes=cache)
    assert seen == [8 * cache] and out["buffer_bytes"] == 8 * cache
    assert out["bytes_per_s"] == pytest.approx(4e12) and set(out["kernels"]) == {"sum"}
    assert floor.read_buffer_bytes(False, None) == floor.DEVICE_BUFFER_BYTES


def test_no_device_kernel_is_a_one_line_error_naming_why(clock):
    with pytest.raises(floor.FloorError, match="on the device .no adapter offers a read kernel there"):
        floor.measure_bandwidth(1, {}, host=False)

    def broken(nbytes):
        raise RuntimeError("CUDA out of memory\nmore detail")

    with pytest.raises(floor.FloorError) as e:
        floor.measure_bandwidth(1, {"sum": broken}, host=False)
    assert "sum: RuntimeError: CUDA out of memory" in str(e.value) and "\n" not in str(e.value)


class DeviceAdapter:
    """Offers kernels and a cache size on "cuda" only (as the torch and JAX adapters do)."""

    device = "cuda"

    def __init__(self, clock, cache):
        self.clock, self.cache, self.reads, self.exps = clock, cache, [], []

    def read_kernels(self):
        return {} if self.device == "cpu" else {"dev.sum": read_kernel(self.clock, 3e12, self.reads)}

    def exp_kernels(self):
        return {} if self.device == "cpu" else {"dev.chain": exp_kernel(self.clock, 2e12, self.exps)}

    def device_cache_bytes(self):
        return None if self.device == "cpu" else self.cache


def test_the_plan_measures_the_floor_on_the_device_and_records_its_cache(clock):
    plan = BenchPlan.__new__(BenchPlan)  # the floor needs no options: skip thread set-up
    plan.floor, plan.threads, plan.dtypes, plan.device = None, 1, ("float32", "bfloat16"), "cuda"
    adapter = DeviceAdapter(clock, cache=60 * 1024**2)
    f = plan.measure_floor({"dev": adapter})
    assert f["device"] == "cuda" and f["last_level_cache_bytes"] == 60 * 1024**2
    assert f["bandwidth"]["kernel"] == "dev.sum" and adapter.reads == [floor.DEVICE_BUFFER_BYTES]
    assert set(f["exp"]) == {"float32", "bfloat16"} and {d for _, d in adapter.exps} == {"float32", "bfloat16"}
    assert plan.measure_floor({"dev": adapter}) is f  # once per run


def test_device_memory_comes_from_the_device_allocator_never_from_the_host():
    class WithAllocator:
        device = "cuda"

        def device_peak_bytes(self, call):
            call()
            return 4096

    class WithoutReset:
        device = "cuda"

        def device_peak_bytes(self, call):
            return None

    class Plain:
        def __init__(self, device):
            self.device = device

    calls = []
    assert runner.peak_memory(WithAllocator(), lambda: calls.append(1), 123, "t") == (4096, "device allocator")
    assert calls == [1]
    peak, kind = runner.peak_memory(WithoutReset(), lambda: None, 123, "jax")
    assert peak is None and kind.startswith("not measured") and "jax" in kind  # not the host's 123 bytes
    assert runner.peak_memory(Plain("cuda"), lambda: None, 123, "x")[0] is None
    assert runner.peak_memory(object(), lambda: None, 123, "x") == (123, "process RSS")  # no device: the CPU
