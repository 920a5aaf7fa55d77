"""``./run bench`` times each framework in a process of its own and merges the parts: the merged floor
is the best any part measured and every floor multiple is computed against it; the sweep's peak memory
is the largest part's. Here on hand-made documents and, end to end, on the fake adapter's virtual clock."""

import json
import subprocess
import sys

import pytest

from xentcheck.bench import merge, sweep
from xentcheck.bench.sweep import BenchSpec
from xentcheck.records import BenchSection, Results
from xentcheck.results import dumps, load, validate

from .runs import ROOT


def _floor(bw: float, exp: float) -> dict:
    return {
        "device": "cpu",
        "bandwidth": {"bytes_per_s": bw, "kernel": f"bw{bw}", "buffer_bytes": 1, "kernels": {}},
        "exp": {"float32": {"exp_per_s": exp, "kernel": f"exp{exp}", "kernels": {}}},
        "last_level_cache_bytes": 1,
        "process_peak_memory": True,
    }


def _record(fw: str, median: float, hidden: int | None = None):
    from xentcheck.bench import runner

    spec = BenchSpec(fw, "b", "linear_ce" if hidden else "softmax_ce", 100, 1000, "float32", "eager", "forward", hidden)
    rec = runner.base_record(spec, "api", "cpu", 2)
    rec.stats = {"median_s": median, "min_s": median, "max_s": median, "iqr_s": 0.0, "rounds": 6, "iterations": 1}
    if hidden is None:
        rec.bytes, rec.floor_s, rec.floor_bound, rec.floor_multiple = 400_000, 1.0, "bandwidth", median
    else:
        rec.floor_s, rec.floor_bound, rec.floor_multiple = 0.5, "matmul", median / 0.5
    return rec


def _doc(fw: str, floor: dict, records, peak: int) -> Results:
    return Results(
        environment={
            "python": "3",
            "platform": "p",
            "cpu": "c",
            "cpu_count": 2,
            "date": "d",
            "command": f"pytest --frameworks={fw}",
            "device": "cpu",
            "frameworks": {fw: {fw: "1.0"}},
            "skipped": {},
        },
        summary={},
        expectations={"entries": [], "stale": [], "unused": []},
        records=[],
        benchmarks=BenchSection(
            threads={"threads": 2},
            sizes=[[100, 1000]],
            modes=["eager"],
            passes=["forward"],
            dtypes=["float32"],
            budget_s=0.5,
            floor=floor,
            records=records,
            linear_sizes=[[100, 10, 1000]],
            matmul={fw: {"float32": {"flop_per_s": 1e9, "kernel": "mm"}}},
            memory={"process_peak_bytes": peak, "descendants_peak_bytes": 0, "sweep_peak_bytes": peak, "method": "m"},
        ),
        harness={"time_to_first_check_s": 1.0, "wall_s": 10.0, "peak_rss_bytes": peak, "frameworks": {}},
    )


def test_merged_floor_is_the_best_any_part_measured_and_multiples_follow_it():
    a = _doc("numpy", _floor(1e10, 1e9), [_record("numpy", 0.01)], 2**30)
    b = _doc("torch", _floor(5e9, 4e9), [_record("torch", 0.02), _record("torch", 2.0, hidden=10)], 3 * 2**30)
    doc = merge.merge({"numpy": a, "torch": b}, {"numpy": 2**30 + 5, "torch": 3 * 2**30 + 7}, "sampled")
    floor = doc.benchmarks.floor
    assert floor["bandwidth"]["bytes_per_s"] == 1e10 and floor["exp"]["float32"]["exp_per_s"] == 4e9
    by_fw = {(r.framework, r.hidden): r for r in doc.benchmarks.records}
    expect_floor = max(400_000 / 1e10, 100 * 1000 / 4e9)  # bytes at the best bandwidth, exps at the best rate
    assert by_fw["numpy", None].floor_s == pytest.approx(expect_floor)
    assert by_fw["torch", None].floor_multiple == pytest.approx(0.02 / expect_floor)
    assert by_fw["torch", 10].floor_multiple == 4.0 and by_fw["torch", 10].floor_bound == "matmul"  # its own
    mem = doc.benchmarks.memory
    assert mem["sweep_peak_bytes"] == 3 * 2**30 + 7 and mem["method"] == "sampled"  # the largest part's tree
    assert mem["parts"]["numpy"] == {"process_peak_bytes": 2**30, "tree_peak_bytes": 2**30 + 5}
    assert set(doc.benchmarks.matmul) == {"numpy", "torch"}
    assert doc.environment["frameworks"] == {"numpy": {"numpy": "1.0"}, "torch": {"torch": "1.0"}}
    assert doc.harness["wall_s"] == 20.0 and doc.harness["peak_rss_bytes"] == 3 * 2**30
    validate(json.loads(dumps(doc)), "merged")  # one valid results document


def test_nothing_to_merge_is_an_error():
    with pytest.raises(ValueError, match="no benchmark part"):
        merge.merge({})


def _script(*args):
    return subprocess.run(
        [sys.executable, "scripts/bench_sweep.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_sweep_script_runs_parts_and_merges_them(tmp_path):
    res = tmp_path / "bench.json"
    r = _script(
        "--frameworks=",
        "--adapter=tests.fake_adapter:TIMED_LINEAR",
        "--bench-sizes=32x10",
        "--bench-linear-sizes=16x8x100",
        "--bench-modes=eager",
        "--bench-time=0.05",
        "--benchmark-timer=tests.fake_adapter.virtual_time",
        "-p",
        "no:randomly",
        f"--results={res}",
        f"--report={tmp_path / 'bench.html'}",
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    doc = load(res)  # validates
    assert (tmp_path / "bench-parts" / "bench.adapters.json").is_file() and (tmp_path / "bench.html").is_file()
    recs = doc.benchmarks.records
    assert len(recs) == 4 * 2 + 2 and {r.op for r in recs} == {"softmax_ce", "linear_ce"}
    mem = doc.benchmarks.memory
    assert mem["parts"]["adapters"]["tree_peak_bytes"] > 0 and mem["sweep_peak_bytes"] > 0
    assert "bench: the sweep's peak memory" in r.stdout and "one process per framework" in mem["method"]
    assert doc.benchmarks.linear_sizes == [list(s) for s in sweep.parse_linear_sizes("16x8x100")]
