"""The oracle against arbitrary precision (mpmath) and against the worked examples every tutorial uses."""

from __future__ import annotations

import math
from dataclasses import replace

import mpmath as mp
import numpy as np
import pytest

from xentcheck import reference as R
from xentcheck.problem import Problem

mp.mp.dps = 400  # enough for cancellations like log(1 + e^-666) next to 789


def _problem(op, x, target, kind, **kw) -> Problem:
    return Problem(
        case="t", op=op, dtype="float64", x=np.asarray(x, float), target=np.asarray(target), target_kind=kind, **kw
    )


# -- mpmath formulations, written directly from the definitions -----------------------------------


def mp_softmax_ce(z, y):
    lse = mp.log(mp.fsum(mp.e ** mp.mpf(v) for v in z))
    return mp.fsum(mp.mpf(yc) * (lse - mp.mpf(zc)) for zc, yc in zip(z, y, strict=False) if yc != 0)


def mp_categorical_ce(p, y):
    return -mp.fsum(mp.mpf(yc) * mp.log(mp.mpf(pc)) for pc, yc in zip(p, y, strict=False) if yc != 0)


def mp_sigmoid_bce(z, t, pw=1.0):
    z, t = mp.mpf(z), mp.mpf(t)
    log_s, log_not_s = -mp.log1p(mp.exp(-z)), -mp.log1p(mp.exp(z))  # log sigmoid(z), log sigmoid(-z)
    return -(mp.mpf(pw) * t * log_s + (1 - t) * log_not_s)


def mp_bce(p, t):
    p, t = mp.mpf(p), mp.mpf(t)
    out = 0
    if t != 0:
        out -= t * mp.log(p)
    if t != 1:
        out -= (1 - t) * mp.log(1 - p)
    return out


def mp_grad(f, x, i):
    """d f / d x_i by mpmath's high-precision numerical differentiation."""

    def g(v):
        xs = list(map(mp.mpf, x))
        xs[i] = v
        return f(xs)

    with mp.workdps(400):  # enough digits that 1 - x stays exact next to x = 1e-300
        h = abs(mp.mpf(x[i])) * mp.mpf(10) ** -30 or mp.mpf(10) ** -30  # relative step: stays in the domain
        return +mp.diff(g, mp.mpf(x[i]), h=h)


def close(a, b, rel=1e-13, abs_=1e-300):
    return abs(float(a) - float(b)) <= rel * abs(float(b)) + abs_


# -- the worked examples ---------------------------------------------------------------------------


def test_tutorial_probabilities_give_minus_log_point_one():
    p = _problem("categorical_ce", [[0.1, 0.5, 0.1, 0.1, 0.2], [0.1, 0.6, 0.1, 0.1, 0.1]], [0, 0], "index")
    v = R.evaluate(p).value
    assert v == pytest.approx([2.302585092994046, 2.302585092994046], rel=1e-15)
    assert v[0] == v[1]  # the loss only looks at the true class's probability
    assert v[0] == -math.log(0.1)


def test_tutorial_logits_are_finite_and_exact():
    z = [123.0, 456.0, 789.0]
    for t in range(3):
        v = float(R.evaluate(_problem("softmax_ce", [z], [t], "index")).value[0])
        assert math.isfinite(v)
        assert close(v, mp_softmax_ce(z, np.eye(3)[t]), rel=1e-15)
    assert float(R.evaluate(_problem("softmax_ce", [z], [0], "index")).value[0]) == 666.0


def test_zero_probability_on_the_target_is_infinite_elsewhere_harmless():
    p = _problem("categorical_ce", [[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]], [0, 1], "index")
    ev = R.evaluate(p, cotangent=np.ones(2))
    assert ev.value[0] == np.inf and ev.value[1] == pytest.approx(math.log(2))
    assert ev.grad[0, 0] == -np.inf and ev.grad[1, 0] == 0.0


def test_soft_target_with_zero_mass_on_minus_inf_logit_is_finite():
    # 0 * log 0 = 0: a masked class with no target mass contributes nothing
    p = _problem("softmax_ce", [[0.0, -np.inf, 1.0]], [[0.5, 0.0, 0.5]], "soft")
    v = float(R.evaluate(p).value[0])
    assert close(v, mp_softmax_ce([0.0, 1.0], [0.5, 0.5]))


# -- against mpmath on random small inputs -----------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_softmax_ce_value_and_grad_vs_mpmath(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 5, size=(3, 4))
    y = rng.dirichlet(np.ones(4), size=3)
    ev = R.evaluate(_problem("softmax_ce", z, y, "soft"), cotangent=np.ones(3))
    for i in range(3):
        assert close(ev.value[i], mp_softmax_ce(z[i], y[i]))
        for j in range(4):
            assert close(ev.grad[i, j], mp_grad(lambda v, i=i: mp_softmax_ce(v, y[i]), z[i], j), rel=1e-10, abs_=1e-14)


@pytest.mark.parametrize("seed", range(5))
def test_categorical_ce_value_and_grad_vs_mpmath(seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(5), size=3)
    y = rng.dirichlet(np.ones(5), size=3)
    ev = R.evaluate(_problem("categorical_ce", p, y, "soft"), cotangent=np.ones(3))
    for i in range(3):
        assert close(ev.value[i], mp_categorical_ce(p[i], y[i]))
        for j in range(5):
            assert close(ev.grad[i, j], mp_grad(lambda v, i=i: mp_categorical_ce(v, y[i]), p[i], j), rel=1e-10)


