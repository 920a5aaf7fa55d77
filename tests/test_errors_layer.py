"""The errors layer (malformed targets) and the oracle's answers at +inf logits and empty means,
framework-free: the mutants module's honest implementation and small planted misbehaviours."""

from dataclasses import replace

import numpy as np
import pytest

from cases import CaseError, load_catalog
from xentcheck import reference as R
from xentcheck.checks import Judge, unsupported_reason
from xentcheck.expectations import Registry, RunScope, audit, load_registry
from xentcheck.problem import Problem
from xentcheck.verdict import overflowed

from .mutants import MutantAdapter

CASES = {c.name: c for c in load_catalog()}
HONEST = MutantAdapter()


def _binding(op):
    return next(b for b in HONEST.bindings() if b.caps.op == op)


def _check(adapter, case, op, reduction="none", registry=None, dtype="float32"):
    registry = registry or Registry()
    p = CASES[case].problem(op, dtype, reduction)
    return Judge(registry, adapter.environment()).check(adapter, _binding(op), p, "value")


#: the condition on the input that describes each case these tests register a behaviour for
WHEN = {
    "binary_targets_squeezed": '{ malformed = "target_rank" }',
    "int_binary_targets": '{ malformed = "int_targets" }',
    "label_out_of_range": '{ out_of_range_labels = "at_or_above_classes" }',
}


def _entry(tmp_path, binding: str, case: str, expect: str):
    """A registry of one entry for the honest implementation's ``binding`` on inputs like ``case``'s."""
    f = tmp_path / "e.toml"
    f.write_text(
        f'[[expectation]]\nid = "e"\nframework = "honest"\nbindings = ["{binding}"]\nwhen = {WHEN[case]}\n'
        f'expect = {expect}\nreason = "r"\nsource = "https://example.invalid"\n'
    )
    return load_registry([f])


class Lenient(MutantAdapter):
    """Takes whatever target it is handed, as libraries without input checks do: floats as labels
    (truncated), a shorter target by dropping examples, a squeezed target by NumPy broadcasting."""

    def _compute(self, p, cotangent):
        t, _ = p.handed_target()
        if p.target_kind == "index":
            t = np.asarray(t).astype(np.int64).reshape(-1)[: p.x.shape[0]]
            return super()._compute(replace(p, x=p.x[: len(t)], target=t, malformed=None), cotangent)
        x, t = np.broadcast_arrays(p.x, np.asarray(t, dtype=np.float64))
        return super()._compute(replace(p, x=x, target=t, malformed=None), cotangent)


def test_malformed_targets_are_handed_over_in_the_wrong_form():
    p = CASES["float_labels"].problem("softmax_ce", "float32", "none")
    t, as_index = p.handed_target()
    assert not as_index and np.array_equal(t, p.target)
    t, as_index = CASES["labels_extra_axis"].problem("softmax_ce", "float32", "none").handed_target()
    assert as_index and t.shape == (4, 1)
    t, _ = CASES["binary_targets_squeezed"].problem("bce", "float32", "none").handed_target()
    assert t.shape == (4,)
    t, as_index = CASES["int_dense_targets"].problem("softmax_ce", "float32", "none").handed_target()
    assert as_index and t.dtype == np.int64
    p = CASES["targets_missing_row"].problem("softmax_ce", "float32", "none")
    assert p.handed_target()[0].shape == (3,) and not p.has_loss


@pytest.mark.parametrize(
    "case, op",
    [
        ("float_labels", "softmax_ce"),
        ("labels_extra_axis", "softmax_ce"),
        ("targets_missing_row", "softmax_ce"),
        ("binary_targets_squeezed", "bce"),
        ("binary_targets_missing_row", "sigmoid_bce"),
    ],
)
def test_raising_on_a_malformed_target_passes_and_says_where(case, op):
    rec = _check(HONEST, case, op)
    assert rec.outcome == "pass" and rec.reason.startswith("rejects the malformed target"), rec.reason
    assert "raised at tests/mutants.py:" in rec.reason


def test_the_exact_loss_of_an_unambiguous_malformed_target_passes():
    class TakesFloats(MutantAdapter):
        def _compute(self, p, cotangent):  # float labels read as the integers they equal
            return super()._compute(replace(p, malformed=None), cotangent)

    rec = _check(TakesFloats(), "float_labels", "softmax_ce")
    assert rec.outcome == "pass" and "exact loss" in rec.reason
    assert _check(TakesFloats(), "targets_missing_row", "softmax_ce").outcome == "fail"  # no loss exists


