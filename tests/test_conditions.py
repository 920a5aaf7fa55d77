"""Properties of the input (xentcheck.conditions): each a small function with its own test, and the
registry's ``when`` conditions over them (selection, and one line for a bad condition)."""

from dataclasses import replace

import numpy as np
import pytest

from xentcheck import conditions as c
from xentcheck.check import Check
from xentcheck.expectations import ExpectationError, load_registry
from xentcheck.problem import Problem

INF = np.inf


def _p(x, target, op="softmax_ce", kind="index", **kw) -> Problem:
    return Problem(
        case="t",
        op=op,
        dtype=kw.pop("dtype", "float32"),
        x=np.asarray(x, dtype=np.float64),
        target=np.asarray(target, dtype=np.int64 if kind == "index" else np.float64),
        target_kind=kind,
        **kw,
    )


PLAIN = _p([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]], [2, 0])


def test_empty_batch():
    assert c.empty_batch(_p(np.zeros((0, 3)), np.zeros((0,))))
    assert not c.empty_batch(PLAIN)


def test_rank_spatial_rank_and_layout():
    seg = _p(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4)), channels_first=True)
    assert (c.rank(seg), c.spatial_rank(seg), c.layout(seg)) == (4, 2, "channels_first")
    assert (c.rank(PLAIN), c.spatial_rank(PLAIN), c.layout(PLAIN)) == (2, 0, "channels_last")


def test_plain_descriptors():
    p = replace(PLAIN, reduction="mean", label_smoothing=0.1, dtype="bfloat16")
    assert (c.dtype(p), c.num_classes(p), c.op(p), c.target_kind(p), c.reduction(p), c.label_smoothing(p)) == (
        "bfloat16",
        3,
        "softmax_ce",
        "index",
        "mean",
        0.1,
    )
    assert c.options(p) == {"label_smoothing"}


@pytest.mark.parametrize(
    "value, pos, neg, nan",
    [(INF, True, False, False), (-INF, False, True, False), (np.nan, False, False, True), (1e30, False, False, False)],
)
def test_non_finite_inputs(value, pos, neg, nan):
    p = _p([[0.0, value], [1.0, 2.0]], [0, 1])
    assert (c.has_pos_inf(p), c.has_neg_inf(p), c.has_nan(p), c.has_inf(p)) == (pos, neg, nan, pos or neg)


def test_has_zero_counts_subnormals():
    assert c.has_zero(_p([[-0.0, 1.0]], [0])) and c.has_zero(_p([[1e-40, 1.0]], [0]))  # a float32 subnormal
    assert not c.has_zero(_p([[1e-30, 1.0]], [0]))
    assert not c.has_zero(_p([[1e-40, 1.0]], [0], dtype="float64"))  # normal in float64


def test_neg_inf_on_target_mass():
    assert c.neg_inf_on_target_mass(_p([[-INF, 0.0], [0.0, 1.0]], [0, 1]))
    assert not c.neg_inf_on_target_mass(_p([[-INF, 0.0], [0.0, 1.0]], [1, 1]))  # a masked logit off target
    ignored = _p([[-INF, 0.0], [0.0, 1.0]], [0, 1], ignore_index=0)
    assert not c.neg_inf_on_target_mass(ignored)  # the row does not count
    probs = _p([[0.0, 1.0], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]], op="categorical_ce", kind="soft")
    assert c.neg_inf_on_target_mass(probs)  # a zero probability where the target has mass


def test_row_without_target_mass():
    assert c.row_without_target_mass(_p(np.zeros((2, 2)), [[0.0, 0.0], [0.5, 0.5]], kind="soft"))
    assert not c.row_without_target_mass(_p(np.zeros((2, 2)), [[1.0, 0.0], [0.5, 0.5]], kind="soft"))
    assert not c.row_without_target_mass(PLAIN)


def test_ignored_rows():
    some = replace(PLAIN, ignore_index=2)
    every = replace(PLAIN, target=np.array([-100, -100]), ignore_index=-100)
    assert c.has_ignored_rows(some) and not c.all_rows_ignored(some)
    assert c.has_ignored_rows(every) and c.all_rows_ignored(every)
    assert not c.has_ignored_rows(PLAIN) and not c.all_rows_ignored(PLAIN)
    empty = _p(np.zeros((0, 3)), np.zeros((0,)), ignore_index=-100)
    assert not c.all_rows_ignored(empty)  # an empty batch is not "every row ignored"