@pytest.mark.parametrize("z", [-800.0, -30.0, -1.0, 0.0, 2.5, 40.0, 800.0])
@pytest.mark.parametrize("t", [0.0, 0.3, 1.0])
def test_sigmoid_bce_vs_mpmath_including_extremes(z, t):
    pw = 3.0
    ev = R.evaluate(_problem("sigmoid_bce", [[z]], [[t]], "soft", pos_weight=np.array([pw])), cotangent=np.ones((1, 1)))
    assert close(ev.value[0, 0], mp_sigmoid_bce(z, t, pw), abs_=1e-300)
    assert close(ev.grad[0, 0], mp_grad(lambda v: mp_sigmoid_bce(v[0], t, pw), [z], 0), rel=1e-10, abs_=1e-300)


@pytest.mark.parametrize("p", [1e-300, 1e-8, 0.25, 0.5, 0.999999, 1 - 2**-52])
@pytest.mark.parametrize("t", [0.0, 0.7, 1.0])
def test_bce_vs_mpmath(p, t):
    ev = R.evaluate(_problem("bce", [[p]], [[t]], "soft"), cotangent=np.ones((1, 1)))
    assert close(ev.value[0, 0], mp_bce(p, t))
    assert close(ev.grad[0, 0], mp_grad(lambda v: mp_bce(v[0], t), [p], 0), rel=1e-9)


def test_sigmoid_bce_equals_two_class_softmax_ce_on_zero_and_z():
    z = np.array([-7.0, -0.5, 0.0, 3.0, 60.0])
    t = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    b = R.evaluate(_problem("sigmoid_bce", z[:, None], t[:, None], "binary")).value[:, 0]
    two = np.stack([np.zeros_like(z), z], axis=1)
    s = R.evaluate(_problem("softmax_ce", two, t.astype(int), "index")).value
    np.testing.assert_allclose(b, s, rtol=1e-15)


# -- options and reductions --------------------------------------------------------------------------


def test_class_weights_and_weighted_mean():
    z = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
    t = np.array([0, 2, 1])
    w = np.array([0.5, 2.0, 3.0])
    base = R.evaluate(_problem("softmax_ce", z, t, "index")).value
    none = R.evaluate(_problem("softmax_ce", z, t, "index", class_weight=w)).value
    np.testing.assert_allclose(none, w[t] * base, rtol=1e-15)
    mean = R.evaluate(
        _problem("softmax_ce", z, t, "index", class_weight=w, reduction="mean"), R.Convention(mean_by="weight_sum")
    ).value
    assert float(mean) == pytest.approx(np.sum(w[t] * base) / np.sum(w[t]), rel=1e-15)
    count = R.evaluate(_problem("softmax_ce", z, t, "index", class_weight=w, reduction="mean")).value
    assert float(count) == pytest.approx(np.sum(w[t] * base) / 3, rel=1e-15)


def test_ignore_index_is_zero_weight_and_leaves_the_mean():
    z = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 0.5]])
    t = np.array([0, -100, 1])
    p = _problem("softmax_ce", z, t, "index", ignore_index=-100, reduction="mean")
    ev = R.evaluate(p, R.Convention(mean_by="weight_sum"))
    kept = R.evaluate(_problem("softmax_ce", z[[0, 2]], t[[0, 2]], "index", reduction="mean")).value
    assert float(ev.value) == pytest.approx(float(kept), rel=1e-15)
    assert np.all(ev.grad[1] == 0)


def test_label_smoothing_equals_its_soft_targets():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4, 5))
    t = np.array([0, 3, 4, 1])
    eps = 0.1
    smoothed = np.eye(5)[t] * (1 - eps) + eps / 5
    a = R.evaluate(_problem("softmax_ce", z, t, "index", label_smoothing=eps)).value
    b = R.evaluate(_problem("softmax_ce", z, smoothed, "soft")).value
    np.testing.assert_allclose(a, b, rtol=1e-14)


def test_cross_entropy_is_entropy_plus_kl():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(6), size=5)
    q = rng.dirichlet(np.ones(6), size=5)
    ce = R.evaluate(_problem("categorical_ce", q, p, "soft")).value
    h = R.evaluate(_problem("categorical_ce", p, p, "soft")).value
    kl = np.sum(p * np.log(p / q), axis=1)
    np.testing.assert_allclose(ce, h + kl, rtol=1e-13)
    assert np.all(ce >= h)


def test_reduced_gradient_is_the_mean_of_row_gradients():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(6, 3))
    t = rng.integers(0, 3, size=6)
    none = R.evaluate(_problem("softmax_ce", z, t, "index"), cotangent=np.ones(6)).grad
    mean = R.evaluate(_problem("softmax_ce", z, t, "index", reduction="mean")).grad
    np.testing.assert_allclose(mean, none / 6, rtol=1e-15)
    total = R.evaluate(_problem("softmax_ce", z, t, "index", reduction="sum")).grad
    np.testing.assert_allclose(total, none, rtol=1e-15)


