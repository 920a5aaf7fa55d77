"""The fused linear + cross-entropy part of the benchmark sweep, without a framework and without a
clock threshold: the size options, the seeded input, the floor arithmetic (FLOPs at the measured matmul
rate; inputs plus gradients), the memory plumbing (which measurement a record gets, the process's peak
kept across high-water-mark resets, descendants' memory), the records' and the report's fields, and
the sweep end to end on a fake adapter on a virtual clock."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from reports.html import expand
from reports.speed import speed_view
from xentcheck import environment
from xentcheck.bench import floor, memory, runner, sweep
from xentcheck.bench.sweep import BenchSpec
from xentcheck.records import BenchRecord, BenchSection
from xentcheck.results import load

from .runs import pytest_run


# -- sizes -----------------------------------------------------------------------------------------
def test_linear_sizes_follow_a_named_sweep_or_are_given():
    assert sweep.parse_linear_sizes("auto", "quick") == sweep.LINEAR_SWEEPS["quick"]
    assert sweep.parse_linear_sizes("auto", "32x10,64x100") == ()  # an explicit logits list: none
    assert sweep.parse_linear_sizes("full") == ((4096, 1024, 32000), (1024, 1024, 128256))  # issue 28's CPU sizes
    assert (8192, 4096, 256000) in sweep.parse_linear_sizes("llm")
    assert sweep.parse_linear_sizes("none") == ()
    assert sweep.parse_linear_sizes("8x4x100, 2X3X5") == ((8, 4, 100), (2, 3, 5))


@pytest.mark.parametrize("bad", ["", "8x100", "8x4x1", "0x4x100", "8x4x100,", "huge"])
def test_bad_linear_sizes_get_one_line_naming_the_fix(bad):
    with pytest.raises(sweep.SweepError, match=r"^--bench-linear-sizes: .* is not NxDxV \(e\.g\. 1024x256x32000"):
        sweep.parse_linear_sizes(bad)


def test_linear_spec_ids_carry_the_hidden_size():
    spec = BenchSpec("torch", "F.linear_cross_entropy", "linear_ce", 256, 32000, "float32", "eager", "forward", 128)
    assert spec.size == "256x128x32000" and spec.id == "torch-F.linear_cross_entropy-256x128x32000-float32-eager-fwd"
    assert BenchSpec("torch", "F.cross_entropy", "softmax_ce", 32, 10, "float32", "eager", "forward").size == "32x10"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_linear_input_is_seeded_and_shaped(dtype):
    p = sweep.linear_problem(16, 8, 50, dtype)
    assert p.op == "linear_ce" and p.x.shape == (16, 8) and p.weight_matrix.shape == (50, 8)
    assert p.num_classes == 50 and p.target.shape == (16,) and 0 <= p.target.min() and p.target.max() < 50
    assert p.x.dtype == np.float32 and p.weight_matrix.dtype == np.float32  # what torch takes without a copy
    np.testing.assert_array_equal(p.weight_matrix, sweep.linear_problem(16, 8, 50, dtype).weight_matrix)
    if dtype == "bfloat16":  # the values are the dtype's: rounding again changes nothing
        from xentcheck.problem import round_to

        np.testing.assert_array_equal(round_to(p.x, dtype), p.x)


# -- the floor arithmetic --------------------------------------------------------------------------
def test_flop_floor_is_three_matmuls_with_the_backward_one_without():
    assert sweep.linear_flops(4096, 1024, 32000, grad=True) == 6 * 4096 * 1024 * 32000
    assert sweep.linear_flops(4096, 1024, 32000, grad=False) == 2 * 4096 * 1024 * 32000
    assert floor.linear_floor_seconds(600, {"flop_per_s": 100.0}) == 6.0
    assert floor.linear_floor_seconds(600, {"flop_per_s": None}) is None


def test_memory_floor_is_inputs_plus_gradients_without_the_logits():
    n, d, v = 8192, 4096, 128256
    bf16 = sweep.linear_memory_floor(n, d, v, "bfloat16", grad=True)
    assert bf16["inputs"] == (n * d + v * d) * 2 + n * 8  # X, W in bfloat16, int64 targets
    assert bf16["gradients"] == (n * d + v * d) * 2  # dX, dW
    assert bf16["floor"] == bf16["inputs"] + bf16["gradients"]
    assert bf16["logits"] == n * v * 2
    fwd = sweep.linear_memory_floor(n, d, v, "float32", grad=False)
    assert fwd["gradients"] == 0 and fwd["floor"] == fwd["inputs"] == (n * d + v * d) * 4 + n * 8


def test_matmul_rate_is_the_best_kernel_and_names_it():
    def kernel(scale):
        def factory(n, dtype):
            a = np.ones((n, n), dtype=dtype)
            return lambda: [a @ a for _ in range(scale)]

        return factory

    def broken(n, dtype):
        raise TypeError(f"no matmul in {dtype}")

    m = floor.measure_matmul("float32", {"once": kernel(1), "thrice": kernel(3), "broken": broken}, repeats=1)
    assert m["kernel"].startswith("once (") and m["flop_per_s"] == max(m["kernels"].values())
    assert set(m["kernels"]) == {"once", "thrice"} and m["failures"]["broken"] == "TypeError: no matmul in float32"
    assert floor.measure_matmul("float32", {"broken": broken})["flop_per_s"] is None


def test_linear_fields_state_both_floors_and_the_peak_against_them():
    spec = BenchSpec("torch", "b", "linear_ce", 100, 1000, "float32", "eager", "forward+backward", 10)
    mem = sweep.linear_memory_floor(100, 10, 1000, "float32", grad=True)
    f = runner.linear_fields(spec, 3.0, {"flop_per_s": 2e6, "kernel": "mm"}, 1000, "host allocator", 0)
    assert f["flops"] == 6 * 100 * 10 * 1000 and f["floor_s"] == 6 * 100 * 10 * 1000 / 2e6
    assert f["floor_multiple"] == pytest.approx(3.0 / f["floor_s"])
    assert f["memory_floor_bytes"] == mem["floor"] and f["logits_bytes"] == 100 * 1000 * 4
    assert f["peak_bytes"] == mem["inputs"] + 1000  # the inputs count: the transient is measured above them
    assert f["peak_over_floor"] == pytest.approx((mem["inputs"] + 1000) / mem["floor"])
    assert f["rss_peak_bytes"] == mem["inputs"] and f["peak_method_text"].startswith("the framework's CPU allocator")
    unmeasured = runner.linear_fields(spec, 3.0, {"flop_per_s": None}, None, "process RSS", None)
    assert unmeasured["floor_multiple"] is None and unmeasured["peak_over_floor"] is None


# -- the memory plumbing ---------------------------------------------------------------------------
class _Cpu:
    device = "cpu"


class _CpuAllocator(_Cpu):
    def host_allocator_peak_bytes(self, call):
        call()
        return 123


class _Cuda:
    device = "cuda"

    def device_peak_bytes(self, call):
        return 456


def test_each_device_gets_its_own_peak_measurement():
    calls = []
    assert runner.linear_peaks(_CpuAllocator(), lambda: calls.append(1), 7, "torch") == (123, "host allocator", 7)
    assert calls == [1]  # one extra, untimed call
    assert runner.linear_peaks(_Cpu(), lambda: None, 7, "torch") == (7, "process RSS", 7)
    assert runner.linear_peaks(_Cuda(), lambda: None, 7, "torch") == (456, "device allocator", None)
    assert set(runner.LINEAR_MEMORY_METHODS) == {"device allocator", "host allocator", "process RSS"}


@pytest.mark.skipif(not memory.process_peak_available(), reason="needs Linux's /proc/self/clear_refs")
def test_process_peak_survives_the_resets_before_each_round():
    base = memory.start()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    del block
    memory.start()  # resets VmHWM (and getrusage's ru_maxrss) to the current resident set
    assert memory.process_peak_bytes() >= base + 60 * 2**20
    assert environment.peak_rss_bytes() >= memory.process_peak_bytes()  # the harness's figure keeps it too


def test_descendants_memory_sums_the_process_tree(tmp_path):
    proc = tmp_path / "proc"
    for pid, ppid, kb in ((10, 1, 100), (11, 10, 200), (12, 11, 300), (13, 1, 999)):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "status").write_text(f"Name:\tx\nPPid:\t{ppid}\nVmRSS:\t{kb} kB\n")
    (proc / "self").mkdir()
    assert memory.descendants_rss_bytes(10, proc) == (200 + 300) * 1024  # not itself, not a sibling
    assert memory.descendants_rss_bytes(13, proc) == 0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_descendants_memory_sees_a_real_child():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for _ in range(100):  # until the child's interpreter is resident
            if memory.descendants_rss_bytes(os.getpid()) > 0:
                break
            time.sleep(0.05)
        assert memory.descendants_rss_bytes(os.getpid()) > 0
    finally:
        child.kill()
        child.wait()


# -- records and the report ------------------------------------------------------------------------
def _linear_record(binding="F.linear_cross_entropy", pass_="forward+backward") -> BenchRecord:
    spec = BenchSpec("torch", binding, "linear_ce", 64, 1000, "float32", "eager", pass_, 16)
    rec = runner.base_record(spec, "api", "cpu", 2)
    rec.target, rec.reduction = "index", "mean"
    rec.stats = {"median_s": 0.5, "min_s": 0.5, "max_s": 0.5, "iqr_s": 0.0, "rounds": 1, "iterations": 1}
    rec.stats.update(stopped="max-call")
    rec.samples, rec.first_call_s = [0.5], 0.6
    runner.linear_record(rec, _CpuAllocator(), lambda: None, spec, 0.5, {"flop_per_s": 1e9, "kernel": "mm"}, 0)
    return rec


def test_linear_record_round_trips_and_uses_the_matmul_floor():
    rec = _linear_record()
    assert rec.hidden == 16 and rec.floor_bound == "matmul" and rec.peak_kind == "host allocator"
    assert rec.floor_multiple == pytest.approx(0.5 / (6 * 64 * 16 * 1000 / 1e9)) and rec.bytes is None
    back = BenchRecord.from_json(rec.to_json())
    assert back == rec and rec.to_json()["linear"]["peak_method"] == "host allocator"
    plain = runner.base_record(BenchSpec("t", "b", "softmax_ce", 32, 10, "float32", "eager", "forward"), "a", "cpu", 1)
    assert "hidden" not in plain.to_json() and "linear" not in plain.to_json()  # older readers see nothing new


def test_speed_view_puts_linear_records_in_a_table_of_their_own():
    class Doc:
        benchmarks = BenchSection(
            threads={"threads": 2},
            sizes=[],
            modes=["eager"],
            passes=["forward+backward"],
            dtypes=["float32"],
            budget_s=0.5,
            floor=None,
            records=[_linear_record(), _linear_record("F.linear+F.cross_entropy")],
            linear_sizes=[[64, 16, 1000]],
            matmul={"torch": {"float32": {"flop_per_s": 1e9, "kernel": "mm"}}},
            memory={"sweep_peak_bytes": 2**30, "process_peak_bytes": 2**30, "descendants_peak_bytes": 0, "method": "m"},
        )

    view = speed_view([Doc()])
    assert view["sizes"] == [] and view["rows"] == []  # not in the logits-size table
    assert [r["binding"] for r in view["linear"]] == ["F.linear+F.cross_entropy", "F.linear_cross_entropy"]
    row = view["linear"][0]
    assert row["size"] == "64x16x1000" and row["peak_method"] == "host allocator"
    assert row["peak_over_floor"] == pytest.approx(row["peak_bytes"] / row["memory_floor_bytes"])
    assert set(view["linear_methods"]) == {"host allocator"}


# -- end to end, on a fake adapter on a virtual clock ---------------------------------------------
@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench-linear")
    res = tmp / "r.json"
    r = pytest_run(
        "suites/test_benchmarks.py",
        "--frameworks=",
        "--adapter=tests.fake_adapter:TIMED_LINEAR",
        "--bench",
        "--benchmark-only",
        "--bench-sizes=32x10",
        "--bench-linear-sizes=16x8x100,8x4x300",
        "--bench-modes=eager",
        "--bench-time=0.05",
        f"--results={res}",
        f"--report={tmp / 'r.html'}",
        "--benchmark-timer=tests.fake_adapter.virtual_time",
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return load(res).to_json(), expand((tmp / "r.html").read_text())  # load validates against the schema


def test_linear_bindings_join_the_sweep_with_both_floors(linear_run):
    doc, _ = linear_run
    bench = doc["benchmarks"]
    linear = [r for r in bench["records"] if r["op"] == "linear_ce"]
    assert sorted((r["batch"], r["hidden"], r["classes"], r["pass"]) for r in linear) == sorted(
        (n, d, v, p) for n, d, v in ((16, 8, 100), (8, 4, 300)) for p in ("forward", "forward+backward")
    )
    assert bench["linear_sizes"] == [[16, 8, 100], [8, 4, 300]]
    rate = bench["matmul"]["timed"]["float32"]["flop_per_s"]
    assert rate > 0 and bench["matmul"]["timed"]["float32"]["kernel"].startswith("numpy.matmul")
    for r in linear:
        lin, n, d, v = r["linear"], r["batch"], r["hidden"], r["classes"]
        grad = r["pass"] == "forward+backward"
        assert r["outcome"] == "ok" and r["floor_bound"] == "matmul"
        assert lin["flops"] == (6 if grad else 2) * n * d * v and lin["floor_s"] == pytest.approx(lin["flops"] / rate)
        assert r["floor_multiple"] == pytest.approx(r["stats"]["median_s"] / lin["floor_s"])
        mem = sweep.linear_memory_floor(n, d, v, "float32", grad)
        assert lin["memory_floor_bytes"] == mem["floor"] and lin["peak_method"] == "host allocator"
        assert lin["peak_bytes"] == mem["inputs"] + 3 * n * v * 4  # the fake's modelled allocator peak
    assert bench["memory"]["sweep_peak_bytes"] >= bench["memory"]["process_peak_bytes"] > 0
    assert "VmHWM" in bench["memory"]["method"]


def test_report_states_the_linear_floors_and_the_sweeps_peak(linear_run):
    _, html = linear_run
    assert 'id="speed-linear"' in html and "16x8x100" in html and "peak / floor" in html
    assert "Matmul rate measured in the same run" in html and "The sweep's peak memory" in html
