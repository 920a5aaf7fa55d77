"""Outcomes from the check runner, driven by the framework-free fake adapter."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cases import load_catalog
from xentcheck.checks import Judge
from xentcheck.expectations import Registry, RunScope, audit, load_registry

from .fake_adapter import HONEST, FakeAdapter

CASES = {c.name: c for c in load_catalog()}


def _run(adapter, case, dtype="float32", reduction="none", check="value", registry=None):
    registry = registry or Registry()
    b = adapter.bindings()[0]
    p = CASES[case].problem("softmax_ce", dtype, reduction)
    return Judge(registry, adapter.environment()).check(adapter, b, p, check)


@pytest.mark.parametrize(
    "case",
    [
        "random_index",
        "onehot_same_problem",
        "soft_dirichlet",
        "tutorial_logits",
        "large_logits",
        "mixed_scale_rows",
        "class_weights",
        "spatial_index",
    ],
)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("check", ["value", "grad"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_honest_fake_passes(case, reduction, check, dtype):
    rec = _run(HONEST, case, dtype, reduction, check)
    assert rec.outcome == "pass", rec.reason
    assert rec.errors.tol_units <= 1.0


@pytest.mark.parametrize(
    "bug, case, reduction, check",
    [
        ({"shift": False}, "large_logits", "none", "value"),  # softmax without the max shift
        ({"weighted_mean": False}, "class_weights", "mean", "value"),  # mean ignores the class weights
        ({"grad_scale": 16.0}, "random_index", "mean", "grad"),  # gradient off by the reduction factor
    ],
)
def test_planted_bugs_fail(bug, case, reduction, check):
    rec = _run(FakeAdapter("fake", **bug), case, "float32", reduction, check)
    assert rec.outcome == "fail", rec
    # the numbers behind the verdict, for reuse: where, what the mathematics says, what came back, the bound
    w = rec.worst[0]
    assert set(w) == {"at", "expected", "got", "bound"} and w["expected"] != w["got"]
    assert abs(float(w["got"]) - float(w["expected"])) > w["bound"]


def test_unsupported_is_recorded_with_the_reason():
    p = CASES["ignore_index"].problem("softmax_ce", "float32", "none")
    rec = Judge(Registry(), {}).check(HONEST, HONEST.bindings()[0], p, "value")
    assert rec.outcome == "unsupported" and "ignore_index" in rec.reason


class Raising(FakeAdapter):
    def run(self, *a, **k):
        raise RuntimeError("kernel exploded\nsecond line")


def test_a_raising_binding_is_an_error_with_one_line():
    rec = _run(Raising("fake"), "random_index")
    assert rec.outcome == "error" and rec.reason == "RuntimeError: kernel exploded"


class Clipping(FakeAdapter):
    """Clamps every loss at 5.0: a made-up documented policy, to exercise the registry logic."""

    def run(self, binding, problem, **kw):
        out = super().run(binding, problem, **kw)
        return type(out)(np.minimum(out.value, 5.0), out.grad, out.dtype)


def _registry(tmp_path: Path, expect: str, when='{ target_kind = "index", rank = 2 }') -> Registry:
    f = tmp_path / "e.toml"
    f.write_text(f"""
[[expectation]]
id = "clamp"
framework = "fake"
bindings = ["fake.softmax_ce"]
checks = ["value"]
when = {when}
expect = {expect}
reason = "made up for the test"
source = "https://example.invalid/doc"
""")
    return load_registry([f])


def test_an_expectation_that_does_not_explain_the_difference_still_fails(tmp_path):
    # log_clamp is a bce policy: it leaves softmax_ce unchanged, so it cannot excuse a clamped loss
    reg = _registry(tmp_path, "{ log_clamp = -5.0 }")
    rec = _run(Clipping("fake"), "tutorial_logits", registry=reg)
    assert rec.outcome == "fail" and "expectation 'clamp'" in rec.reason


def test_stale_expectation_fails_when_the_behaviour_stops(tmp_path):
    # The honest fake does not deviate; a registry entry claiming float32 precision for float64 results
    # covers it, never fires, and the run-level audit reports it as stale.
    reg = _registry(tmp_path, '{ compute_dtype = "float32" }')
    recs = [_run(HONEST, "random_index", "float64", registry=reg)]
    assert recs[0].outcome == "pass" and recs[0].expectation == "clamp"
    stale, unused = audit(reg, recs, RunScope({"fake"}))
    assert stale and "no longer happens" in stale[0] and not unused


def test_unused_expectation_is_warned(tmp_path):
    reg = _registry(tmp_path, '{ compute_dtype = "float32" }', when="{ num_classes = 999 }")
    stale, unused = audit(reg, [_run(HONEST, "random_index", registry=reg)], RunScope({"fake"}))
    assert unused and not stale


def test_an_entry_whose_checks_the_run_did_not_select_is_not_unused(tmp_path):
    # The run selected float32 only (a slice leaves float64 out by design): an entry for float64 says nothing
    reg = _registry(tmp_path, '{ compute_dtype = "float32" }', when="{ num_classes = 12345 }")
    scoped = Registry(tuple(replace(e, dtypes=("float64",)) for e in reg.entries))
    assert audit(scoped, [_run(HONEST, "random_index", registry=scoped)], RunScope({"fake"})) == ([], [])
    # ...and an entry on a binding the run did not select (-k, --binding) says nothing either
    other = Registry(tuple(replace(e, bindings=("fake.other",)) for e in reg.entries))
    assert audit(other, [_run(HONEST, "random_index", registry=other)], RunScope({"fake"})) == ([], [])


def test_an_entry_naming_a_binding_its_framework_lacks_is_unused(tmp_path):
    reg = _registry(tmp_path, '{ compute_dtype = "float32" }')
    typo = Registry(tuple(replace(e, bindings=("fake.sofmax_ce",)) for e in reg.entries))
    _, unused = audit(typo, [], RunScope({"fake"}, declared={"fake::fake.softmax_ce"}))
    assert len(unused) == 1 and "'fake.sofmax_ce'" in unused[0]


class LowPrecision(FakeAdapter):
    """Computes float64 problems in float32, like TF1's compute_weighted_loss."""

    def run(self, binding, problem, **kw):
        from dataclasses import replace

        out = super().run(binding, replace(problem, dtype="float32"), **kw)
        return type(out)(out.value, out.grad, "float64")