# -- documented policies ------------------------------------------------------------------------------


def test_log_clamp_policy_gives_100_instead_of_inf():
    p = _problem("bce", [[0.0, 1.0]], [[1.0, 0.0]], "binary")
    assert np.all(np.isinf(R.evaluate(p).value))
    np.testing.assert_array_equal(R.evaluate(p, R.Convention(log_clamp=-100.0)).value, [[100.0, 100.0]])


def test_grad_floor_policy_matches_its_formula():
    p = _problem("bce", [[0.0, 0.0, 0.3]], [[1.0, 0.0, 1.0]], "binary")
    g = R.evaluate(p, R.Convention(grad_denominator_floor=1e-12), cotangent=np.ones((1, 3))).grad[0]
    assert g[0] == -1e12 and g[1] == 0.0  # at p = t = 0 the floored formula gives 0, the derivative is 1
    assert g[2] == pytest.approx(-1 / 0.3, rel=1e-15)


def test_grad_floor_is_rounded_to_the_dtype_like_a_cpp_constant():
    # 1e-12 is 0 in float16 (smallest subnormal 2**-24): p = t = 0 gives 0 / 0
    p = _problem("bce", [[0.0, 0.5]], [[0.0, 1.0]], "binary")
    conv = R.Convention(grad_denominator_floor=1e-12)
    g16 = R.evaluate(replace(p, dtype="float16"), conv, cotangent=np.ones((1, 2))).grad[0]
    assert np.isnan(g16[0]) and g16[1] == -2.0
    assert R.evaluate(replace(p, dtype="bfloat16"), conv, cotangent=np.ones((1, 2))).grad[0][0] == 0.0


def test_plain_products_policy_gives_nan_for_zero_times_log_zero_in_bce():
    p = _problem("bce", [[1.0, 0.25]], [[1.0, 1.0]], "binary")
    plain = R.evaluate(p, R.Convention(zero_times_inf=True), cotangent=np.ones((1, 2)))
    limit = R.evaluate(p, cotangent=np.ones((1, 2)))
    assert limit.value[0, 0] == 0.0 and np.isnan(plain.value[0, 0])
    assert plain.value[0, 1] == limit.value[0, 1] == math.log(4)
    assert np.isnan(plain.grad[0, 0]) and plain.grad[0, 1] == limit.grad[0, 1] == -4.0


def test_labels_in_dtype_policy_is_the_problem_with_the_rounded_label():
    z = np.random.default_rng(0).standard_normal((2, 3000))
    p = Problem(case="t", op="softmax_ce", dtype="float16", x=z, target=np.array([2049, 7]), target_kind="index")
    got = R.evaluate(p, R.Convention(labels_in_dtype=True))
    want = R.evaluate(replace(p, target=np.array([2048, 7])))  # 2049 is not a float16: it rounds to 2048
    np.testing.assert_array_equal(got.value, want.value)
    np.testing.assert_array_equal(got.grad, want.grad)
    assert got.value[0] != R.evaluate(p).value[0]


def test_probability_clip_policy_vs_mpmath():
    eps = 1e-7
    p = _problem("categorical_ce", [[0.0, 0.4, 0.6]], [0], "index")
    v = float(R.evaluate(p, R.Convention(prob_clip=eps)).value[0])
    assert close(v, -mp.log(mp.mpf(eps)))


def test_renormalize_after_clip_is_softmax_of_log_probabilities():
    probs = np.array([[0.2, 0.3, 0.4]])  # sums to 0.9
    p = _problem("categorical_ce", probs, [2], "index")
    v = float(R.evaluate(p, R.Convention(prob_clip=1e-7, renormalize="after_clip")).value[0])
    assert close(v, mp_softmax_ce(np.log(probs[0]), [0, 0, 1]))
    before = float(R.evaluate(p, R.Convention(prob_clip=1e-7, renormalize="before_clip")).value[0])
    assert close(before, -mp.log(mp.mpf(0.4) / mp.mpf(0.9)))


def test_renormalized_gradient_vs_mpmath():
    probs = [0.2, 0.3, 0.4]
    y = [0.1, 0.2, 0.7]
    p = _problem("categorical_ce", [probs], [y], "soft")
    g = R.evaluate(p, R.Convention(prob_clip=1e-7, renormalize="before_clip"), cotangent=np.ones(1)).grad[0]

    def f(v):
        s = mp.fsum(v)
        return -mp.fsum(mp.mpf(yc) * mp.log(pc / s) for pc, yc in zip(v, y, strict=False))

    for j in range(3):
        assert close(g[j], mp_grad(f, probs, j), rel=1e-10)


def test_upcast_half_rounds_constants_to_float32_and_the_result_back():
    """Inductor's float16 BCE backward: the 1e-12 floor survives (float32), and -1/1e-12 overflows
    float16 to -inf; without the upcast the floor is 0 in float16 and p = t = 0 gives 0/0."""
    from xentcheck.problem import Problem
    from xentcheck.reference import Convention, evaluate

    p = Problem("c", "bce", "float16", np.array([[0.0, 0.0]]), np.array([[0.0, 1.0]]), "binary", reduction="sum")
    eager = evaluate(p, Convention(grad_denominator_floor=1e-12))
    compiled = evaluate(p, Convention(grad_denominator_floor=1e-12, upcast_half=True))
    assert np.isnan(eager.grad[0, 0]) and eager.grad[0, 1] == -np.inf  # -1 / 0
    assert compiled.grad[0, 0] == 0.0 and compiled.grad[0, 1] == -np.inf


