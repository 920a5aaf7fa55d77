"""The benchmark sweep's pieces that need no clock: option parsing, inputs, the byte and floor
model, round planning, and the timed records' place in the results document."""

import numpy as np
import pytest

from xentcheck.bench import floor, runner, sweep


def test_named_and_explicit_sizes():
    assert sweep.parse_sizes("quick")[-1] == (512, 32000)
    assert sweep.parse_sizes("32x10, 8192X32000") == ((32, 10), (8192, 32000))
    assert max(c for _, c in sweep.parse_sizes("llm")) >= 128000


@pytest.mark.parametrize("bad", ["", "32", "32x1", "ax10", "32x10,", "huge"])
def test_bad_sizes_get_one_line_naming_the_fix(bad):
    with pytest.raises(sweep.SweepError, match="BATCHxCLASSES"):
        sweep.parse_sizes(bad)


def test_bad_list_option():
    assert sweep.parse_list("--bench-modes", "eager", sweep.MODES) == ("eager",)
    with pytest.raises(sweep.SweepError, match="--bench-modes: 'jit' is not one of eager, compiled"):
        sweep.parse_list("--bench-modes", "eager,jit", sweep.MODES)


@pytest.mark.parametrize(
    "op,kinds,expect",
    [
        ("softmax_ce", frozenset({"index", "onehot"}), "index"),
        ("softmax_ce", frozenset({"onehot", "soft"}), "onehot"),
        ("categorical_ce", frozenset({"index"}), "index"),
        ("sigmoid_bce", frozenset({"binary", "soft"}), "binary"),
    ],
)
def test_canonical_targets(op, kinds, expect):
    assert sweep.canonical_target(op, kinds) == expect


@pytest.mark.parametrize("op", ["softmax_ce", "categorical_ce", "sigmoid_bce", "bce"])
def test_benchmark_inputs_are_valid_for_their_op(op):
    kind = sweep.canonical_target(op, frozenset({"index", "binary"}))
    p = sweep.problem(op, kind, "mean", 64, 100, "float32")
    assert p.x.shape == (64, 100) and np.all(np.isfinite(p.x))
    if op == "categorical_ce":
        np.testing.assert_allclose(p.x.sum(axis=-1), 1, rtol=1e-5)
    if op == "bce":
        assert np.all((p.x > 0) & (p.x < 1))
    if kind == "index":
        assert p.target.shape == (64,) and p.target.min() >= 0 and p.target.max() < 100
    # held in float32 (exact for a float32 input), half the memory of float64 at 4096x32000
    assert p.x.dtype == np.float32 and (kind == "index" or p.target.dtype == np.float32)
    assert sweep.problem(op, kind, "mean", 4, 10, "float64").x.dtype == np.float64
    # seeded: the same input every run, so two runs time the same work
    np.testing.assert_array_equal(p.x, sweep.problem(op, kind, "mean", 64, 100, "float32").x)


def test_bytes_and_floor_model():
    assert sweep.bytes_moved(4096, 32000, "float32", grad=False) == 4096 * 32000 * 4
    assert sweep.bytes_moved(4096, 32000, "float32", grad=True) == 3 * 4096 * 32000 * 4
    assert sweep.bytes_moved(10, 10, "bfloat16", grad=False) == 200
    bw, exp = {"bytes_per_s": 1e10}, {"exp_per_s": 1e9}
    assert floor.floor_seconds(10**10, 10**6, bw, exp) == (1.0, "bandwidth")
    assert floor.floor_seconds(10**6, 10**10, bw, exp) == (10.0, "exp")
    assert floor.floor_seconds(10**6, 10**10, bw, {"exp_per_s": None}) == (1e-4, "bandwidth")


@pytest.mark.parametrize(
    "t_call,expect",
    [
        (1e-5, 100),  # dispatch-bound: 100 calls per round fill a millisecond
        (3e-4, 4),
        (0.01, 1),
        (1.0, 1),
    ],
)
def test_calls_per_round(t_call, expect):
    assert runner.plan_iterations(t_call) == expect


def test_nll_is_timed_on_log_probabilities_with_index_targets():
    p = sweep.problem("nll", sweep.canonical_target("nll", frozenset({"index"})), "mean", 8, 5, "float64")
    assert p.target_kind == "index"
    np.testing.assert_allclose(np.exp(p.x).sum(axis=-1), 1.0)


def test_interleaved_ratio_of_equal_calls_is_one():
    r = runner.interleaved_ratio(lambda: None, lambda: None, 5, 1)
    assert r["rounds"] == 5 and r["ratio"] > 0


def test_floor_measurements_are_positive_and_name_their_kernel():
    bw = floor.measure_bandwidth(1, repeats=1)
    assert bw["bytes_per_s"] > 1e8 and bw["kernel"] in bw["kernels"]
    exp = floor.measure_exp(1, "float32", repeats=1)
    assert exp["exp_per_s"] > 1e6 and exp["kernel"].startswith("numpy.exp")
    assert floor.measure_exp(1, "bfloat16", repeats=1)["exp_per_s"] is None  # NumPy has no bfloat16 exp


def test_a_bench_process_compiles_into_kernel_caches_of_its_own(monkeypatch):
    # Inductor keeps its C++ kernels (Triton its GPU binaries) across runs whatever the graph caches say:
    # a benchmark's compile time would be a load from an earlier run's folder
    import os

    from xentcheck.bench.plan import fresh_kernel_caches

    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        monkeypatch.setenv(var, "")  # so that what the call sets is undone after the test
        monkeypatch.delenv(var)
    root = fresh_kernel_caches()
    assert root is not None and os.path.isdir(root) and not os.listdir(root)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"].startswith(root) and os.environ["TRITON_CACHE_DIR"].startswith(root)
    assert fresh_kernel_caches() is None  # chosen already (by the caller, or by this process): kept