def test_precision_expectation_turns_a_fail_into_a_deviation(tmp_path):
    assert _run(LowPrecision("fake"), "random_index", "float64").outcome == "fail"
    reg = _registry(tmp_path, '{ compute_dtype = "float32" }')
    rec = _run(LowPrecision("fake"), "random_index", "float64", registry=reg)
    assert rec.outcome == "deviation" and rec.expectation == "clamp"


def test_an_entry_whose_policy_would_differ_but_does_not_happen_fails_the_check(tmp_path):
    # scipy's xlogy gives the mathematical +inf at p = 0; an entry claiming clipping no longer happens
    from adapters.numpy_scipy import ADAPTER

    f = tmp_path / "e.toml"
    f.write_text("""
[[expectation]]
id = "clip"
framework = "numpy"
bindings = ["xlogy_categorical"]
expect = { prob_clip = 1e-7 }
reason = "made up"
source = "https://example.invalid"
""")
    reg = load_registry([f])
    b = next(b for b in ADAPTER.bindings() if b.name == "xlogy_categorical")
    p = CASES["zero_probabilities"].problem("categorical_ce", "float64", "none")
    rec = Judge(reg, {}).check(ADAPTER, b, p, "value")
    assert rec.outcome == "fail" and "no longer happens" in rec.reason and rec.expectation_differs
    ordinary = CASES["random_index"].problem("categorical_ce", "float64", "none")
    rec = Judge(reg, {}).check(ADAPTER, b, ordinary, "value")
    assert rec.outcome == "pass" and not rec.expectation_differs  # clipping changes nothing here


class SilentLabels(FakeAdapter):
    """Returns a number for an invalid label instead of raising: NaN with nan=True, else garbage 0."""

    def __init__(self, nan: bool):
        super().__init__("fake")
        self.nan = nan

    def run(self, binding, problem, **kw):
        out = super().run(binding, problem, **kw)  # the fake treats the invalid row as having no loss
        value = np.where(problem.invalid_rows(), np.nan if self.nan else 0.0, out.value)
        return type(out)(value, out.grad, out.dtype)


def test_invalid_labels_raising_passes_silent_garbage_fails_documented_nan_deviates(tmp_path):
    from adapters.numpy_scipy import ADAPTER

    p = CASES["label_out_of_range"].problem("softmax_ce", "float32", "none")
    b = next(b for b in ADAPTER.bindings() if b.name == "log_softmax")
    rec = Judge(Registry(), {}).check(ADAPTER, b, p, "value")
    # NumPy's own indexing refuses it (the adapter validates nothing on the framework's behalf)
    assert rec.outcome == "pass" and rec.reason.startswith("rejects the invalid label 5: IndexError")
    assert "(raised at numpy/" in rec.reason
    fb = HONEST.bindings()[0]
    rec = Judge(Registry(), {}).check(SilentLabels(nan=False), fb, p, "value")
    assert rec.outcome == "fail" and "silent garbage" in rec.reason
    f = tmp_path / "e.toml"
    f.write_text(
        '[[expectation]]\nid = "n"\nframework = "fake"\nbindings = ["fake.softmax_ce"]\n'
        'expect = { invalid_targets = "nan" }\nreason = "r"\nsource = "https://example.invalid"\n'
    )
    reg = load_registry([f])
    assert Judge(reg, {}).check(SilentLabels(nan=True), fb, p, "value").outcome == "deviation"
    assert Judge(reg, {}).check(SilentLabels(nan=False), fb, p, "value").outcome == "fail"
    assert Judge(reg, {}).check(SilentLabels(nan=True), fb, p, "grad").outcome == "unsupported"


