"""Properties of the oracle that hold for every input (hypothesis, derandomised for CI)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from xentcheck import reference as R
from xentcheck.problem import Problem

logits = arrays(
    np.float64, st.tuples(st.integers(1, 6), st.integers(2, 6)), elements=st.floats(-50, 50, allow_nan=False)
)


def _p(op, x, t, kind, **kw):
    return Problem(case="h", op=op, dtype="float64", x=x, target=t, target_kind=kind, **kw)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(logits, st.data())
def test_index_equals_onehot_and_shift_invariance(z, data):
    n, c = z.shape
    t = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    a = R.evaluate(_p("softmax_ce", z, t, "index"), cotangent=np.ones(n))
    b = R.evaluate(_p("softmax_ce", z, np.eye(c)[t], "onehot"), cotangent=np.ones(n))
    np.testing.assert_allclose(a.value, b.value, rtol=1e-15, atol=0)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-15, atol=0)
    shift = data.draw(st.floats(-100, 100))
    s = R.evaluate(_p("softmax_ce", z + shift, t, "index")).value
    np.testing.assert_allclose(s, a.value, rtol=1e-12, atol=1e-12)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(logits)
def test_softmax_ce_is_nll_of_log_softmax_and_gradients_sum_to_zero(z):
    n, c = z.shape
    y = np.full(z.shape, 1.0 / c)
    ev = R.evaluate(_p("softmax_ce", z, y, "soft"), cotangent=np.ones(n))
    logp = z - np.log(np.sum(np.exp(z - z.max(1, keepdims=True)), 1, keepdims=True)) - z.max(1, keepdims=True)
    np.testing.assert_allclose(ev.value, -np.mean(logp, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ev.grad.sum(1), 0, atol=1e-14)
    assert np.all(ev.value >= np.log(c) - 1e-12)  # CE(uniform, q) >= H(uniform) = log C