def _bce_problem(p, t, dtype="float64", reduction="none"):
    from xentcheck.problem import Problem

    return Problem(
        case="c",
        op="bce",
        dtype=dtype,
        x=np.asarray(p, dtype=np.float64),
        target=np.asarray(t, dtype=np.float64),
        target_kind="binary",
        reduction=reduction,
    )


def test_log_epsilon_policy_is_keras2s_formula():
    from xentcheck.reference import Convention, evaluate

    conv = Convention(prob_clip=1e-7, log_epsilon=1e-7)
    p, t, e = np.array([0.3, 0.0, 1.0]), np.array([1.0, 1.0, 0.0]), 1e-7
    ev = evaluate(_bce_problem(p, t), conv, np.ones(3))
    q = np.clip(p, e, 1 - e)
    want = -(t * np.log(q + e) + (1 - t) * np.log((1 - q) + e))
    np.testing.assert_allclose(ev.value, want, rtol=1e-15)
    assert ev.value[1] == pytest.approx(-np.log(2e-7), rel=1e-12)  # finite at p = 0: no infinite log
    assert ev.grad[0] == pytest.approx(-1 / (0.3 + e), rel=1e-15) and ev.grad[1] == 0  # clipped: no gradient


def test_log_epsilon_with_plain_products_overflows_like_float16():
    from xentcheck.reference import Convention, evaluate

    conv = Convention(prob_clip=1e-7, log_epsilon=1e-7, zero_times_inf=True)
    ev = evaluate(_bce_problem(np.array([1.0]), np.array([1.0]), "float16"), conv, np.ones(1))
    assert np.isnan(ev.grad[0])  # 0 * 1/(1 - 1 + eps), the reciprocal overflowing float16
    ev32 = evaluate(_bce_problem(np.array([1.0]), np.array([1.0]), "float32"), conv, np.ones(1))
    assert np.isfinite(ev32.grad[0])


