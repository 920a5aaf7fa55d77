"""The stability sweep (framework-free): its axes reach the dtype's edges, the honest implementation
stays within the bound everywhere, and a softmax without the max shift is caught where it overflows."""

from dataclasses import replace

import numpy as np
import pytest

from xentcheck import stability
from xentcheck.checks import Judge
from xentcheck.expectations import Registry
from xentcheck.records import Results
from xentcheck.results import document, validate

from .fake_adapter import HONEST, FakeAdapter, fake_environment

EMPTY = Registry([])
BINDING = HONEST.bindings()[0]


def _sweep(adapter, dtype, axis="logit_magnitude"):
    return Judge(EMPTY, {}).sweep(adapter, BINDING, stability.BY_NAME[axis], dtype)


@pytest.mark.parametrize("dtype, top", [("float32", 3.4028234663852886e38), ("float64", 1.7976931348623157e308)])
def test_the_logit_axis_reaches_the_largest_finite_value(dtype, top):
    pts = stability.BY_NAME["logit_magnitude"].points(dtype)
    assert pts[0] == pytest.approx(0.1) and pts[-1] == top and len(pts) <= stability.MAX_POINTS + 2
    assert np.all(np.diff(pts) > 0)


def test_the_probability_axes_end_exactly_at_0_and_1():
    to0 = stability.BY_NAME["probability_to_0"].points("float32")
    to1 = stability.BY_NAME["probability_to_1"].points("float32")
    assert to0[-1] == 0 and to0[-2] == np.finfo(np.float32).smallest_subnormal  # through the subnormals
    assert to1[-1] == 0 and np.float32(1 - to1[-2]) == 1  # the last step before 1 already rounds to 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_honest_implementation_is_within_the_bound_everywhere(dtype):
    rec = _sweep(HONEST, dtype)
    assert rec.outcome == "ok" and rec.points
    assert stability.first_failure(rec) is None and stability.first_failure(rec, "grad_status") is None


def test_a_softmax_without_the_max_shift_is_caught_where_exp_overflows():
    rec = _sweep(FakeAdapter("fake", shift=False), "float32")
    bad = stability.first_failure(rec)
    assert bad is not None and bad.value_status in ("inf", "nan")
    assert 10 < bad.x <= 1000  # exp overflows float32 past 88.7
    assert all(p.value_status == "ok" for p in rec.points if p.x < 10)


def test_an_axis_for_another_op_is_unsupported_with_the_reason():
    rec = _sweep(HONEST, "float32", axis="probability_to_0")
    assert rec.outcome == "unsupported" and "categorical_ce" in rec.reason


def test_stability_records_validate_in_a_results_document():
    env = fake_environment()
    doc = document(env, [], {"entries": [], "stale": [], "unused": []}, stability=[_sweep(HONEST, "float32")])
    validate(doc.to_json())
    assert doc.to_json()["stability"][0]["axis"] == "logit_magnitude"


def test_the_agreement_matrix_counts_points_where_two_bindings_answer_differently():
    from reports.agreement import agreement

    honest, twin = _sweep(HONEST, "float32"), _sweep(HONEST, "float32")
    buggy = _sweep(FakeAdapter("fake", shift=False), "float32")
    twin, buggy = replace(twin, binding="twin"), replace(buggy, binding="no_shift")  # records are frozen
    (m,) = agreement(
        [Results(environment={}, summary={}, expectations={}, records=[], stability=[honest, twin, buggy])]
    )
    cells = {(row["binding"], b): c for row in m["rows"] for b, c in zip(m["bindings"], row["cells"], strict=False)}
    assert cells[("fake: fake.softmax_ce", "fake: twin")]["differ"] == 0
    bad = cells[("fake: fake.softmax_ce", "fake: no_shift")]
    assert bad == cells[("fake: no_shift", "fake: fake.softmax_ce")] and 0 < bad["differ"] < bad["compared"]
    overflowed = sum(p.value_status != "ok" for p in buggy.points)
    assert bad["differ"] >= overflowed  # every loss that overflowed differs from the honest one