def test_out_of_range_labels_and_how():
    x = np.zeros((4, 3))
    assert c.out_of_range_labels(_p(x, [0, 3, 1, 2])) == {"at_or_above_classes"}
    assert c.out_of_range_labels(_p(x, [0, -1, -3, 2])) == {"negative"}
    assert c.out_of_range_labels(_p(x, [0, -4, 1, 7])) == {"below_minus_classes", "at_or_above_classes"}
    assert c.out_of_range_labels(_p(x, [0, -1, 1, 2], ignore_index=-1)) == set()  # ignored, not out of range
    assert c.out_of_range_labels(_p(x, np.eye(4, 3), kind="onehot")) == set()


def test_label_overflows_dtype():
    x = np.zeros((2, 70000))
    assert c.label_overflows_dtype(_p(x, [0, 65520], dtype="float16"))
    assert not c.label_overflows_dtype(_p(x, [0, 65504], dtype="float16"))  # float16's largest finite
    assert not c.label_overflows_dtype(_p(x, [0, 65520], dtype="float32"))


def test_target_rows_normalised():
    assert c.target_rows_normalised(PLAIN)
    assert c.target_rows_normalised(_p(np.zeros((2, 2)), [[0.25, 0.75], [1.0, 0.0]], kind="soft"))
    assert not c.target_rows_normalised(_p(np.zeros((2, 2)), [[0.5, 0.75], [1.0, 0.0]], kind="soft"))
    assert not c.target_rows_normalised(_p(np.zeros((2, 2)), [[0.0, 0.0], [1.0, 0.0]], kind="soft"))
    # one unit of float32 rounding in the sum is still a distribution
    assert c.target_rows_normalised(_p(np.zeros((1, 2)), [[0.5, 0.5 + 2.0**-24]], kind="soft"))
    binary = _p(np.zeros((2, 2)), [[0.5, 0.75], [1.0, 0.0]], op="sigmoid_bce", kind="soft")
    assert c.target_rows_normalised(binary)  # binary targets are no distribution over classes


def test_target_outside_unit_interval():
    assert c.target_outside_unit_interval(_p(np.zeros((1, 2)), [[1.5, -0.5]], kind="soft"))
    assert not c.target_outside_unit_interval(_p(np.zeros((1, 2)), [[1.0, 0.0]], kind="soft"))
    assert not c.target_outside_unit_interval(PLAIN)


def test_malformed():
    assert c.malformed(PLAIN) == "none"
    assert c.malformed(replace(PLAIN, malformed="target_rank")) == "target_rank"


def test_where_properties():
    x = np.zeros((3, 3))
    where = np.array([[True, True, False], [False, False, False], [True, True, True]])
    on_target = _p(x, [2, 0, 1], where=where)
    assert c.where_excludes_target_mass(on_target) and c.where_empty_row(on_target)
    elsewhere = _p(x, [0, 0, 1], where=where)
    assert not c.where_excludes_target_mass(elsewhere)  # row 1 is empty: it contributes nothing
    assert not c.where_empty_row(_p(x, [0, 0, 1], where=np.ones((3, 3), dtype=bool)))
    assert not c.where_excludes_target_mass(PLAIN) and not c.where_empty_row(PLAIN)


def test_every_property_is_documented_and_typed():
    for name, prop in c.PROPERTIES.items():
        assert prop.doc and prop.kind in (bool, int, float, str), name
        assert name in c.SCHEMA["properties"]
    assert set(c.describe(PLAIN)) == set(c.PROPERTIES)


def test_conditions_hold_as_conjunctions_of_any_of():
    p = _p([[0.0, INF], [1.0, 2.0]], [0, 5])
    assert c.holds({"has_pos_inf": True, "rank": 2}, p)
    assert not c.holds({"has_pos_inf": True, "rank": 4}, p)
    assert c.holds({"out_of_range_labels": ["negative", "at_or_above_classes"]}, p)
    assert not c.holds({"out_of_range_labels": "negative"}, p)
    assert c.holds({"dtype": ["float16", "float32"]}, p)


ENTRY = """
[[expectation]]
id = "x"
framework = "torch"
bindings = ["F.cross_entropy"]
when = WHEN
expect = { inf_logit_nan = "row" }
reason = "r"
source = "https://example.invalid"
"""


def _registry(tmp_path, when: str):
    f = tmp_path / "e.toml"
    f.write_text(ENTRY.replace("WHEN", when))
    return load_registry([f])