def test_mean_divisor_epsilon_adds_to_the_count_of_valid_rows():
    from xentcheck.problem import Problem
    from xentcheck.reference import Convention, evaluate

    x = np.array([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    prob = Problem(
        case="c",
        op="softmax_ce",
        dtype="float64",
        x=x,
        target=np.array([1, -100, 0]),
        target_kind="index",
        reduction="mean",
        ignore_index=-100,
    )
    plain = evaluate(prob, Convention(mean_by="valid_count"))
    eps = evaluate(prob, Convention(mean_by="valid_count", mean_divisor_epsilon=1e-7))
    assert float(eps.value) == pytest.approx(float(plain.value) * 2 / (2 + 1e-7), rel=1e-15)


# -- where= class masks (optax) ----------------------------------------------------------------------


def test_where_mask_is_the_softmax_over_the_included_classes():
    z = np.array([[1.0, 2.0, 3.0, 0.5], [0.3, -1.0, 2.0, 1.0]])
    where = np.array([[True, False, True, True], [True, True, True, True]])
    p = _problem("softmax_ce", z, [2, 0], "index", where=where)
    e = R.evaluate(p)
    included = [zc for zc, w in zip(z[0], where[0], strict=True) if w]
    assert close(e.value[0], mp_softmax_ce(included, [0, 1, 0]))  # class 1 takes no part
    assert close(e.value[1], mp_softmax_ce(z[1], [1, 0, 0, 0]))  # a row with every class included
    assert e.grad[0, 1] == 0  # the loss does not depend on an excluded logit
    for i, c in enumerate([0, 2, 3]):
        assert close(e.grad[0, c], mp_grad(lambda v: mp_softmax_ce(v, [0, 1, 0]), included, i))


def test_where_excluding_the_target_is_infinite_and_whole_rows_contribute_nothing():
    z = np.array([[1.0, 2.0, 3.0], [0.5, 0.2, -0.1]])
    p = _problem("softmax_ce", z, [0, 1], "index", where=np.array([[False, True, True], [False, False, False]]))
    e = R.evaluate(p)
    assert e.value[0] == np.inf and e.value[1] == 0 and np.all(e.grad[1] == 0)


def test_where_policies_model_optax_on_an_excluded_target():
    z = np.array([[1.0, 2.0, 3.0]])
    where = np.array([[False, True, True]])
    dropped = R.evaluate(
        _problem("softmax_ce", z, [[1.0, 0.0, 0.0]], "onehot", where=where),
        R.Convention(where_excluded_target="dropped"),
    )
    assert dropped.value[0] == 0 and np.all(dropped.grad == 0)  # the mass on the excluded class is left out
    label = R.evaluate(
        _problem("softmax_ce", z, [0], "index", where=where), R.Convention(where_excluded_target="label_logit")
    )
    lse = math.log(math.exp(2.0) + math.exp(3.0))
    assert close(label.value[0], lse - 1.0)  # logsumexp over the included classes minus the label's logit
    sm = np.exp(z[0, 1:] - lse)
    np.testing.assert_allclose(label.grad[0], [-1.0, *sm], rtol=1e-15)


def test_where_empty_row_policy_models_optax_0_2_5():
    z = np.array([[1.0, 2.0, 3.0], [0.5, 0.2, -0.1]])
    p = _problem("softmax_ce", z, [0, 1], "index", where=np.array([[True, True, True], [False, False, False]]))
    e = R.evaluate(p, R.Convention(where_empty_row="lse_minus_logit"))
    assert e.value[1] == -np.inf and np.all(np.isnan(e.grad[1]))  # logsumexp over nothing, minus a logit
    assert close(e.value[0], mp_softmax_ce(z[0], [1, 0, 0]))  # other rows untouched


def test_probabilities_in_dtype_clip_the_rounded_softmax():
    # Keras on an eager tf.nn.softmax output: p = softmax([0, 30]) = [9.4e-14, 1) in float32, renormalised,
    # clipped to [1e-7, 1 - 1e-7]: the loss of class 0 is -log(float32(1e-7)), not the exact 30
    p = Problem(
        case="t",
        op="softmax_ce",
        dtype="float32",
        x=np.array([[0.0, 30.0]]),
        target=np.array([[1.0, 0.0]]),
        target_kind="onehot",
    )
    conv = R.Convention(probabilities_dtype="input", renormalize="before_clip", prob_clip=1e-7)
    got = R.evaluate(p, conv, cotangent=np.ones(1))
    assert got.value[0] == -math.log(float(np.float32(1e-7)))
    assert abs(R.evaluate(p).value[0] - 30.0) < 1e-12
    assert np.all(got.grad[0] == 0.0)  # both probabilities are clipped: the loss is flat there


def test_probabilities_in_dtype_sigmoid_is_bce_of_the_rounded_sigmoid_chained_through_its_derivative():
    z = np.array([[-20.0, -3.0, 0.5, 4.0, 30.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0, 0.0]])
    logits = Problem(case="t", op="sigmoid_bce", dtype="float32", x=z, target=t, target_kind="binary")
    q = np.float32(1 / (1 + np.exp(-z))).astype(np.float64)
    probs = replace(logits, op="bce", x=q)
    clip = R.Convention(prob_clip=1e-7)
    got = R.evaluate(logits, replace(clip, probabilities_dtype="input"), cotangent=np.ones((1, 5)))
    want = R.evaluate(probs, clip, cotangent=np.ones((1, 5)))
    assert np.array_equal(got.value, want.value)
    np.testing.assert_allclose(got.grad, want.grad * q * (1 - q), rtol=1e-15, atol=0)
    assert got.value[0, 4] == want.value[0, 4] and 15 < got.value[0, 4] < 17  # saturated, not 30


def test_one_hot_products_put_zero_times_minus_inf_into_index_targets():
    p = _problem("softmax_ce", [[0.0, 1.0, -np.inf]], [0], "index")
    gathered = R.evaluate(p, R.Convention(zero_times_inf=True))
    one_hot = R.evaluate(p, R.Convention(zero_times_inf=True, one_hot_products=True))
    assert np.isfinite(gathered.value[0]) and np.isnan(one_hot.value[0])


def _assert_row_1_adds_nothing(ev, clean, reduction: str) -> None:
    """``ev`` (rows 0, 1, 2; row 1 ignored) equals ``clean`` (rows 0 and 2 alone): a zero, finite gradient
    and a zero loss in row 1, the rest exactly the same."""
    assert np.all(ev.grad[1] == 0) and np.all(np.isfinite(ev.grad))
    np.testing.assert_array_equal(np.delete(ev.grad, 1, axis=0), clean.grad)
    if reduction == "none":
        assert ev.value[1] == 0 and np.array_equal(np.delete(ev.value, 1), clean.value)
    else:
        assert ev.value == clean.value


@pytest.mark.parametrize("poison", [-np.inf, np.inf, np.nan])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_an_ignored_row_contributes_nothing_whatever_its_logits_hold(poison, reduction):
    # the oracle's rule: an ignored row adds nothing to the value or the gradient, whether its logits
    # are all -inf (where asum * p - a would be 0 * NaN), hold a +inf or a NaN
    x = np.array([[0.5, -1.0, 2.0], [poison, poison, poison], [1.0, 0.0, -1.0]])
    conv = replace(R.MATH, mean_by="valid_count")  # the same divisor with and without the ignored row
    ev = R.evaluate(
        Problem(
            "t", "softmax_ce", "float64", x, np.array([2, -100, 0]), "index", reduction=reduction, ignore_index=-100
        ),
        conv,
    )
    clean = R.evaluate(
        Problem(
            "t",
            "softmax_ce",
            "float64",
            np.delete(x, 1, axis=0),
            np.array([2, 0]),
            "index",
            reduction=reduction,
            ignore_index=-100,
        ),
        conv,
    )
    _assert_row_1_adds_nothing(ev, clean, reduction)


@pytest.mark.parametrize("poison", [-np.inf, np.inf, np.nan])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("op", ["nll", "categorical_ce"])
def test_an_ignored_row_contributes_nothing_to_the_other_ignoring_ops(op, poison, reduction):
    # the same rule for the ops whose input is log-probabilities (nll) or probabilities (categorical_ce)
    probs = np.array([[0.2, 0.3, 0.5], [0.3, 0.3, 0.4], [0.1, 0.6, 0.3]])
    x = np.log(probs) if op == "nll" else probs
    x[1] = poison
    conv = replace(R.MATH, mean_by="valid_count")

    def evaluate(rows, target):
        return R.evaluate(
            Problem("t", op, "float64", x[rows], target, "index", reduction=reduction, ignore_index=-100), conv
        )

    ev, clean = evaluate([0, 1, 2], np.array([2, -100, 0])), evaluate([0, 2], np.array([2, 0]))
    _assert_row_1_adds_nothing(ev, clean, reduction)


@pytest.mark.parametrize("poison", [0.0, np.inf, np.nan])
@pytest.mark.parametrize("renormalize", ["before_clip", "after_clip"])
def test_an_ignored_row_contributes_nothing_under_renormalisation(renormalize, poison):
    # the rule holds under the probability policies too: the renormalisation's backward, (g - sum g q) / r,
    # would turn a NaN (or 0 / 0) probability row into a NaN gradient, 0 * NaN, though the row is ignored
    probs = np.array([[0.2, 0.3, 0.5], [0.3, 0.3, 0.4], [0.1, 0.6, 0.3]])
    probs[1] = poison
    conv = replace(R.MATH, mean_by="valid_count", renormalize=renormalize, prob_clip=1e-7, log_grad_quotient=True)

    def evaluate(rows, target):
        p = Problem("t", "categorical_ce", "float64", probs[rows], target, "index", reduction="mean", ignore_index=-100)
        return R.evaluate(p, conv)

    _assert_row_1_adds_nothing(evaluate([0, 1, 2], np.array([2, -100, 0])), evaluate([0, 2], np.array([2, 0])), "mean")


def test_the_zero_logit_gradient_policy_takes_the_subgradient_at_zero():
    # tf.nn.weighted_cross_entropy_with_logits differentiates |x| and max(-x, 0) with subgradient 0 at 0
    p = Problem(
        "t", "sigmoid_bce", "float32", np.array([[0.0, 0.0, 1e-40, 2.0]]), np.array([[0.0, 1.0, 0.0, 1.0]]), "binary"
    )
    math = R.evaluate(p)
    tf = R.evaluate(p, replace(R.MATH, zero_logit_grad_one_minus_target=True))
    np.testing.assert_allclose(math.grad[0, :3], [0.5, -0.5, 0.5])
    np.testing.assert_array_equal(tf.grad[0, :3], [1.0, 0.0, 1.0])
    assert tf.grad[0, 3] == math.grad[0, 3]  # away from the kink both agree


def test_an_ignored_row_contributes_nothing_under_plain_products():
    # one-hot products (Keras's sparse loss on JAX and NumPy) put 0 * -inf = NaN in a row with a -inf
    # logit; an ignored row (label -100) is masked out afterwards whatever it holds: its loss and
    # gradient are 0, while the counted row keeps its products: log 2 for logits [0, 0] and label 0
    from xentcheck.reference import Convention, evaluate

    p = Problem(
        case="t",
        op="softmax_ce",
        dtype="float64",
        x=np.array([[0.0, 0.0], [-np.inf, 0.0]]),
        target=np.array([0, -100]),
        target_kind="index",
        ignore_index=-100,
    )
    ev = evaluate(p, Convention(zero_times_inf=True, one_hot_products=True), np.ones(2))
    assert ev.value[0] == pytest.approx(np.log(2), rel=1e-15) and ev.value[1] == 0.0
    assert np.array_equal(ev.grad[1], [0.0, 0.0]) and ev.grad[0] == pytest.approx([-0.5, 0.5], rel=1e-15)


def test_an_ignored_row_contributes_nothing_under_the_probability_policies():
    # Keras's sparse loss from probabilities selects an ignored row away (where(valid, y_pred, 0) before the
    # loss, where(valid, loss, 0) after): whatever the policies' arithmetic on its NaN probabilities gives
    # (0 / NaN in the log's quotient, a NaN renormalising sum), its loss and gradient are 0. The counted
    # row [1/4, 3/4] with label 1 keeps its own: loss -log(3/4), gradient -1/q + 1/sum = [1, -1/3]
    from xentcheck.reference import Convention, evaluate

    p = Problem(
        case="t",
        op="categorical_ce",
        dtype="float32",
        x=np.array([[np.nan, np.nan], [0.25, 0.75]]),
        target=np.array([-100, 1]),
        target_kind="index",
        ignore_index=-100,
    )
    conv = Convention(renormalize="before_clip", prob_clip=1e-7, log_grad_quotient=True, clip_grad_product=True)
    ev = evaluate(p, conv, np.ones(2))
    assert ev.value[0] == 0.0 and np.array_equal(ev.grad[0], [0.0, 0.0])
    assert ev.value[1] == pytest.approx(-np.log(0.75), rel=1e-12)
    assert ev.grad[1] == pytest.approx([1.0, -1 / 3], rel=1e-12)


def test_a_nan_logit_leaves_no_limit_to_take_beside_a_pos_inf():
    # the +inf limit (all mass on the +inf class) needs every other logit to be a number: a NaN logit has
    # no value, so the row's loss and gradient are NaN, as in a row without +inf
    p = _problem("softmax_ce", [[np.inf, np.nan, 1.0], [np.inf, 0.0, 1.0]], [1, 1], "index", reduction="none")
    ev = R.evaluate(p, R.MATH, np.ones(2))
    assert np.isnan(ev.value[0]) and np.all(np.isnan(ev.grad[0]))
    assert ev.value[1] == np.inf and np.array_equal(ev.grad[1], [1.0, -1.0, 0.0])  # the limit


def test_the_clip_sees_the_renormalised_probability_as_the_dtype_holds_it():
    # float16 [2^-23, 1], the target on class 0: the sum 1 + 2^-23 is 1 in float16, so the binding's
    # renormalised q_0 is 2^-23, the clip's lower bound (1e-7 rounded to float16): the clip passes its
    # gradient, -1 / 2^-23 = -2^23, which overflows float16 (log_grad_quotient) to -inf, and the
    # renormalisation's (g - sum_k g_k q_k) / r gives -inf - -inf = NaN at class 0 and 0 + inf at class 1.
    # The exact q_0 = 2^-23 / (1 + 2^-23) is below the bound: clipped, it would pass no gradient at all
    from xentcheck.reference import Convention, evaluate

    p = Problem(
        case="t",
        op="categorical_ce",
        dtype="float16",
        x=np.array([[2.0**-23, 1.0]]),
        target=np.array([0]),
        target_kind="index",
    )
    g = evaluate(p, Convention(renormalize="before_clip", prob_clip=1e-7, log_grad_quotient=True), np.ones(1)).grad
    assert np.isnan(g[0, 0]) and g[0, 1] == np.inf


def test_a_question_asked_again_is_answered_alike_and_the_answer_is_the_callers_own():
    p = _problem("softmax_ce", [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], [2, 0], "index", reduction="none")
    cot = np.array([0.5, -2.0])
    first = R.evaluate(p, cotangent=cot)
    first.value[:] = 7.0  # a caller writing into its answer changes no later one
    first.grad[:] = 7.0
    again = R.evaluate(p, cotangent=cot)
    fresh = R._evaluate(p, R.MATH, cot)
    assert np.array_equal(again.value, fresh.value) and np.array_equal(again.grad, fresh.grad)
    other = R.evaluate(p, cotangent=np.array([1.0, 1.0]))  # another cotangent: another question
    assert not np.array_equal(other.grad, again.grad)


def test_a_sigmoid_an_ulp_off_is_within_the_gradient_bound_via_probabilities():
    # a sigmoid output layer's loss (probabilities_dtype): the gradient at a logit of 7 with target 1 is
    # p - 1 = -9.1106e-4 for the correctly rounded float32 p = 0.99908894; PyTorch's and JAX's sigmoid
    # give the float32 an ulp above (0.99908900), whose p - 1 = -9.1100e-4 is 2^-24 = 5.96e-8 away. The
    # bound must admit that ulp: the gradient's error scale includes |p| where it is not clipped
    from xentcheck.tolerance import bound

    p = Problem("t", "sigmoid_bce", "float32", np.array([[7.0]]), np.array([[1.0]]), "binary")
    ev = R.evaluate(p, replace(R.MATH, probabilities_dtype="input", prob_clip=1e-7), np.ones((1, 1)))
    p32 = np.float32(0.99908894)
    assert ev.grad[0, 0] == pytest.approx(float(p32) - 1.0, rel=1e-12)
    ulp_above = float(np.nextafter(p32, np.float32(2))) - 1.0
    assert abs(ulp_above - ev.grad[0, 0]) == pytest.approx(2.0**-24, rel=1e-6)
    assert abs(ulp_above - ev.grad[0, 0]) <= bound(ev.grad_scale, "float32")[0, 0]


def test_a_nan_logit_leaves_its_row_without_a_value_even_beside_a_plus_inf():
    # the +inf limit takes all the mass only over finite logits: lse([inf, NaN, 0]) reads the NaN, so the
    # row's loss and gradient are NaN, whatever its label; without the NaN, [inf, 1, 0] with label 1 is
    # lse - z_1 = +inf (the mass is at class 0), with gradient softmax - onehot = [1, -1, 0]
    p = _problem("softmax_ce", [[np.inf, np.nan, 0.0], [np.inf, 0.0, np.nan], [np.inf, 1.0, 0.0]], [0, 1, 1], "index")
    ev = R.evaluate(p, cotangent=np.ones(3))
    assert np.isnan(ev.value[0]) and np.isnan(ev.value[1]) and ev.value[2] == np.inf
    assert np.all(np.isnan(ev.grad[:2])) and np.array_equal(ev.grad[2], [1.0, -1.0, 0.0])


def test_a_confident_bfloat16_loss_below_half_an_ulp_of_the_exp_sum_may_be_0():
    # logits [-22.75, -13.625, 0] with label 2: the loss is log(1 + e^-13.625 + e^-22.75) = 1.21e-6, but
    # the exp-sum 1.0000012 held in bfloat16 is 1 (its ulp is 2^-7), so log S = 0 and the loss 0, as
    # PyTorch's, JAX's and TensorFlow's bfloat16 log-softmax give: the bound admits that rounding of S
    from xentcheck.tolerance import bound

    p = Problem("t", "softmax_ce", "bfloat16", np.array([[-22.75, -13.625, 0.0]]), np.array([2]), "index")
    ev = R.evaluate(p, cotangent=np.ones(1))
    assert ev.value[0] == pytest.approx(np.log1p(np.exp(-13.625) + np.exp(-22.75)), rel=1e-12)
    assert ev.value[0] > 1.2e-6 and ev.value[0] <= bound(ev.value_scale, "bfloat16")[0]
    # KAPPA = 8 roundings of u = 2^-8 on a magnitude of 1 (and the exp-sum's float32 summation term)
    assert bound(ev.value_scale, "bfloat16")[0] == pytest.approx(8 * 2.0**-8, rel=1e-3)


def test_a_per_example_weight_after_the_last_axis_mean_is_no_overflow_of_the_oracles_own():
    # Keras's binary losses average over the last axis, then weight each example: logits [1.7e308, 0, 0]
    # with target 0 have losses [1.7e308, log 2, log 2], whose mean is 5.67e307, and the weight 1.5 gives
    # 8.5e307, finite; weighting each element first would overflow float64 (1.5 * 1.7e308)
    x = np.array([[1.7e308, 0.0, 0.0]])
    p = Problem("t", "sigmoid_bce", "float64", x, np.zeros((1, 3)), "binary", sample_weight=np.array([1.5]))
    ev = R.evaluate(p, replace(R.MATH, mean_last_axis=True), np.ones(1))
    assert ev.value[0] == pytest.approx(1.5 * ((1.7e308 + 2 * np.log(2)) / 3), rel=1e-15)
    assert ev.grad[0] == pytest.approx([0.5, 0.25, 0.25], rel=1e-15)  # 1.5 * sigmoid(z) / 3


def test_the_clip_decides_on_the_probability_as_the_dtype_holds_it():
    # p = [1 - 2^-23, 1.0607592e-7] (float32) sums to 0.99999999, so the renormalised q0 is 0.99999989,
    # above the float32 upper bound 1 - 2^-23 = 0.99999988 exactly, but in float32 it is that bound:
    # inside the clip (PyTorch's clamp passes the gradient at a bound), so -log q0 has the gradient of
    # the renormalisation, (g_q - sum_k g_q,k q_k) / r = [(1 - 1/q0) / r, 1 / r], not 0
    p0, p1 = float(np.float32(1 - 2.0**-23)), float(np.float32(1.0607592315636794e-07))
    p = Problem("t", "categorical_ce", "float32", np.array([[p0, p1]]), np.array([0]), "index")
    ev = R.evaluate(p, replace(R.MATH, renormalize="before_clip", prob_clip=1e-7), np.ones(1))
    r = p0 + p1
    assert p0 / r > p0  # exactly, outside the clip (p0 is the float32 bound 1 - 2^-23)
    # (to float32's precision: the oracle takes the log of the clipped q0, the bound, an ulp from q0)
    assert ev.grad[0] == pytest.approx([(1 - r / p0) / r, 1 / r], rel=1e-7, abs=1e-14)


def test_an_excluded_label_keeps_its_own_gradient_when_the_included_softmax_has_none():
    # optax's integer-label loss under where=: logsumexp over the included classes minus the label's
    # logit. Row [-inf, 0] with label 1 and class 1 excluded: the included logsumexp is over [-inf] alone,
    # -inf, so the loss is -inf and class 0's gradient exp(-inf - -inf) is NaN; the label's gradient is
    # -1 from its own logit alone (the masked logsumexp gives an excluded class exactly 0)
    p = _problem("softmax_ce", [[-np.inf, 0.0]], [1], "index", where=np.array([[True, False]]))
    ev = R.evaluate(p, replace(R.MATH, where_excluded_target="label_logit"), np.ones(1))
    assert ev.value[0] == -np.inf and np.isnan(ev.grad[0, 0]) and ev.grad[0, 1] == -1.0


@pytest.mark.parametrize("poison", [np.nan, 0.0])
def test_an_ignored_row_is_masked_beside_a_renormalised_counted_row(poison):
    # Keras's sparse loss from probabilities divides each row by its sum before the clip; an ignored row
    # of NaNs (or of zeros: 0/0) renormalises to NaN, but the row is masked out: its loss and gradient
    # are 0. The counted row [0.2, 0.6] with label 1 renormalises to [0.25, 0.75]: loss -log 0.75, and
    # the gradient of -log(p1 / (p0 + p1)) is [1/(p0 + p1), 1/(p0 + p1) - 1/p1] = [1.25, 1.25 - 1/0.6]
    p = Problem(
        "t", "categorical_ce", "float64", np.array([[0.2, 0.6], [poison, poison]]), np.array([1, -100]), "index",
        ignore_index=-100,
    )  # fmt: skip
    ev = R.evaluate(p, replace(R.MATH, renormalize="before_clip", prob_clip=1e-7), np.ones(2))
    assert ev.value[0] == pytest.approx(-np.log(0.75), rel=1e-14) and ev.value[1] == 0.0
    assert ev.grad[0] == pytest.approx([1.25, 1.25 - 1 / 0.6], rel=1e-14)
    assert np.array_equal(ev.grad[1], [0.0, 0.0])