def test_silent_garbage_fails_and_a_documented_broadcast_deviates(tmp_path):
    lenient = Lenient()
    rec = _check(lenient, "targets_missing_row", "softmax_ce")
    assert rec.outcome == "fail" and "silent garbage" in rec.reason
    rec = _check(lenient, "binary_targets_squeezed", "bce")  # (4, 1) with (4,) -> (4, 4)
    assert rec.outcome == "fail" and "(4, 4)" in rec.reason
    reg = _entry(tmp_path, "np.bce", "binary_targets_squeezed", '{ invalid_targets = "broadcast" }')
    for red in ("none", "mean"):
        assert _check(lenient, "binary_targets_squeezed", "bce", red, reg).outcome == "deviation"
    rec = _check(HONEST, "binary_targets_squeezed", "bce", "none", reg)
    assert rec.outcome == "fail" and "no longer happens" in rec.reason


@pytest.mark.parametrize(
    "entry, message",
    [
        ("invalid = { value = 5 }", "needs index targets and invalid.rows"),
        ('invalid = { value = 5, rows = [0], form = "missing_row" }', "either value"),
        ('invalid = { form = "upside_down" }', "is not one of"),
    ],
)
def test_a_malformed_invalid_table_is_one_clear_line(tmp_path, entry, message):
    f = tmp_path / "c.toml"
    f.write_text(
        f'[[case]]\nname = "x"\ncategory = "invalid targets"\nops = ["softmax_ce"]\nshape = [2, 3]\n'
        f'seed = 1\nlogits = {{ dist = "normal" }}\ntargets = {{ kind = "index" }}\n{entry}\n'
    )
    with pytest.raises(CaseError, match=message):
        load_catalog([f])


def _softmax(z, y, reduction="none", **kw):
    p = Problem(
        case="t",
        op="softmax_ce",
        dtype="float64",
        x=np.asarray(z, float),
        target=np.asarray(y),
        target_kind="index" if np.asarray(y).dtype.kind == "i" else "soft",
        reduction=reduction,
        **kw,
    )
    return R.evaluate(p, R.MATH, np.ones(len(z)) if reduction == "none" else None), p


def test_a_single_inf_logit_takes_all_the_mass_in_the_limit():
    ev, _ = _softmax([[np.inf, 1.0, 2.0], [1.0, np.inf, 2.0]], np.array([1, 1]))
    assert ev.value[0] == np.inf and ev.value[1] == 0.0  # off the +inf class: +inf; on it: 0
    assert np.array_equal(ev.grad, [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]])
    p = _softmax([[np.inf, 1.0, 2.0]], np.array([[0.5, 0.5, 0.0]]))[1]
    nan = R.evaluate(p, R.Convention(inf_logit_nan="target_mass"), np.ones(1))
    assert np.isnan(nan.value[0]) and np.all(np.isnan(nan.grad))  # IEEE: inf - inf in the max shift


def test_a_fully_ignored_mean_is_nan_with_a_zero_gradient():
    _, p = _softmax([[1.0, 2.0], [0.5, 0.0]], np.array([-100, -100]), "mean", ignore_index=-100)
    ev = R.evaluate(p, R.Convention(mean_by="valid_count"))
    assert np.isnan(ev.value) and np.array_equal(ev.grad, np.zeros((2, 2)))
    zero = R.evaluate(p, R.Convention(mean_by="valid_count", empty_mean_zero=True))
    assert zero.value == 0.0


def test_an_unnormalised_target_scales_the_softmax_term_unless_the_api_assumes_a_unit_sum():
    ev, p = _softmax([[0.0, 0.0]], np.array([[1.0, 1.0]]))
    assert np.allclose(ev.grad, [[0.0, 0.0]])  # 2 * 0.5 - 1
    assert np.allclose(R.evaluate(p, R.Convention(grad_unit_target_sum=True), np.ones(1)).grad, [[-0.5, -0.5]])


def test_a_log_gradient_held_in_float16_overflows_where_the_exact_one_is_finite():
    q = np.array([[2.0**-20, 1.0 - 2.0**-20]])
    p = Problem(
        case="t", op="categorical_ce", dtype="float16", x=q, target=np.array([[0.01, 0.99]]), target_kind="soft"
    )
    exact = R.evaluate(p, R.MATH, np.ones(1)).grad
    held = R.evaluate(p, R.Convention(log_grad_in_dtype=True), np.ones(1)).grad
    assert np.isfinite(exact[0, 0]) and abs(exact[0, 0]) < 65504 and held[0, 0] == -np.inf


