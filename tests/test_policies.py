"""The registry of oracle policies (xentcheck/policies): one unit test per policy, named ``test_<policy>``,
each a small problem under the policy against numbers worked out by hand; then the registry itself: the
Convention, the schema and the docs all come from it, and a new policy is one file."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from dataclasses import fields, replace

import numpy as np
import pytest

from xentcheck import policies
from xentcheck import reference as R
from xentcheck.expectations import ExpectationError, _entry
from xentcheck.policies import _generate
from xentcheck.problem import Problem

from .runs import ROOT


def _problem(op, x, target, kind, dtype="float64", **kw) -> Problem:
    return Problem(
        case="t", op=op, dtype=dtype, x=np.asarray(x, float), target=np.asarray(target), target_kind=kind, **kw
    )


def _ev(p: Problem, **policy):
    """The oracle under ``policy`` (ones as the cotangent of an unreduced loss)."""
    conv = R.Convention(**policy)
    return R.evaluate(p, conv, np.ones(R.output_shape(p, conv)) if p.reduction == "none" else None)


# -- one test per policy ------------------------------------------------------------------------------


def test_empty_mean_zero():
    p = _problem("softmax_ce", [[1.0, 2.0], [0.5, 0.0]], [-100, -100], "index", reduction="mean", ignore_index=-100)
    assert np.isnan(_ev(p, mean_by="valid_count").value)  # 0 / 0
    ev = _ev(p, mean_by="valid_count", empty_mean_zero=True)
    assert ev.value == 0.0 and np.array_equal(ev.grad, np.zeros((2, 2)))


def test_empty_reduced_is_empty():
    p = _problem("softmax_ce", np.zeros((0, 3)), np.zeros(0, int), "index", reduction="sum")
    assert R.evaluate(p).value.shape == () and R.evaluate(p).value == 0.0  # the sum of nothing
    assert _ev(p, empty_reduced_is_empty=True).value.shape == (0,)


def test_exp_sum_in_dtype():
    # 512 equal logits: the loss is log 512; summed one by one in bfloat16 (8 significant bits), the
    # exp-sum stops at 256 (256 + 1 rounds to 256, ties to even), so the loss is log 256
    p = _problem("softmax_ce", np.zeros((1, 512)), [0], "index", dtype="bfloat16")
    assert R.evaluate(p).value[0] == pytest.approx(math.log(512), rel=1e-15)
    assert _ev(p, exp_sum_in_dtype=True).value[0] == pytest.approx(math.log(256), rel=1e-15)
    assert _ev(p, exp_sum_in_dtype=False).value[0] == R.evaluate(p).value[0]  # False is not in force
    # an ignored row stays out whatever its logits: all -inf gives an exp-sum of 0 and 0 * NaN products
    q = _problem("softmax_ce", [[-np.inf, -np.inf], [0.0, 0.0]], [-100, 0], "index", ignore_index=-100)
    plain = {"zero_times_inf": True, "one_hot_products": True}
    assert np.array_equal(_ev(q, exp_sum_in_dtype=True, **plain).value, [0.0, math.log(2)])
    # an ignored row stays masked out under plain one-hot products (its 0 * inf would be NaN): the loss
    # is the counted row's alone, log(e^0 + e^0) - 0 = log 2 (1 + 1 = 2 is exact in bfloat16)
    q = _problem("softmax_ce", [[7.0, -np.inf], [0.0, 0.0]], [-100, 1], "index", dtype="bfloat16", ignore_index=-100)
    got = _ev(q, exp_sum_in_dtype=True, zero_times_inf=True, one_hot_products=True).value
    assert got[0] == 0.0 and got[1] == pytest.approx(math.log(2), rel=1e-15)
    dense = _problem("softmax_ce", np.zeros((2, 3)), np.eye(3)[:2], "onehot", dtype="bfloat16")  # one loss a row
    np.testing.assert_allclose(_ev(dense, exp_sum_in_dtype=True).value, [math.log(3), math.log(3)], rtol=1e-15)
    # an ignored row stays 0 under one-hot products even where its -inf logit would give 0 * -inf
    q = _problem("softmax_ce", [[-np.inf, 0.0], [0.0, 0.0]], [-100, 1], "index", dtype="bfloat16", ignore_index=-100)
    v = _ev(q, exp_sum_in_dtype=True, zero_times_inf=True, one_hot_products=True).value
    assert v[0] == 0.0 and v[1] == pytest.approx(math.log(2), rel=1e-15)


def test_softmax_sum_in_dtype():
    # float32, logits [17, 0, 0, 0]: each small term exp(-17) = 4.1e-8 is below half an ulp of 1 (2^-24), so
    # summed in class order from the 1 the sum stays 1 and the largest probability is exactly 1 (its loss
    # 0); correctly rounded it is 1 / (1 + 3 exp(-17)) -> 1 - 2^-23, a loss of 2^-23 (to 1e-7)
    y = [[1.0, 0.0, 0.0, 0.0]]
    p = _problem("softmax_ce", [[17.0, 0.0, 0.0, 0.0]], y, "onehot", dtype="float32")
    via = {"probabilities_dtype": "input"}
    assert _ev(p, **via).value[0] == pytest.approx(2.0**-23, rel=1e-7)
    assert _ev(p, softmax_sum_in_dtype=True, **via).value[0] == 0.0
    # the largest logit last: the three small terms add up first, past half an ulp, so the sum is 1 + 2^-23
    # and the probability 1 - 2^-23, as correctly rounded
    q = _problem("softmax_ce", [[0.0, 0.0, 0.0, 17.0]], [[0.0, 0.0, 0.0, 1.0]], "onehot", dtype="float32")
    assert _ev(q, softmax_sum_in_dtype=True, **via).value[0] == _ev(q, **via).value[0]
    # with the clip at 1 - 1e-7 (1 - 2^-23 in float32) the probability of 1 is cut: no gradient at all
    clipped = {"renormalize": "before_clip", "prob_clip": 1e-7, "renormalize_sum_in_dtype": True, **via}
    assert np.array_equal(_ev(p, softmax_sum_in_dtype=True, **clipped).grad, [[0.0, 0.0, 0.0, 0.0]])
    assert _ev(p, **clipped).grad[0, 0] < 0  # correctly rounded, 1 - 2^-23 sits on the bound and passes


def test_lost_label_nan():
    # float16 holds no integer above 65519: label 70000 becomes inf, no class; under lost_label_nan its
    # row's target is NaN (XLA's sparse kernel), so its loss and gradient are NaN and the other row exact
    c = 70001
    p = _problem("softmax_ce", np.zeros((2, c)), [70000, 1], "index", dtype="float16")
    ev = _ev(p, labels_in_dtype=True, lost_label_nan=True)
    assert np.isnan(ev.value[0]) and ev.value[1] == pytest.approx(math.log(c), rel=1e-15)
    assert np.all(np.isnan(ev.grad[0])) and np.all(np.isfinite(ev.grad[1]))
    # from probabilities, clipped to [1e-7, 1 - 1e-7] before an after-clip renormalisation (TensorFlow's
    # sparse path): the clip selects 0 for the classes it holds, so only the two probabilities inside get NaN
    q = np.zeros((1, c))
    q[0, :2] = 0.5
    p = _problem("categorical_ce", q, [70000], "index", dtype="float16")
    g = _ev(p, labels_in_dtype=True, lost_label_nan=True, prob_clip=1e-7, renormalize="after_clip").grad[0]
    assert np.all(np.isnan(g[:2])) and np.array_equal(g[2:], np.zeros(c - 2))


def test_grad_denominator_floor():
    p = _problem("bce", [[0.0]], [[1.0]], "binary")
    assert _ev(p).grad[0, 0] == -np.inf  # -t / p
    assert _ev(p, grad_denominator_floor=1e-12).grad[0, 0] == -1e12  # (p - t) / max(p (1 - p), 1e-12)


def test_grad_unit_target_sum():
    p = _problem("softmax_ce", [[0.0, 0.0]], [[1.0, 1.0]], "soft")
    assert np.array_equal(_ev(p).grad, [[0.0, 0.0]])  # sum(y) softmax - y = 2 * 0.5 - 1
    assert np.array_equal(_ev(p, grad_unit_target_sum=True).grad, [[-0.5, -0.5]])  # softmax - y


def test_ignored_row_nan_grad():
    p = _problem("softmax_ce", [[-np.inf, 0.0], [0.0, 0.0]], [-100, 1], "index", ignore_index=-100)
    assert np.array_equal(_ev(p).grad[0], [0.0, 0.0])  # an ignored row has no gradient
    g = _ev(p, ignored_row_nan_grad=True).grad
    assert np.all(np.isnan(g[0])) and np.array_equal(g[1], [0.5, -0.5])  # 0 * inf there; the others exact


def test_ignored_row_undefined_nan_grad():
    x = [[np.inf, 0.0], [-np.inf, 0.0], [-np.inf, -np.inf], [np.nan, 0.0], [0.0, 0.0]]
    p = _problem("softmax_ce", x, [-100, -100, -100, -100, 1], "index", ignore_index=-100)
    g = _ev(p, ignored_row_undefined_nan_grad=True).grad
    assert np.all(np.isnan(g[[0, 2, 3]]))  # +inf, every logit -inf, NaN: the row's log-softmax is NaN
    assert np.array_equal(g[1], [0.0, 0.0])  # a -inf logit under a finite maximum: defined, so 0
    assert np.array_equal(g[4], [0.5, -0.5])  # the counted row: softmax [1/2, 1/2] minus the one-hot


def test_sample_weight_trailing_broadcast():
    # N = 2 examples, d1 = 2 positions, 2 classes of equal logits: every element's loss is log 2
    p = _problem("softmax_ce", np.zeros((2, 2, 2)), np.zeros((2, 2), int), "index", sample_weight=np.array([1.0, 3.0]))
    log2 = math.log(2.0)
    assert np.allclose(_ev(p).value, [[log2, log2], [3 * log2, 3 * log2]])  # example i weighted by w[i]
    assert np.allclose(_ev(p, sample_weight_trailing_broadcast=True).value, [[log2, 3 * log2], [log2, 3 * log2]])
    q = _problem("softmax_ce", np.zeros((2, 3, 2)), np.zeros((2, 3), int), "index", sample_weight=np.array([1.0, 3.0]))
    assert np.array_equal(_ev(q, sample_weight_trailing_broadcast=True).value, _ev(q).value)  # d1 != N: no change


def test_inf_logit_nan():
    p = _problem("softmax_ce", [[np.inf, 1.0, 2.0]], [1], "index")
    limit = _ev(p)
    assert limit.value[0] == np.inf and np.array_equal(limit.grad, [[1.0, -1.0, 0.0]])  # all mass on class 0
    row = _ev(p, inf_logit_nan="row")
    assert np.isnan(row.value[0]) and np.all(np.isnan(row.grad))
    mass = _ev(p, inf_logit_nan="target_mass")  # no target mass on the +inf class: the loss keeps its limit
    assert mass.value[0] == np.inf and np.all(np.isnan(mass.grad))
    at = _ev(p, inf_logit_nan="at_class")
    assert at.value[0] == np.inf and np.isnan(at.grad[0, 0]) and np.array_equal(at.grad[0, 1:], [-1.0, 0.0])
    # at_class: the label on the +inf class is inf - inf = NaN (the limit is log 1 = 0); with logsumexp's
    # shift of 0, exp(800) overflows float64 too (inf / inf = NaN) while exp(2) / inf = 0 stays the limit
    on = _problem("softmax_ce", [[np.inf, 800.0, 2.0]], [0], "index")
    assert _ev(on).value[0] == 0.0 and np.array_equal(_ev(on).grad[0], [0.0, 0.0, 0.0])
    at_on = _ev(on, inf_logit_nan="at_class")
    assert np.isnan(at_on.value[0]) and np.all(np.isnan(at_on.grad[0, :2])) and at_on.grad[0, 2] == 0.0
    # where= excludes class 2: it takes no part, so its gradient stays 0 while the rest of the row is NaN
    masked = _problem("softmax_ce", [[np.inf, 1.0, 2.0]], [1], "index", where=np.array([[True, True, False]]))
    g = _ev(masked, inf_logit_nan="row").grad
    assert np.all(np.isnan(g[0, :2])) and g[0, 2] == 0.0


def test_labels_in_dtype():
    # label 2049 is no float16 (spacing 2 above 2048): rounded to even, it is 2048, whose logit is 1
    z = np.zeros((1, 3000))
    z[0, 2048] = 1.0
    p = _problem("softmax_ce", z, [2049], "index", dtype="float16")
    lse = math.log(2999 + math.e)
    assert R.evaluate(p).value[0] == pytest.approx(lse, rel=1e-15)
    assert _ev(p, labels_in_dtype=True).value[0] == pytest.approx(lse - 1.0, rel=1e-15)


def test_log_clamp():
    p = _problem("bce", [[0.0, 1.0]], [[1.0, 0.0]], "binary")
    assert np.all(np.isinf(_ev(p).value))
    assert np.array_equal(_ev(p, log_clamp=-100.0).value, [[100.0, 100.0]])


def test_log_epsilon():
    p = _problem("bce", [[0.5, 0.0]], [[1.0, 1.0]], "binary")
    ev = _ev(p, log_epsilon=1e-7)
    assert ev.value[0, 0] == pytest.approx(-math.log(0.5 + 1e-7), rel=1e-15)
    assert ev.value[0, 1] == pytest.approx(-math.log(1e-7), rel=1e-15) and _ev(p).value[0, 1] == np.inf


def test_log_grad_in_dtype():
    # d/dq of -0.01 log q at q = 2^-20: -0.01 * 2^20 is finite, but 1/q = 2^20 overflows float16 (max 65504)
    p = _problem("categorical_ce", [[2.0**-20, 1.0]], [[0.01, 0.99]], "soft", dtype="float16")
    assert _ev(p).grad[0, 0] == pytest.approx(-0.01 * 2.0**20, rel=1e-15)
    assert _ev(p, log_grad_in_dtype=True).grad[0, 0] == -np.inf
    # bce at p = 2^-20 in float16: t = 1 gives -1/p = -2^20 (finite exactly, -inf through 1/p in float16);
    # t = 0 gives 1/(1 - p), and as a plain product the log p term adds 0 * inf = NaN
    b = _problem("bce", [[2.0**-20, 2.0**-20, 0.5]], [[1.0, 0.0, 1.0]], "binary", dtype="float16")
    exact = _ev(b).grad[0]
    assert exact[0] == -(2.0**20) and exact[1] == pytest.approx(1 / (1 - 2.0**-20), rel=1e-15) and exact[2] == -2.0
    held = _ev(b, log_grad_in_dtype=True).grad[0]
    assert held[0] == -np.inf and held[1] == pytest.approx(1.0, rel=1e-3) and held[2] == -2.0
    assert np.isnan(_ev(b, log_grad_in_dtype=True, zero_times_inf=True).grad[0, 1])
    # bce: p = 2^-23 (the clip's float16 lower bound, so its gradient passes), t = 1/64: -t/p = -2^17 is
    # past 65504 anyway, but with t = 2^-12 the exact -2^11 is finite while t * (1/p = 2^23 -> inf) is -inf
    b = _problem("bce", [[2.0**-23]], [[2.0**-12]], "binary", dtype="float16")
    pol = {"prob_clip": 1e-7, "zero_times_inf": True}
    assert _ev(b, **pol).grad[0, 0] == pytest.approx(-(2.0**11) + (1 - 2.0**-12) / (1 - 2.0**-23), rel=1e-12)
    assert _ev(b, log_grad_in_dtype=True, **pol).grad[0, 0] == -np.inf
    # the sparse path (clip, log, softmax cross-entropy): float16 [1, 2^-23] with label 0, a mean over 64
    # rows: the gradient reaching log q at class 1 is (1/64) * softmax_1 = 2^-6 * 2^-23 / (1 + 2^-23),
    # below float16's smallest subnormal 2^-24, so 0, and 0 * (1/2^-23 = inf) is NaN
    s = _problem(
        "categorical_ce",
        np.tile([[1.0, 2.0**-23]], (64, 1)),
        np.zeros(64, int),
        "index",
        dtype="float16",
        reduction="mean",
    )
    sp = {"prob_clip": 1e-7, "renormalize": "after_clip", "log_grad_in_dtype": True}
    assert np.all(np.isnan(_ev(s, **sp).grad[:, 1]))
    one = _problem("categorical_ce", [[1.0, 2.0**-23]], [0], "index", dtype="float16", reduction="mean")
    assert _ev(one, **sp).grad[0, 1] == np.inf  # upstream 1: 2^-23 / (1 + 2^-23) holds as 2^-23, times inf


def test_log_grad_quotient():
    # d/dq of -0.01 log q at q = 2^-20 in float16: TF's 1/q = 2^20 overflows (max 65504), JAX's and
    # PyTorch's quotient upstream * 0.01 / q = 0.01 * 2^20 = 10485.76 does not, unless the upstream is
    # 8: 83886 > 65504 (an overflow of the quotient, per unit upstream -inf, times 8 is -inf)
    p = _problem("categorical_ce", [[2.0**-20, 1.0]], [[0.01, 0.99]], "soft", dtype="float16")
    assert _ev(p, log_grad_in_dtype=True).grad[0, 0] == -np.inf
    got = _ev(p, log_grad_in_dtype=True, log_grad_quotient=True).grad  # the quotient overrides
    assert got[0, 0] == pytest.approx(-0.01 * 2.0**20, rel=1e-15) and got[0, 1] == pytest.approx(-0.99, rel=1e-15)
    conv = R.Convention(log_grad_quotient=True)
    assert R.evaluate(p, conv, np.array([8.0])).grad[0, 0] == -np.inf
    assert R.evaluate(p, conv, np.array([-8.0])).grad[0, 0] == np.inf
    # a class without target mass: 0 / q = 0 whatever q (the reciprocal gives 0 * inf = NaN)
    z = _problem("categorical_ce", [[2.0**-20, 1.0]], [[0.0, 1.0]], "soft", dtype="float16")
    assert _ev(z, log_grad_quotient=True).grad[0, 0] == 0.0 and np.isnan(_ev(z, log_grad_in_dtype=True).grad[0, 0])
    # bce, mean over 2 elements: the upstream 1/2 reaches each log; -t/q = -2^23 at the clipped p = 0
    # (q = 2^-23, 1e-7 in float16) overflows per 1/2 too: -inf, selected away by the clip: 0
    b = _problem("bce", [[0.0, 0.5]], [[1.0, 1.0]], "binary", dtype="float16", reduction="mean")
    ev = _ev(b, prob_clip=1e-7, zero_times_inf=True, log_grad_quotient=True)
    assert ev.grad[0, 0] == 0.0 and ev.grad[0, 1] == pytest.approx(-0.5 / 0.5, rel=1e-15)


def test_clip_grad_product():
    # float16: 1 - 1e-7 rounds to 1, so q = 1 sits on the upper bound: JAX's minimum passes half the
    # gradient, -1/q * 1/2 = -0.5 (selected: -1); the clipped q = 0 without target mass gets 0 * 0 = 0
    p = _problem("categorical_ce", [[1.0, 0.0]], [0], "index", dtype="float16")
    assert _ev(p, prob_clip=1e-7).grad[0].tolist() == [-1.0, 0.0]
    assert _ev(p, prob_clip=1e-7, clip_grad_product=True).grad[0].tolist() == [-0.5, 0.0]
    # bce at p = 0, t = 1, clipped to 2^-23: the quotient -1/2^-23 overflows float16; selected, the clip
    # gives 0; multiplied, 0 * -inf = NaN
    b = _problem("bce", [[0.0]], [[1.0]], "binary", dtype="float16")
    pol = {"prob_clip": 1e-7, "zero_times_inf": True, "log_grad_quotient": True}
    assert _ev(b, **pol).grad[0, 0] == 0.0
    assert np.isnan(_ev(b, clip_grad_product=True, **pol).grad[0, 0])


def test_clip_grad_product_spreads_through_the_renormalisation():
    # float16 [1, 0] with the target on class 1, renormalised (sum 1) and clipped: class 1 is clipped from
    # 0 up to 2^-23, where -1/q overflows float16 to -inf. Selected (PyTorch's clamp), the clip gives it 0
    # and class 0 (q = 1, no target mass) has 0: the renormalisation's (g - sum g q) / 1 is [0, 0].
    # Multiplied (JAX's clip), 0 * -inf = NaN, and the renormalisation's sum_k g_k q_k meets NaN * 0 = NaN:
    # the whole row is NaN
    p = _problem("categorical_ce", [[1.0, 0.0]], [1], "index", dtype="float16")
    pol = {"renormalize": "before_clip", "prob_clip": 1e-7, "log_grad_quotient": True}
    assert _ev(p, **pol).grad[0].tolist() == [0.0, 0.0]
    assert np.all(np.isnan(_ev(p, clip_grad_product=True, **pol).grad[0]))


def test_weighted_loss_in_dtype():
    # float16 log-probabilities -40000 and 40000, class weight 2: the weighted losses 80000 and -80000 are
    # past float16's 65504, so +inf and -inf, and their sum NaN where the exact sum is 0; a weighted loss
    # of 2 * 30000 = 60000 fits and keeps its exact value
    w = np.array([2.0])
    p = _problem("nll", [[-40000.0], [40000.0]], [0, 0], "index", dtype="float16", class_weight=w, reduction="sum")
    assert R.evaluate(p).value == 0.0
    assert np.isnan(_ev(p, weighted_loss_in_dtype=True).value)
    q = _problem("nll", [[-30000.0], [30000.0]], [0, 0], "index", dtype="float16", class_weight=w, reduction="sum")
    assert _ev(q, weighted_loss_in_dtype=True).value == 0.0


def test_log_softmax_in_dtype_plain_products():
    # float16 row [-65504, 30]: log-softmax of class 0 is -65534 - log1p(e^-65534), which float16 (largest
    # finite 65504, ties to inf from 65520) holds as -inf; row [-65000, 30]: -65030 rounds to -65024, finite
    x = [[-65504.0, 30.0], [-65504.0, 30.0], [-65000.0, 30.0]]
    p = _problem("softmax_ce", x, np.eye(2)[[1, 0, 0]], "onehot", dtype="float16")
    exact = _ev(p, zero_times_inf=True).value
    assert exact[0] == 0.0 and exact[1] == 65534.0 and exact[2] == 65030.0  # 0 * (lse - z_0) in the limit
    held = _ev(p, zero_times_inf=True, log_softmax_in_dtype=True).value
    assert np.isnan(held[0]) and held[1] == np.inf and held[2] == 65030.0  # 0 * -inf; 1 * -inf; finite: exact
    gathered = _problem("softmax_ce", x, [1, 0, 0], "index", dtype="float16")
    assert _ev(gathered, log_softmax_in_dtype=True).value.tolist() == [0.0, np.inf, 65030.0]  # no products
    assert _ev(_problem("softmax_ce", x, [1, 0, 0], "index"), log_softmax_in_dtype=True).value[1] == 65534.0


def test_reduction_sum_in_dtype():
    # 300 nll losses of exactly 1. Summed one at a time in bfloat16 (8 significant bits, an ulp of 2 at
    # 256), 256 + 1 is a tie that rounds to 256 (even): the sum stops at 256 and the mean is 256/300
    # (exact: 300 and 1)
    p = _problem("nll", -np.ones((300, 1)), np.zeros(300, int), "index", dtype="bfloat16", reduction="sum")
    assert R.evaluate(p).value == 300.0
    assert _ev(p, reduction_sum_in_dtype=True).value == 256.0
    m = _problem("nll", -np.ones((300, 1)), np.zeros(300, int), "index", dtype="bfloat16", reduction="mean")
    assert _ev(m, reduction_sum_in_dtype=True).value == pytest.approx(256 / 300, rel=1e-15)


def test_renormalize_sum_in_dtype():
    # 512 probabilities of 2^-9 (they sum to 1) and label 0: the renormalised q_0 is 2^-9 and the loss
    # 9 log 2. Summed one at a time in bfloat16 the sum stalls at 2^-9 * 256 = 0.5 (0.5 + 2^-9 is a tie
    # with 0.5, to even), so q_0 = 2^-9 / 0.5 = 2^-8 and the loss is 8 log 2
    p = _problem("categorical_ce", np.full((1, 512), 2.0**-9), [0], "index", dtype="bfloat16")
    assert _ev(p, renormalize="before_clip").value[0] == pytest.approx(9 * math.log(2), rel=1e-15)
    got = _ev(p, renormalize="before_clip", renormalize_sum_in_dtype=True).value[0]
    assert got == pytest.approx(8 * math.log(2), rel=1e-15)


def test_sigmoid_steps_in_dtype():
    # z = 6, t = 0, bfloat16 (8 significant bits): exp(-6) = 0.00248 is below half an ulp of 1 (2^-8),
    # so 1 + exp(-6) rounds to 1 and p = 1: clipped to 1 - 2^-23 (float32 constants, upcast_half), the
    # loss is -log(2^-23 * (1 + ...)) = -log(1 - float32(1 - 1e-7)). Correctly rounded, sigmoid(6) =
    # 0.99753 is 1 - 2^-8 in bfloat16 (0.99609), and the loss -log(2^-8) = 8 log 2
    p = _problem("sigmoid_bce", [[6.0]], [[0.0]], "binary", dtype="bfloat16")
    pol = {"probabilities_dtype": "input", "prob_clip": 1e-7, "upcast_half": True}
    assert _ev(p, **pol).value[0, 0] == pytest.approx(8 * math.log(2), rel=2**-8)
    hi = float(np.float32(1 - 1e-7))
    got = _ev(p, sigmoid_steps_in_dtype=True, **pol).value[0, 0]
    assert got == float(R.round_to(-math.log1p(-hi), "bfloat16"))


def test_mean_divisor_epsilon():
    p = _problem("softmax_ce", np.zeros((3, 2)), [1, -100, 0], "index", reduction="mean", ignore_index=-100)
    assert _ev(p, mean_by="valid_count").value == pytest.approx(math.log(2), rel=1e-15)  # 2 log 2 / 2
    got = _ev(p, mean_by="valid_count", mean_divisor_epsilon=1e-7).value
    assert got == pytest.approx(2 * math.log(2) / (2 + 1e-7), rel=1e-15)


def test_one_hot_products():
    # label 1 on logits [-inf, 0]: gathered, the loss is lse - z_1 = 0; one-hot products add 0 * (lse + inf)
    p = _problem("softmax_ce", [[-np.inf, 0.0]], [1], "index")
    assert _ev(p, zero_times_inf=True).value[0] == 0.0
    assert np.isnan(_ev(p, zero_times_inf=True, one_hot_products=True).value[0])


def test_prob_clip():
    p = _problem("categorical_ce", [[0.0, 0.4, 0.6]], [0], "index")
    assert _ev(p).value[0] == np.inf
    assert _ev(p, prob_clip=1e-7).value[0] == pytest.approx(-math.log(1e-7), rel=1e-15)


def test_probabilities_dtype():
    p = _problem("bce", [[0.1]], [[1.0]], "binary")
    assert _ev(p).value[0, 0] == pytest.approx(-math.log(0.1), rel=1e-15)
    held = float(np.float32(0.1))  # the binding holds its probabilities in float32
    assert held != 0.1 and _ev(p, probabilities_dtype="float32").value[0, 0] == pytest.approx(
        -math.log(held), rel=1e-15
    )


def test_renormalize():
    p = _problem("categorical_ce", [[0.2, 0.3, 0.4]], [2], "index")  # sums to 0.9
    assert _ev(p).value[0] == pytest.approx(-math.log(0.4), rel=1e-15)
    assert _ev(p, renormalize="before_clip").value[0] == pytest.approx(-math.log(0.4 / 0.9), rel=1e-15)
    # ignored rows contribute nothing, whatever the renormalisation makes of them (0/0 for a zero or NaN
    # row): the counted row's gradient is d/dq_j -log(q_2 / s) = 1/s - [j = 2]/q_2, with s = 0.9
    rows = [[0.2, 0.3, 0.4], [np.nan, np.nan, np.nan], [0.0, 0.0, 0.0]]
    q = _problem("categorical_ce", rows, [2, -100, -100], "index", ignore_index=-100, reduction="sum")
    ev = _ev(q, renormalize="before_clip", prob_clip=1e-7)
    assert ev.value == pytest.approx(-math.log(0.4 / 0.9), rel=1e-12)
    np.testing.assert_allclose(ev.grad[0], [1 / 0.9, 1 / 0.9, 1 / 0.9 - 1 / 0.4], rtol=1e-12)
    assert np.array_equal(ev.grad[1:], np.zeros((2, 3)))
    # after the clip, in float16: 1/q of an ignored row's 2.4e-7 is inf, times its zero gradient NaN
    h = _problem("categorical_ce", [[2.384185791015625e-07, 0.5, 0.0, 0.5]], [-100], "index", dtype="float16",
                 ignore_index=-100, reduction="none")  # fmt: skip
    ev = _ev(h, prob_clip=1e-7, renormalize="after_clip", log_grad_in_dtype=True)
    assert np.array_equal(ev.grad, np.zeros((1, 4))) and ev.value[0] == 0.0


def test_sigmoid_formula():
    p = _problem("sigmoid_bce", [[np.inf, np.inf]], [[0.5, 1.0]], "soft")
    assert np.array_equal(_ev(p).value, [[np.inf, 0.0]])  # the limits
    # max(z, 0) - z t + log1p(e^-|z|) at z = inf: inf - inf at t = 0.5, inf - inf at t = 1
    assert np.all(np.isnan(_ev(p, sigmoid_formula="max_shift").value))
    # (1 - t) z + softplus(-z): 0.5 inf = inf; 0 * inf = NaN
    lin = _ev(p, sigmoid_formula="linear").value
    assert lin[0, 0] == np.inf and np.isnan(lin[0, 1])
    # t softplus(-z) + (1 - t) softplus(z): 0 + 0.5 inf = inf; 0 + 0 * inf = NaN
    prod = _ev(p, sigmoid_formula="products").value
    assert prod[0, 0] == np.inf and np.isnan(prod[0, 1])


def test_smoothing_last_axis():
    # zero logits, 3 classes, 2 positions, channels first: every loss is sum(y) log 3; smoothing 0.3 puts
    # 0.7 + 3 * 0.3 / 3 on the classes, or 0.7 + 3 * 0.3 / 2 when divided by the last axis the binding is
    # handed (the 2 positions)
    p = _problem("softmax_ce", np.zeros((1, 2, 3)), [[0, 2]], "index", label_smoothing=0.3, channels_first=True)
    np.testing.assert_allclose(_ev(p).value, [[math.log(3)] * 2], rtol=1e-15)
    np.testing.assert_allclose(_ev(p, smoothing_last_axis=True).value, [[1.15 * math.log(3)] * 2], rtol=1e-15)


def test_off_target_nan_propagates():
    # row 0: NaN at class 0, target class 1 (p = 0.5): -log 0.5 in the mathematics, NaN when every class is read
    p = _problem("categorical_ce", [[np.nan, 0.5, 0.5], [0.25, 0.25, 0.5]], [1, 2], "index")
    np.testing.assert_allclose(_ev(p).value, [math.log(2.0), math.log(2.0)], rtol=1e-12)
    v = _ev(p, off_target_nan_propagates=True).value
    assert np.isnan(v[0]) and v[1] == pytest.approx(math.log(2.0))


def test_squeeze_singleton_class():
    # one class, one spatial axis of length 1: (N, 1, 1) probabilities; -log q per element either way
    p = _problem("categorical_ce", [[[0.5]], [[0.25]]], [[0], [0]], "index", reduction="none")
    conv = R.Convention(squeeze_singleton_class=True)
    assert R.output_shape(p) == (2, 1) and R.output_shape(p, conv) == (2,)
    plain, squeezed = R.evaluate(p, R.MATH, np.array([[1.0], [3.0]])), R.evaluate(p, conv, np.array([1.0, 3.0]))
    assert squeezed.value.shape == (2,) and np.array_equal(squeezed.value, plain.value[:, 0])  # log 2, log 4
    assert np.allclose(squeezed.value, [math.log(2), math.log(4)])
    assert np.array_equal(squeezed.grad, plain.grad) and np.allclose(squeezed.grad[:, 0, 0], [-2.0, -12.0])  # -c / q
    longer = replace(p, x=np.full((2, 3, 1), 0.5), target=np.zeros((2, 3), int))  # the last spatial axis is 3
    assert R.output_shape(longer, conv) == (2, 3)
    summed = replace(p, reduction="sum")  # a reduced value is a scalar either way
    assert _ev(summed, squeeze_singleton_class=True).value == pytest.approx(math.log(8))


def test_sum_in_dtype():
    p = _problem("nll", [[-40000.0], [-40000.0]], [0, 0], "index", dtype="float16", reduction="mean")
    assert _ev(p).value == 40000.0  # the mean is finite in float16 (largest 65504)
    assert _ev(p, sum_in_dtype=True).value == np.inf  # the sum, 80000, is not
    q = _problem("sigmoid_bce", [[-3e38, -3e38]], [[1.0, 1.0]], "binary", dtype="float32")
    assert _ev(q, mean_last_axis=True).value[0] == pytest.approx(3e38)  # softplus(3e38) = 3e38, averaged
    assert _ev(q, mean_last_axis=True, sum_in_dtype=True).value[0] == np.inf  # 6e38 overflows float32
    # weighted by 1/4 after the mean over the classes (Keras): the unweighted class sum 6e38 still overflows
    r = _problem(
        "sigmoid_bce", [[-3e38, -3e38]], [[1.0, 1.0]], "binary", dtype="float32", sample_weight=np.array([0.25])
    )
    assert _ev(r, mean_last_axis=True).value[0] == pytest.approx(7.5e37)
    assert _ev(r, mean_last_axis=True, sum_in_dtype=True).value[0] == np.inf
    # a per-example weight multiplies the label mean, after the sum: 2e38 + log 2 is finite, so the
    # weighted mean is 2 * 1e38 (weighting each label's term first would sum 4e38 + 2 log 2: inf)
    w = _problem("sigmoid_bce", [[-2e38, 0.0]], [[1.0, 0.0]], "binary", dtype="float32", sample_weight=np.array([2.0]))
    assert _ev(w, mean_last_axis=True, sum_in_dtype=True).value[0] == pytest.approx(2e38)


def test_logits_dtype():
    # float64 logits [0, 1e300, -1e300]: converted to float32 they are [0, inf, -inf]; the +inf logit takes
    # all the mass, so the loss at class 0 is inf (the exact float64 loss is 1e300, finite)
    p = _problem("softmax_ce", [[0.0, 1e300, -1e300]], [0], "index", reduction="none")
    assert _ev(p).value[0] == 1e300
    assert _ev(p, logits_dtype="float32").value[0] == np.inf
    # through the max shift in IEEE arithmetic (inf_logit_nan) the row is NaN
    assert np.isnan(_ev(p, logits_dtype="float32", inf_logit_nan="row").value[0])
    # logits float32 holds: unchanged (the exact loss of the float64 logits)
    q = _problem("softmax_ce", [[0.0, 0.1, -0.3]], [0], "index", reduction="none")
    assert _ev(q, logits_dtype="float32").value[0] == _ev(q).value[0]


def test_log_softmax_in_dtype():
    # float16: lse([20, -65504]) = 20 (e^-65524 vanishes), so -log_softmax = [0, 65524]; 65524 rounds to inf
    # in float16 (largest 65504; inf from 65520), though half of it, the loss, is finite
    x = [[20.0, -65504.0]]
    p = _problem("softmax_ce", x, [[0.5, 0.5]], "soft", dtype="float16", reduction="none")
    assert _ev(p).value[0] == 32762.0
    assert _ev(p, log_softmax_in_dtype=True).value[0] == np.inf
    # no target mass at the overflowing class: the limit is exact (0), a plain product 0 * -inf is NaN
    q = _problem("softmax_ce", x, [[1.0, 0.0]], "soft", dtype="float16", reduction="none")
    assert _ev(q, log_softmax_in_dtype=True).value[0] == 0.0
    assert np.isnan(_ev(q, log_softmax_in_dtype=True, zero_times_inf=True).value[0])
    # float32 holds 65524: the exact loss
    r = _problem("softmax_ce", x, [[0.5, 0.5]], "soft", dtype="float32", reduction="none")
    assert _ev(r, log_softmax_in_dtype=True).value[0] == 32762.0
    e = _problem("softmax_ce", np.zeros((0, 2)), np.zeros((0, 2)), "soft", dtype="float16", reduction="none")
    assert _ev(e, log_softmax_in_dtype=True).value.shape == (0,)  # an empty batch: nothing to hold


def test_loss_in_dtype():
    # float16 softplus(65504) = 65504, times pos_weight 2 = 131008 (inf in float16); weighted by 1/4: 32752
    p = _problem(
        "sigmoid_bce", [[-65504.0]], [[1.0]], "binary", dtype="float16", reduction="none",
        pos_weight=np.array([2.0]), sample_weight=np.array([0.25]),
    )  # fmt: skip
    assert _ev(p).value[0, 0] == 32752.0
    assert _ev(p, loss_in_dtype=True).value[0, 0] == np.inf
    # the weighted loss 2 * 40000 = 80000 overflows float16 though the weighted mean 80000 / 2 does not
    q = _problem("nll", [[-40000.0]], [0], "index", dtype="float16", reduction="mean", sample_weight=np.array([2.0]))
    assert _ev(q, mean_by="weight_sum").value == 40000.0
    assert _ev(q, mean_by="weight_sum", loss_in_dtype=True).value == np.inf
    # 40000 unweighted and weighted by 1: exact
    r = _problem("nll", [[-40000.0]], [0], "index", dtype="float16", reduction="mean", sample_weight=np.array([1.0]))
    assert _ev(r, mean_by="weight_sum", loss_in_dtype=True).value == 40000.0


def test_smoothing_sum_in_dtype():
    # float32 [-1.5e38, -1.5e38, 1.5e38], label 2, eps 0.1: -log_softmax = [3e38, 3e38, 0], whose class sum
    # 6e38 overflows float32 though the loss, 0.9 * 0 + 0.1 / 3 * 6e38 = 2e37, does not
    x = [[-1.5e38, -1.5e38, 1.5e38]]
    p = _problem("softmax_ce", x, [2], "index", dtype="float32", reduction="none", label_smoothing=0.1)
    assert _ev(p).value[0] == pytest.approx(2e37, rel=1e-12)
    assert _ev(p, smoothing_sum_in_dtype=True).value[0] == np.inf
    # [-1e38, -1e38, 1e38]: a class sum of 4e38 also overflows; [-5e37, -5e37, 5e37]: 2e38 does not
    q = _problem("softmax_ce", [[-5e37, -5e37, 5e37]], [2], "index", dtype="float32", label_smoothing=0.1)
    assert _ev(q, smoothing_sum_in_dtype=True).value[0] == pytest.approx(2e38 * 0.1 / 3, rel=1e-12)
    # reduced: two rows of class sum 2e38 each sum to 4e38, inf in float32, though the mean is finite
    r = _problem("softmax_ce", [[-5e37, -5e37, 5e37]] * 2, [2, 2], "index", dtype="float32", reduction="mean",
                 label_smoothing=0.1)  # fmt: skip
    assert _ev(r).value == pytest.approx(2e38 * 0.1 / 3, rel=1e-12)
    assert _ev(r, smoothing_sum_in_dtype=True).value == np.inf


def test_masked_mean_scaled_weights():
    # float32, four rows, one counted with loss 2e38 (-log_softmax of the label at logit -2e38 beside 0):
    # the mean over the counted row is 2e38; Keras weights it by total / valid = 4 (8e38, inf in float32)
    # and divides the sum by 4
    x = [[0.0, -2e38], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    p = _problem("nll", x, [1, -100, -100, -100], "index", dtype="float32", reduction="mean", ignore_index=-100)
    assert _ev(p, mean_by="valid_count").value == 2e38
    assert _ev(p, mean_by="valid_count", masked_mean_scaled_weights=True).value == 2e38  # the same mean
    held = _ev(p, mean_by="valid_count", masked_mean_scaled_weights=True, loss_in_dtype=True)
    assert held.value == np.inf
    assert _ev(p, mean_by="valid_count", loss_in_dtype=True).value == 2e38  # unscaled: 2e38 is finite


def test_log_weight_in_dtype():
    # float32, z = -3e38, t = 1/2, pw = 3/2: the loss pw t softplus(-z) + (1 - t) softplus(z) = 2.25e38, but
    # the log weight lw = 1 + (pw - 1) t = 1.25 times softplus(-z) = 3e38 is 3.75e38: inf in float32
    def bce(pw):
        return _problem("sigmoid_bce", [[-3e38]], [[0.5]], "binary", dtype="float32", pos_weight=np.array([pw]))

    assert _ev(bce(1.5)).value[0, 0] == pytest.approx(2.25e38, rel=1e-15)
    assert _ev(bce(1.5), log_weight_in_dtype=True).value[0, 0] == np.inf
    # pw = 1.1: lw = 1.05, the product 3.15e38 is finite: the exact loss 1.65e38
    assert _ev(bce(1.1), log_weight_in_dtype=True).value[0, 0] == pytest.approx(1.65e38, rel=1e-15)


def test_label_sum_in_float32():
    # float16: the two labels' terms, 40000 each, sum to 80000, past 65504, but not past float32's largest
    p = _problem("sigmoid_bce", [[-40000.0, -40000.0]], [[1.0, 1.0]], "binary", dtype="float16")
    assert _ev(p, mean_last_axis=True, sum_in_dtype=True).value[0] == np.inf
    assert _ev(p, mean_last_axis=True, sum_in_dtype=True, label_sum_in_float32=True).value[0] == 40000.0
    # bfloat16: bfloat16's largest, 255 * 2^120, plus 0.75 * 2^120 is 255.75 * 2^120: past bfloat16's
    # overflow threshold (255.5 * 2^120) but below float32's (256 * 2^120 less half an ulp)
    big, small = 255 * 2.0**120, 0.75 * 2.0**120
    b = _problem("sigmoid_bce", [[-big, -small]], [[1.0, 1.0]], "binary", dtype="bfloat16")
    assert _ev(b, mean_last_axis=True, sum_in_dtype=True).value[0] == np.inf
    held = _ev(b, mean_last_axis=True, sum_in_dtype=True, label_sum_in_float32=True).value[0]
    assert held == pytest.approx(255.75 * 2.0**119, rel=1e-12)
    # float32 is held in float32 either way: 6e38 overflows
    q = _problem("sigmoid_bce", [[-3e38, -3e38]], [[1.0, 1.0]], "binary", dtype="float32")
    assert _ev(q, mean_last_axis=True, sum_in_dtype=True, label_sum_in_float32=True).value[0] == np.inf
    assert _ev(p, mean_last_axis=True, label_sum_in_float32=True).value[0] == 40000.0  # alone: no effect
    # float64 is held in float32 too (Keras's PyTorch backend): 6e38 overflows there, not in float64
    d = _problem("sigmoid_bce", [[-3e38, -3e38]], [[1.0, 1.0]], "binary", dtype="float64")
    assert _ev(d, mean_last_axis=True, sum_in_dtype=True).value[0] == pytest.approx(3e38)
    assert _ev(d, mean_last_axis=True, sum_in_dtype=True, label_sum_in_float32=True).value[0] == np.inf


def test_upcast_half():
    # float16 bce at p = t = 0 under the 1e-12 floor: 1e-12 is 0 in float16 (0 / 0), not in float32 (0 / 1e-12)
    p = _problem("bce", [[0.0]], [[0.0]], "binary", dtype="float16", reduction="sum")
    assert np.isnan(_ev(p, grad_denominator_floor=1e-12).grad[0, 0])
    assert _ev(p, grad_denominator_floor=1e-12, upcast_half=True).grad[0, 0] == 0.0


def test_where_empty_row():
    p = _problem("softmax_ce", [[1.0, 2.0]], [0], "index", where=np.array([[False, False]]))
    assert _ev(p).value[0] == 0.0 and np.array_equal(_ev(p).grad, [[0.0, 0.0]])  # contributes nothing
    ev = _ev(p, where_empty_row="lse_minus_logit")
    assert ev.value[0] == -np.inf and np.all(np.isnan(ev.grad))  # logsumexp over no class (-inf) minus 1


def test_where_excluded_target():
    p = _problem("softmax_ce", [[0.0, 0.0, 0.0]], [2], "index", where=np.array([[True, True, False]]))
    assert _ev(p).value[0] == np.inf  # the target's class has no softmax mass
    assert _ev(p, where_excluded_target="dropped").value[0] == 0.0  # its mass is left out of the sum
    # logsumexp over the two included zeros, minus the label's own logit 0
    assert _ev(p, where_excluded_target="label_logit").value[0] == pytest.approx(math.log(2), rel=1e-15)


def test_zero_times_inf():
    p = _problem("bce", [[1.0]], [[1.0]], "binary")
    assert _ev(p).value[0, 0] == 0.0  # 0 * log 0 = 0 in the limit
    assert np.isnan(_ev(p, zero_times_inf=True).value[0, 0])  # -(1 log 1 + 0 * log 0) as written


# -- the registry -------------------------------------------------------------------------------------


def test_every_registered_policy_has_its_test():
    missing = [p.name for p in policies.REGISTRY if not callable(globals().get(f"test_{p.name}"))]
    assert missing == []


def test_convention_fields_and_schema_come_from_the_registry():
    names = [p.name for p in policies.REGISTRY]
    assert [f.name for f in fields(R.Convention)] == ["mean_by", "mean_last_axis", *names]
    assert R.POLICIES == tuple(names) and all(f"{n}:" in R.Convention.__doc__ for n in names)
    from xentcheck.expectations import SCHEMA

    props = SCHEMA["properties"]["expect"]["properties"]
    assert {n: props[n] for n in names} == policies.expect_schema()


@pytest.mark.parametrize("policy", policies.REGISTRY, ids=lambda p: p.name)
def test_a_value_outside_a_policys_schema_is_one_line(policy):
    bad = 1.5 if policy.kind is bool else "nonsense"
    raw = {
        "id": "x",
        "framework": "numpy",
        "bindings": ["b"],
        "expect": {policy.name: bad},
        "reason": "r",
        "source": "https://example.org",
    }
    with pytest.raises(ExpectationError, match=f"expect.{policy.name}") as e:
        _entry(raw, "f.toml: x")
    assert "\n" not in str(e.value)


def test_the_docs_table_and_the_schema_file_match_the_policies():
    assert _generate.drifted() == [], "run: python -m xentcheck.policies --write"


def test_the_drift_check_sees_a_changed_table():
    docs = _generate.DOCS.read_text()
    assert _generate.docs_text(docs.replace("| `prob_clip` |", "| `prob_clipped` |")) == docs
    with pytest.raises(_generate.DriftError, match="needs one"):
        _generate.docs_text(docs.replace(_generate.END, ""))


def test_a_malformed_policy_is_refused():
    with pytest.raises(ValueError, match="stage"):
        policies.Policy("p", bool, "later", ("bce",), "doc")
    with pytest.raises(ValueError, match="no hook"):
        policies.Policy("p", bool, "core", ("bce",), "doc", hook=lambda flow: None)
    with pytest.raises(ValueError, match="only a str policy"):
        policies.Policy("p", float, "core", ("bce",), "doc", values=("a",))


NEW_POLICY = '''"""A demonstration: the loss doubled after the formula."""
from ._policy import Flow, Policy


def _double(flow: Flow) -> None:
    flow.loss = 2 * flow.loss


POLICY = Policy(name="doubled", kind=bool, stage="after", ops=("bce",), hook=_double,
                doc="The loss is twice the mathematics.")
'''

CHECK_NEW_POLICY = """
import numpy as np
from xentcheck import policies, reference as R
from xentcheck.expectations import SCHEMA
from xentcheck.problem import Problem
p = Problem("t", "bce", "float64", np.array([[0.5]]), np.array([[1.0]]), "binary")
assert R.evaluate(p, R.Convention(doubled=True), np.ones((1, 1))).value[0, 0] == 2 * np.log(2)
assert SCHEMA["properties"]["expect"]["properties"]["doubled"] == {"title": "expect.doubled", "type": "boolean"}
assert "| `doubled` | `true` | after | bce | The loss is twice the mathematics. |" in policies.markdown_table()
print("ok")
"""


def test_a_new_policy_is_one_file(tmp_path):
    """A copy of the package plus one module: the Convention field, the schema, the docs table and the
    pipeline all have the new policy."""
    shutil.copytree(ROOT / "xentcheck", tmp_path / "xentcheck", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "xentcheck" / "policies" / "doubled.py").write_text(NEW_POLICY)
    out = subprocess.run(
        [sys.executable, "-c", CHECK_NEW_POLICY],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_zero_logit_grad_one_minus_target():
    # d/dz of (1 - t) z + softplus(-z) at z = 0 is 1 - t - 1/2; with the subgradient 0 of |z| and max(-z, 0)
    # it is 1 - t; a float32 subnormal logit (1e-40) counts as 0, a normal one (1.0) keeps sigmoid(z) - t
    p = _problem("sigmoid_bce", [[0.0, 1e-40, 1.0]], [[0.25, 0.25, 0.25]], "soft", dtype="float32")
    s1 = 1 / (1 + math.exp(-1.0))
    np.testing.assert_allclose(_ev(p).grad, [[0.25, 0.25, s1 - 0.25]], rtol=1e-12)
    np.testing.assert_allclose(
        _ev(p, zero_logit_grad_one_minus_target=True).grad, [[0.75, 0.75, s1 - 0.25]], rtol=1e-12
    )
    # float16 is computed in float32, where its subnormals (here 2^-24) are normal: only the exact 0 is a kink
    h = _problem("sigmoid_bce", [[0.0, 2.0**-24]], [[0.25, 0.25]], "soft", dtype="float16")
    s24 = 1 / (1 + math.exp(-(2.0**-24)))
    np.testing.assert_allclose(_ev(h, zero_logit_grad_one_minus_target=True).grad, [[0.75, s24 - 0.25]], rtol=1e-12)


def _linear(x, target, w, reduction, **kw) -> Problem:
    """A float64 linear_ce problem: hidden states ``x``, index ``target``, classifier ``w``."""
    return Problem(
        case="t",
        op="linear_ce",
        dtype="float64",
        x=x,
        target=np.array(target),
        target_kind="index",
        reduction=reduction,
        weight_matrix=w,
        **kw,
    )


def test_empty_mean_nan_grad():
    # linear_ce with every target ignored under mean: the exact gradients are 0 (0 / 0 is taken as 0 for a
    # mean over nothing only with empty_mean_zero; the gradient of nothing is 0), NaN under the policy
    p = _linear(np.ones((2, 3)), [-100, -100], np.ones((4, 3)), "mean", ignore_index=-100)
    assert np.all(_ev(p).grad == 0)
    assert np.all(np.isnan(_ev(p, empty_mean_nan_grad=True).grad))


def test_frozen_input_no_weight_grad():
    # linear_ce, one row x = [1, 2], W = 0 (uniform softmax over 2 classes), target 0, sum: dZ = [-1/2, 1/2],
    # so dX = dZ W = 0, dW = dZ^T x = [[-1/2, -1], [1/2, 1]]; with X frozen the API returns no dW: 0
    p = _linear(np.array([[1.0, 2.0]]), [0], np.zeros((2, 2)), "sum")
    np.testing.assert_allclose(_ev(p).grad, [0, 0, -0.5, -1, 0.5, 1], atol=1e-15)
    np.testing.assert_allclose(_ev(p, frozen_input_no_weight_grad=True).grad, [0, 0, 0, 0, 0, 0], atol=1e-15)


def test_bce_grad_steps_in_dtype():
    # PyTorch's float16 BCE backward: p = 1.49e-6 is 25 float16 subnormal ulps (2^-24 each), t = 0, and the
    # cotangent 0.8975 (0.89746 in float16): g p = 22.44 ulps rounds to 22, (1 - p) p = 25 ulps (1 - p is
    # 1 in float16), so the gradient is 22/25 = 0.88 (float16 0.87988), where the exact one is 0.8975
    p = Problem("t", "bce", "float16", np.array([[2.0**-24 * 25]]), np.zeros((1, 1)), "binary")
    cot = np.array([[float(np.float16(0.8975))]])
    floor = R.Convention(grad_denominator_floor=9.999999960041972e-13)
    exact = R.evaluate(p, floor, cot).grad[0, 0]
    assert exact == pytest.approx(cot[0, 0] / (1 - 2.0**-24 * 25), rel=1e-12)
    steps = R.evaluate(p, replace(floor, bce_grad_steps_in_dtype="cotangent"), cot).grad[0, 0]
    assert steps == float(np.float16(22 / 25)) == 0.8798828125
    # the kernel is handed the cotangent alone: a weight multiplies its rounded result afterwards
    w = replace(p, class_weight=np.array([0.5]))
    weighted = R.evaluate(w, replace(floor, bce_grad_steps_in_dtype="cotangent"), cot).grad[0, 0]
    assert weighted == pytest.approx(0.5 * 0.8798828125, rel=1e-12)


def test_sigmoid_quotient_steps_in_dtype():
    # bfloat16 z = 5.78125: exp(z) = 324.1 rounds to 324, 1 + 324 = 325 is a tie between 324 and 326 that
    # rounds to 324 (even), so p = 324 / 324 = 1, where the correctly rounded sigmoid 0.99692 is 1 - 2^-8:
    # with t = 0, log(1 - 1) = -inf (the clip's upper bound is 1 in bfloat16), an infinite loss where the
    # correctly rounded probability gives -log(2^-8) = 8 log 2. z = 5.75: exp(z) = 314.19 -> 314, 315 ties
    # to 316, 314 / 316 = 0.99367 -> 1 - 2^-7: below the correctly rounded 1 - 2^-8 (not monotonic), a loss
    # of 7 log 2. exp(100) overflows bfloat16: p is 1, as correctly rounded
    conv = {"probabilities_dtype": "input", "prob_clip": 1e-7}
    p = _problem("sigmoid_bce", [[5.78125, 5.75, 100.0]], [[0.0, 0.0, 1.0]], "binary", dtype="bfloat16")
    exact = _ev(p, **conv).value[0]
    assert exact[0] == pytest.approx(8 * math.log(2), rel=1e-12) and exact[1] == pytest.approx(8 * math.log(2))
    held = _ev(p, **conv, sigmoid_quotient_steps_in_dtype=True).value[0]
    assert held[0] == np.inf and held[1] == pytest.approx(7 * math.log(2), rel=1e-12) and held[2] == exact[2]