def test_an_entry_selects_by_the_input_not_the_case_name(tmp_path):
    reg = _registry(tmp_path, "{ has_pos_inf = true }")
    key = Check(
        "torch", "F.cross_entropy", "any_users_case", "float32", "eager", "mean", "value", category="any category"
    )
    args = (key, {})
    hit = _p([[0.0, INF], [1.0, 2.0]], [0, 1])
    assert reg.find(*args, problem=hit).id == "x"
    assert reg.find(*args, problem=PLAIN) is None
    assert reg.find(*args) is None  # no input, no condition to hold (e.g. the relations layer)


@pytest.mark.parametrize(
    "when, message",
    [
        ("{ has_infinity = true }", "when.has_infinity is not a property of the input"),
        ('{ rank = "four" }', "when.rank"),
        ('{ has_pos_inf = "yes" }', "when.has_pos_inf"),
        ('{ out_of_range_labels = "huge" }', "when.out_of_range_labels"),
    ],
)
def test_a_bad_condition_is_one_line_naming_the_entry(tmp_path, when, message):
    with pytest.raises(ExpectationError) as e:
        _registry(tmp_path, when)
    assert message in str(e.value) and "'x'" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("old", ['cases = ["inf_logit"]', 'categories = ["NaN/inf inputs"]'])
def test_selecting_by_case_names_is_refused_with_the_fix(tmp_path, old):
    f = tmp_path / "e.toml"
    f.write_text(ENTRY.replace("when = WHEN", old))
    with pytest.raises(ExpectationError) as e:
        load_registry([f])
    assert "describe the input instead with when" in str(e.value) and "'x'" in str(e.value)


def test_no_project_entry_selects_by_case_name():
    from pathlib import Path

    reg = load_registry([Path(__file__).resolve().parent.parent / "suites" / "expectations.toml"])
    assert sum(1 for e in reg.entries if e.when) >= 51


def test_last_spatial_axis_singleton():
    assert c.last_spatial_axis_singleton(_p(np.zeros((2, 1, 1)), np.zeros((2, 1))))
    assert c.last_spatial_axis_singleton(_p(np.zeros((2, 3, 1, 4)), np.zeros((2, 3, 1))))
    assert c.last_spatial_axis_singleton(_p(np.zeros((0, 1, 3)), np.zeros((0, 1))))  # an empty batch too
    assert not c.last_spatial_axis_singleton(_p(np.zeros((2, 3, 1)), np.zeros((2, 3))))  # the last spatial is 3
    assert not c.last_spatial_axis_singleton(_p(np.zeros((2, 1, 3, 1)), np.zeros((2, 1, 3))))
    assert not c.last_spatial_axis_singleton(_p(np.zeros((2, 1)), np.zeros(2)))  # no spatial axis: (N, C = 1)
    assert not c.last_spatial_axis_singleton(PLAIN)


def test_per_example_weight_misaligned():
    x = np.zeros((4, 3, 5))  # a loss of shape (4, 3): its last axis is neither 1 nor 4
    assert c.per_example_weight_misaligned(_p(x, np.zeros((4, 3), int), sample_weight=np.ones(4)))
    assert not c.per_example_weight_misaligned(_p(x, np.zeros((4, 3), int)))  # no weight
    assert not c.per_example_weight_misaligned(_p(np.zeros((4, 1, 5)), np.zeros((4, 1), int), sample_weight=np.ones(4)))
    assert not c.per_example_weight_misaligned(_p(np.zeros((3, 3, 5)), np.zeros((3, 3), int), sample_weight=np.ones(3)))
    assert not c.per_example_weight_misaligned(_p(np.zeros((4, 5)), np.zeros(4, int), sample_weight=np.ones(4)))
    assert not c.per_example_weight_misaligned(_p(np.zeros((0, 1, 5)), np.zeros((0, 1), int), sample_weight=np.ones(0)))
    assert c.per_example_weight_misaligned(_p(np.zeros((0, 2, 5)), np.zeros((0, 2), int), sample_weight=np.ones(0)))
    assert not c.per_example_weight_misaligned(_p(np.zeros((1, 2, 5)), np.zeros((1, 2), int), sample_weight=np.ones(1)))


def test_per_example_weight_along_last_axis():
    x = np.zeros((3, 3, 5))  # a loss of shape (3, 3): a weight of shape (3,) broadcasts along its last axis
    assert c.per_example_weight_along_last_axis(_p(x, np.zeros((3, 3), int), sample_weight=np.ones(3)))
    assert not c.per_example_weight_along_last_axis(_p(x, np.zeros((3, 3), int)))  # no weight
    assert not c.per_example_weight_along_last_axis(
        _p(np.zeros((4, 3, 5)), np.zeros((4, 3), int), sample_weight=np.ones(4))
    )
    assert not c.per_example_weight_along_last_axis(_p(np.zeros((3, 5)), np.zeros(3, int), sample_weight=np.ones(3)))
    assert not c.per_example_weight_along_last_axis(
        _p(np.zeros((1, 1, 5)), np.zeros((1, 1), int), sample_weight=np.ones(1))
    )