def test_a_true_value_beyond_the_dtype_is_right_as_inf():
    assert np.array_equal(overflowed(np.array([4e44, -4e44, 1e30, np.nan]), "float32")[:3], [np.inf, -np.inf, 1e30])
    assert overflowed(np.array([7e4]), "float16")[0] == np.inf


def test_what_capabilities_rule_out_is_settled_without_running():
    sklearn_like = replace(
        _binding("categorical_ce"), caps=replace(_binding("categorical_ce").caps, min_classes=(2, "needs two"))
    )
    p = CASES["one_class"].problem("categorical_ce", "float32", "none")
    assert "at least 2 classes" in unsupported_reason(sklearn_like, p, "value")
    bad = CASES["float_labels"].problem("softmax_ce", "float32", "none")
    assert "invalid input" in unsupported_reason(_binding("softmax_ce"), bad, "grad")
    assert unsupported_reason(_binding("softmax_ce"), bad, "value") is None


def test_binary_losses_at_infinite_logits_take_the_limit_and_each_formula_its_own_nan():
    z = np.array([[np.inf] * 3, [-np.inf] * 3])
    t = np.array([[0.0, 0.5, 1.0]] * 2)
    p = Problem(case="t", op="sigmoid_bce", dtype="float64", x=z, target=t, target_kind="soft")
    limit = R.evaluate(p, R.MATH, np.ones(z.shape))
    assert np.array_equal(limit.value, [[np.inf, np.inf, 0.0], [0.0, np.inf, np.inf]])
    assert np.array_equal(limit.grad, [[1.0, 0.5, 0.0], [0.0, -0.5, -1.0]])
    nan_where = {
        "max_shift": [[1, 1, 1], [1, 0, 0]],
        "linear": [[0, 0, 1], [1, 1, 1]],
        "products": [[0, 0, 1], [1, 0, 0]],
    }
    for formula, mask in nan_where.items():
        v = R.evaluate(p, R.Convention(sigmoid_formula=formula), np.ones(z.shape)).value
        assert np.array_equal(np.isnan(v), np.array(mask, bool)), formula
        assert np.array_equal(v[~np.isnan(v)], limit.value[~np.isnan(v)])  # elsewhere the limit


def test_a_loss_cast_to_the_integer_target_dtype_is_checked_exactly(tmp_path):
    class Truncating(MutantAdapter):  # computes the loss, then casts it like an int64 target
        def run(self, binding, problem, **kw):
            out = super().run(binding, replace(problem, malformed=None), **kw)
            return type(out)(np.trunc(out.value), out.grad, "int64")

    reg = _entry(tmp_path, "np.sigmoid_bce", "int_binary_targets", '{ invalid_targets = "int_truncated" }')
    assert _check(Truncating(), "int_binary_targets", "sigmoid_bce", registry=reg).outcome == "deviation"
    assert _check(Truncating(), "int_binary_targets", "sigmoid_bce").outcome == "fail"
    assert _check(HONEST, "int_binary_targets", "sigmoid_bce", registry=reg).outcome == "fail"  # exact, not truncated


def test_int_truncated_accepts_only_the_floor_or_the_ceiling(tmp_path):
    reg = _entry(tmp_path, "np.sigmoid_bce", "int_binary_targets", '{ invalid_targets = "int_truncated" }')
    p = CASES["int_binary_targets"].problem("sigmoid_bce", "float32", "none")
    exact = R.evaluate(replace(p, malformed=None), R.MATH).value

    class Returning(MutantAdapter):
        def __init__(self, values):
            super().__init__()
            self.values = values

        def run(self, binding, problem, **kw):
            from adapters import Output

            return Output(np.asarray(self.values, np.float64), None, "int64")

    assert _check(Returning(np.floor(exact)), "int_binary_targets", "sigmoid_bce", registry=reg).outcome == "deviation"
    off = np.floor(exact)
    off.flat[0] += 2  # an integer, but neither neighbour of the exact loss
    assert _check(Returning(off), "int_binary_targets", "sigmoid_bce", registry=reg).outcome == "fail"