def test_an_entry_for_another_release_line_is_neither_unused_nor_stale(tmp_path):
    f = tmp_path / "e.toml"
    f.write_text("""
[[expectation]]
id = "old"
framework = "fake"
bindings = ["fake.softmax_ce"]
versions = "<0.0"
expect = { compute_dtype = "float32" }
reason = "made up for the test: a behaviour of releases before 0.0"
source = "https://example.invalid/doc"
""")
    reg = load_registry([f])
    recs = [_run(HONEST, "random_index", "float64", registry=reg)]
    assert recs[0].expectation is None  # the installed fake is 0.0: outside the range
    assert audit(reg, recs, RunScope({"fake"}, {"fake": "0.0"})) == ([], [])
    assert audit(reg, recs, RunScope({"fake"}))[1]  # without versions the audit cannot tell, and warns


# -- the result contract: dtypes -------------------------------------------------------------------


class Promoting(FakeAdapter):
    """The right numbers, handed back as float64 whatever the input (or only the gradient promoted)."""

    def __init__(self, name, grad_only=False):
        super().__init__(name)
        self.grad_only = grad_only

    def run(self, binding, problem, **kw):
        out = super().run(binding, problem, **kw)
        if self.grad_only:
            return type(out)(out.value, out.grad, out.dtype, "float64")
        return type(out)(out.value, out.grad, "float64")


@pytest.mark.parametrize("check", ["value", "grad"])
def test_a_result_in_another_dtype_fails_even_when_its_numbers_are_right(check):
    rec = _run(Promoting("fake"), "random_index", "float32", check=check)
    assert rec.outcome == "fail" and "result contract" in rec.reason and "float64 for float32" in rec.reason
    assert rec.errors.tol_units <= 1.0  # the numbers themselves are right
    assert _run(Promoting("fake"), "random_index", "float64", check=check).outcome == "pass"


def test_a_gradient_in_another_dtype_fails_its_own_check():
    assert _run(Promoting("fake", grad_only=True), "random_index", check="value").outcome == "pass"
    rec = _run(Promoting("fake", grad_only=True), "random_index", check="grad")
    assert rec.outcome == "fail" and "the gradient is float64" in rec.reason


def test_a_documented_promotion_is_a_deviation_and_strict(tmp_path):
    reg = _registry(tmp_path, '{ result_dtype = "float64" }')
    rec = _run(Promoting("fake"), "random_index", "float32", registry=reg)
    assert rec.outcome == "deviation" and rec.expectation == "clamp" and rec.expectation_differs
    assert audit(reg, [rec], RunScope({"fake"})) == ([], [])
    # the promotion stops: the honest binding returns float32 where the entry documents float64
    rec = _run(HONEST, "random_index", "float32", registry=reg)
    assert rec.outcome == "fail" and "documents float64" in rec.reason


def test_the_bound_is_the_input_dtypes_not_the_results():
    # float64 input answered at float32 accuracy and reported as float32: not a float32 pass
    class Downcast(FakeAdapter):
        def run(self, binding, problem, **kw):
            from dataclasses import replace

            out = super().run(binding, replace(problem, dtype="float32"), **kw)
            return type(out)(out.value, out.grad, "float32")

    rec = _run(Downcast("fake"), "random_index", "float64")
    assert rec.outcome == "fail" and rec.compute_dtype == "float64"


# -- documented exceptions -------------------------------------------------------------------------


def test_a_documented_exception_is_a_deviation_any_other_stays_an_error(tmp_path):
    reg = _registry(tmp_path, '{ raises = "RuntimeError", message = "kernel exp" }')
    rec = _run(Raising("fake"), "random_index", registry=reg)
    assert rec.outcome == "deviation" and rec.expectation == "clamp" and "as documented: raises" in rec.reason
    assert audit(reg, [rec], RunScope({"fake"})) == ([], [])
    for expect in ('{ raises = "ValueError" }', '{ raises = "RuntimeError", message = "^other" }'):
        rec = _run(Raising("fake"), "random_index", registry=_registry(tmp_path, expect))
        assert rec.outcome == "error" and "documents" in rec.reason


def test_a_documented_exception_that_stops_fails_the_check(tmp_path):
    reg = _registry(tmp_path, '{ raises = "RuntimeError" }')
    rec = _run(HONEST, "random_index", registry=reg)
    assert rec.outcome == "fail" and "no longer happens" in rec.reason