def test_per_example_weight_gains_axes():
    def weighted(shape, n):
        return _p(np.zeros((*shape, 5)), np.zeros(shape, int), sample_weight=np.ones(n))

    assert c.per_example_weight_gains_axes(weighted((1, 3), 1))  # (1,) * (1, 3) is (1, 3)
    assert c.per_example_weight_gains_axes(weighted((2, 2), 2))  # (2,) * (2, 2) is (2, 2)
    assert c.per_example_weight_gains_axes(weighted((2, 3, 1), 2))  # (2,) * (2, 3, 1) is (2, 3, 2)
    assert c.per_example_weight_gains_axes(weighted((1, 1, 1), 1))  # (1,) * (1, 1, 1) is (1, 1, 1)
    assert not c.per_example_weight_gains_axes(weighted((3, 1), 3))  # an (N, 1) loss: the weight is expanded
    assert not c.per_example_weight_gains_axes(weighted((2, 3), 2))  # no broadcast (per_example_weight_misaligned)
    assert not c.per_example_weight_gains_axes(weighted((2,), 2))  # no spatial axis: the shapes agree
    assert not c.per_example_weight_gains_axes(_p(np.zeros((2, 2, 5)), np.zeros((2, 2), int)))  # no weight


def test_ignored_row_log_softmax_undefined():
    def ignored_row(row):
        return _p([row, [0.0, 1.0]], [-100, 1], ignore_index=-100)

    assert c.ignored_row_log_softmax_undefined(ignored_row([INF, 0.0]))
    assert c.ignored_row_log_softmax_undefined(ignored_row([np.nan, 0.0]))
    assert c.ignored_row_log_softmax_undefined(ignored_row([-INF, -INF]))
    assert not c.ignored_row_log_softmax_undefined(ignored_row([-INF, 0.0]))  # a finite maximum: defined
    counted = _p([[INF, 0.0], [0.0, 1.0]], [0, 1], ignore_index=-100)
    assert not c.ignored_row_log_softmax_undefined(counted)  # the row with +inf is not ignored
    assert not c.ignored_row_log_softmax_undefined(
        replace(ignored_row([INF, 0.0]), ignore_index=None, target=np.array([0, 1]))
    )


def test_has_near_largest():
    assert c.has_near_largest(_p([[40000.0, 0.0]], [0], dtype="float16"))  # 40000 >= 65504 / 16
    assert not c.has_near_largest(_p([[40000.0, 0.0]], [0], dtype="float32"))  # small for float32
    assert not c.has_near_largest(_p([[INF, 0.0]], [0], dtype="float16"))  # not finite
    assert c.has_near_largest(_p([[-3e38, 0.0]], [0], dtype="float32"))


def test_nan_off_target_mass():
    probs = [[np.nan, 0.5, 0.5], [0.25, 0.25, 0.5]]
    assert c.nan_off_target_mass(_p(probs, [1, 2], op="categorical_ce"))
    assert not c.nan_off_target_mass(_p(probs, [0, 2], op="categorical_ce"))  # the NaN is where the target is
    assert not c.nan_off_target_mass(_p(probs, [-100, 2], op="categorical_ce", ignore_index=-100))  # row ignored
    assert not c.nan_off_target_mass(_p(probs, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], op="bce", kind="soft"))


def test_beyond_float32_range():
    assert c.beyond_float32_range(_p([[1.7976931348623157e308, 0.0]], [0], dtype="float64"))  # +inf in float32
    assert c.beyond_float32_range(_p([[-3.5e38, 0.0]], [0], dtype="float64"))  # -inf in float32
    assert not c.beyond_float32_range(_p([[3.4e38, 0.0]], [0], dtype="float64"))  # float32 holds it
    assert not c.beyond_float32_range(_p([[INF, 0.0]], [0], dtype="float64"))  # not finite


def test_every_property_is_in_the_registry_docs():
    # docs/expectations.md's table of the properties a `when` may name lists each one (a property nobody can
    # find is one nobody uses)
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "expectations.md").read_text()
    missing = [name for name in c.PROPERTIES if f"| `{name}` |" not in text]
    assert not missing, f"docs/expectations.md's property table lacks {missing}"