def test_int_truncated_of_a_label_mean_truncates_each_label(tmp_path):
    # F.multilabel_soft_margin_loss compiled on integer logits: each label's term is cast to int64, their
    # integer sum divided by the labels' count (Inductor, torch 2.13.0): row [2, -1, 3] with targets
    # [1, 0, 1] has terms softplus(-2), softplus(-1), softplus(-3) = 0.127, 0.313, 0.049, all truncated to
    # 0; row [-3, 4, 0] with [1, 0, 1]: 3.049, 4.018, 0.693 -> 3, 4, 0: a mean of 7 / 3
    from xentcheck.check import Verdict
    from xentcheck.invalid_input import Returned, _int_truncated

    x, t = np.array([[2.0, -1.0, 3.0], [-3.0, 4.0, 0.0]]), np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    p = Problem(case="t", op="sigmoid_bce", dtype="float32", x=x, target=t, target_kind="binary")
    conv = R.Convention(mean_last_axis=True)
    ev = R.evaluate(p, conv, np.ones(2))
    entry = _entry(tmp_path, "np.sigmoid_bce", "int_binary_targets", '{ invalid_targets = "int_truncated" }').entries[0]

    def verdict(got):
        r = Returned(p, np.asarray(got, float), ev, "float32", conv, entry, "int_truncated", "t", Verdict("fail"))
        return _int_truncated(r).outcome

    assert verdict([0.0, np.float32(7 / 3)]) == "deviation"
    assert verdict(np.trunc(ev.value)) == "fail"  # the whole mean truncated: [0, 2], not this binding's form
    assert verdict([0.0, 2.0]) == "fail"


def test_the_error_input_table_pins_the_exception_type(tmp_path):
    # the honest implementation raises ValueError("label out of range") for an out-of-range label
    ok = _entry(tmp_path, "np.softmax_ce", "label_out_of_range", '{ raises = "ValueError", message = "out of range" }')
    rec = _check(HONEST, "label_out_of_range", "softmax_ce", registry=ok)
    assert rec.outcome == "pass" and "as documented" in rec.reason and rec.raised["type"] == "ValueError"
    assert audit(ok, [rec], RunScope({"honest"})) == ([], [])
    other = _entry(tmp_path, "np.softmax_ce", "label_out_of_range", '{ raises = "IndexError" }')
    rec = _check(HONEST, "label_out_of_range", "softmax_ce", registry=other)
    assert rec.outcome == "fail" and "with ValueError where expectation 'e' documents IndexError" in rec.reason


def test_a_documented_refusal_that_stops_fails(tmp_path):
    class Silent(MutantAdapter):  # returns NaN for every row instead of raising
        def run(self, binding, problem, **kw):
            from adapters import Output

            return Output(np.full(problem.target.shape, np.nan), None, problem.dtype)

    reg = _entry(tmp_path, "np.softmax_ce", "label_out_of_range", '{ raises = "ValueError" }')
    rec = _check(Silent(), "label_out_of_range", "softmax_ce", registry=reg)
    assert rec.outcome == "fail" and "no longer raises ValueError" in rec.reason


def test_integer_logits_and_a_class_count_mismatch_are_handed_over_as_such():
    p = CASES["int_logits"].problem("softmax_ce", "float32", "none")
    x, as_int = p.handed_x()
    assert as_int and x.dtype == np.int64 and np.array_equal(x, p.x) and p.has_loss
    m = CASES["target_class_mismatch"].problem("softmax_ce", "float32", "none")
    t, _ = m.handed_target()
    assert t.shape == (4, 6) and m.x.shape == (4, 5) and not m.has_loss
    assert _check(HONEST, "target_class_mismatch", "softmax_ce").outcome == "pass"  # the honest one raises


class OneHotLabels(MutantAdapter):
    """One-hot encodes its labels, as Keras's sparse loss does on JAX: a label outside [0, C) encodes to
    a row of zeros, so that row's loss is silently 0."""

    def _compute(self, p, cotangent):
        if p.invalid_target is None:
            return super()._compute(p, cotangent)
        bad = p.invalid_rows()
        value, g = super()._compute(replace(p, target=np.where(bad, 0, p.target), invalid_target=None), cotangent)
        return np.where(bad, 0.0, value), g


def test_an_invalid_label_that_one_hot_encodes_to_zero_is_garbage_unless_documented(tmp_path):
    rec = _check(OneHotLabels(), "label_out_of_range", "softmax_ce")
    assert rec.outcome == "fail" and "silent garbage" in rec.reason
    reg = _entry(tmp_path, "np.softmax_ce", "label_out_of_range", '{ invalid_targets = "zero" }')
    assert _check(OneHotLabels(), "label_out_of_range", "softmax_ce", registry=reg).outcome == "deviation"
