"""The derived tolerance: honest float32 arithmetic lands inside it, real bugs land far outside."""

import numpy as np
import pytest

from cases import load_catalog
from xentcheck import reference as R
from xentcheck.compare import compare
from xentcheck.tolerance import KAPPA, bound, compute_dtype

from .fake_adapter import _softmax_ce


def _float32_check(problem, **bug):
    z = problem.x.astype(np.float32)
    y = problem.dense_target().astype(np.float32)
    with np.errstate(all="ignore"):
        value, _ = _softmax_ce(z, y, None, "none", **bug)
    ev = R.evaluate(problem)
    return compare(value.astype(np.float64), ev.value, bound(ev.value_scale, "float32"))


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in load_catalog()
        if "softmax_ce" in c.ops
        and not c.class_weight
        and not c.sample_weight
        and c.ignore_index is None
        and not c.label_smoothing
        and c.where is None
    ],
)
def test_stable_float32_softmax_ce_is_within_bound_on_every_catalog_case(case):
    c = _float32_check(case.problem("softmax_ce", "float32", "none"))
    assert c.ok, c.detail
    assert c.tol_units < 1.0


def test_no_max_shift_is_caught():
    case = next(c for c in load_catalog() if c.name == "large_logits")
    assert not _float32_check(case.problem("softmax_ce", "float32", "none"), shift=False).ok


def test_bound_scales_with_dtype_and_is_never_zero():
    scale = (np.array([10.0]), np.array([5.0]))
    b32, b64 = bound(scale, "float32"), bound(scale, "float64")
    assert b32[0] == pytest.approx(2.0**-24 * (KAPPA * 10 + 5) + KAPPA * np.finfo(np.float32).tiny)
    assert b64[0] < b32[0] * 1e-8
    assert bound((np.zeros(1), np.zeros(1)), "float64")[0] > 0  # underflow allowance


def test_a_relative_error_of_1e_5_is_caught_in_float32_on_an_ordinary_case():
    case = next(c for c in load_catalog() if c.name == "random_index")
    p = case.problem("softmax_ce", "float32", "none")
    ev = R.evaluate(p)
    assert not compare(ev.value * (1 + 1e-5), ev.value, bound(ev.value_scale, "float32")).ok


def test_compute_dtype_is_the_less_precise():
    assert compute_dtype("float64", "float32") == "float32"
    assert compute_dtype("float32", "float64") == "float32"
    assert compute_dtype("float16", "bfloat16") == "bfloat16"
    assert compute_dtype("float32", None) == "float32"


def test_half_precision_sums_are_bounded_by_float32_accumulation():
    from xentcheck.problem import unit_roundoff

    a, s = np.array([1.0]), np.array([64000.0])  # a 32000-class exp-sum: S = 2C
    for half in ("float16", "bfloat16"):
        b = bound((a, s), half)[0]
        assert b == pytest.approx(
            unit_roundoff(half) * KAPPA + unit_roundoff("float32") * 64000 + KAPPA * 2.0**-14
            if half == "float16"
            else unit_roundoff(half) * KAPPA + unit_roundoff("float32") * 64000 + KAPPA * 2.0**-126
        )
        # accumulating in the half dtype itself errs by up to n u: that is outside the bound
        assert unit_roundoff(half) * 64000 > 10 * b
        assert bound((a, s), half, accumulate=half)[0] > unit_roundoff(half) * 64000
    assert bound((a, s), "float32")[0] == bound((a, s), "float32", accumulate="float32")[0]


def test_a_weighted_means_divisor_is_a_sum_and_its_rounding_is_allowed():
    # a mean over the sum of the weights divides by a float32 sum of n terms: summed one by one it errs
    # by up to (n - 1) u relative, and every gradient element shares that error (a legitimate kernel:
    # Inductor's compiled cross_entropy on ONNX's 5-D weighted case, 6480 weights). A divisor off by far
    # more (a mean over the wrong weights) is still caught
    from dataclasses import replace

    from xentcheck.problem import Problem

    rng = np.random.default_rng(0)
    n, c = 6480, 5
    p = Problem(
        "t",
        "softmax_ce",
        "float32",
        rng.normal(size=(n, c)).astype(np.float32).astype(np.float64),
        rng.integers(0, c, n),
        "index",
        reduction="mean",
        class_weight=rng.uniform(0.5, 1.5, c).astype(np.float32) * 1.0,
    )
    conv = replace(R.MATH, mean_by="weight_sum")
    ev = R.evaluate(p, conv)
    omega = R.per_example_weight(p).astype(np.float32)
    d32 = np.float32(0)
    for w in omega:  # recursive summation in float32, as a compiled loop may do
        d32 = np.float32(d32 + w)
    d = float(np.sum(R.per_example_weight(p)))
    assert abs(float(d32) - d) / d > 1e-6  # the float32 sum really errs
    near = ev.grad * (d / float(d32))
    assert np.all(np.abs(near - ev.grad) <= bound(ev.grad_scale, "float32"))
    assert not np.all(np.abs(ev.grad * 1.001 - ev.grad) <= bound(ev.grad_scale, "float32"))