def test_a_documented_number_past_the_dtypes_range_is_the_inf_the_binding_returns():
    # torch's BCE backward with its floored denominator gives (q - t) / floor: in float16 a number past
    # 65504 is returned as inf, as the mathematics' own -1/q there: the two cannot be told apart
    from xentcheck.reference import Evaluation
    from xentcheck.verdict import documented_differs

    scale = (np.array([1e5]), np.array([1e5]))
    math = Evaluation(np.array([1.0]), np.array([-np.inf]), scale, scale)
    floored = Evaluation(np.array([1.0]), np.array([-133158.0]), scale, scale)  # past float16's 65504
    assert not documented_differs(floored, math, "grad", "float16")
    assert documented_differs(floored, math, "grad", "float32")  # float32 holds it: distinguishable
    inside = Evaluation(np.array([1.0]), np.array([-1000.0]), scale, scale)
    assert documented_differs(inside, math, "grad", "float16")


def test_a_result_that_matches_both_the_mathematics_and_the_documented_behaviour_is_no_stale_entry():
    # softmax through a float32 clip at 1 - 2^-23 (prob_clip 1e-7): with one class the probability is 1,
    # the documented loss -log(1 - 2^-23) = 2^-23 + 2^-47 + ..., the mathematics 0 within its bound (the
    # exp-sum's and the log's roundings, 10 u). JAX's float32 log returns 2^-23, which matches both: the
    # two cannot be told apart there, so it passes; a result past the mathematics' bound and inside the
    # documented one is a deviation
    from xentcheck import reference
    from xentcheck.expectations import _entry
    from xentcheck.problem import Problem
    from xentcheck.verdict import Expected, judge

    p = Problem(
        case="t", op="softmax_ce", dtype="float32", reduction="mean", target_kind="onehot",
        x=np.zeros((2, 1)), target=np.ones((2, 1)),
    )  # fmt: skip
    raw = {
        "id": "clip",
        "framework": "fake",
        "bindings": ["b"],
        "expect": {"probabilities_dtype": "input", "renormalize": "before_clip", "prob_clip": 1e-7},
        "reason": "r",
        "source": "https://example.org",
    }
    conv = reference.Convention()
    ex = Expected(p, _entry(raw, "t.toml: clip"), conv, reference.evaluate(p, conv), "float32")
    assert ex.math.value == 0.0 and ex.documented.value > 2.0**-23
    assert judge(ex, "value", np.float32(2.0**-23), "float32").outcome == "pass"
    # a result past the mathematics' bound and inside the documented one is a deviation
    from xentcheck.tolerance import bound

    math_edge = float(bound(ex.math.value_scale, "float32"))
    documented_edge = float(ex.documented.value + bound(ex.documented.value_scale, "float32"))
    assert math_edge < documented_edge
    assert judge(ex, "value", np.float32((math_edge + documented_edge) / 2), "float32").outcome == "deviation"
    past = judge(ex, "value", np.float32(2.0**-20), "float32")  # past both bounds
    assert past.outcome == "fail" and "differs from the mathematics" in past.reason


def test_a_documented_result_held_in_a_wider_dtype_keeps_a_number_past_the_inputs_range():
    # SciPy's log_expit on float16 input runs its float64 loop and returns float64 (result_dtype): a sum
    # of losses of 240529.9 is past float16's 65504, so the mathematics (in float16) is inf, but a float64
    # result holds the number: documented, it is 240529.9, distinguishable from the mathematics' inf
    from xentcheck.reference import Evaluation
    from xentcheck.verdict import compare_check, documented_differs

    scale = (np.array(1.0), np.array(0.0))
    math = Evaluation(np.array(240529.9), np.array([0.0]), scale, scale)
    assert not compare_check(np.array(240529.9), math, "value", "float16").ok  # float16: inf
    assert compare_check(np.array(240529.9), math, "value", "float16", held="float64").ok
    assert documented_differs(math, math, "value", "float16", held="float64")
    assert not documented_differs(math, math, "value", "float16")


@pytest.mark.parametrize(
    ("dtype", "compute", "result", "held"),
    [
        ("float16", None, "float64", "float64"),  # SciPy's float64 loop: computed and returned in float64
        ("float64", "float32", None, "float32"),  # Keras NumPy: computed in float32, cast back to float64
        ("float16", "float32", None, "float16"),  # computed wider, returned in float16
        ("float16", None, None, "float16"),
    ],
)
def test_the_documented_range_is_the_narrower_of_the_computing_and_the_returned_dtype(dtype, compute, result, held):
    from types import SimpleNamespace

    from xentcheck.verdict import Expected

    entry = SimpleNamespace(compute_dtype=compute, result_dtype=result)
    ex = Expected(SimpleNamespace(dtype=dtype), entry, None, None, dtype)
    assert ex.documented_range_dtype == held
