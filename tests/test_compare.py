"""The comparator's handling of NaN, +-inf, +-0, shapes and its measured errors."""

import numpy as np

from xentcheck.compare import compare

INF = np.inf


def test_exact_match_passes_with_zero_error():
    c = compare([1.0, 2.0], [1.0, 2.0], 1e-12)
    assert c.ok and c.max_abs == 0 and c.tol_units == 0 and c.mismatches == 0


def test_within_and_beyond_bound():
    assert compare([1.0 + 1e-9], [1.0], 2e-9).ok
    c = compare([1.0 + 1e-6], [1.0], 2e-9)
    assert not c.ok and c.mismatches == 1 and c.tol_units > 1
    assert "got 1.000001" in c.detail and "expected 1.0" in c.detail


def test_nan_must_be_nan():
    assert compare([np.nan], [np.nan], 0).ok
    assert not compare([0.0], [np.nan], 1.0).ok
    assert not compare([np.nan], [0.0], 1.0).ok


def test_infinities_are_exact_and_signed():
    assert compare([INF, -INF], [INF, -INF], 0).ok
    assert not compare([-INF], [INF], INF).ok
    assert not compare([1e300], [INF], INF).ok  # a huge finite number is not +inf, whatever the bound
    assert not compare([INF], [1e300], INF).ok  # nor the other way round
    assert not compare([100.0], [INF], INF).ok  # a clamped loss is not the infinite one


def test_signed_zeros_compare_equal():
    assert compare([-0.0, 0.0], [0.0, -0.0], 0).ok


def test_shape_mismatch_fails_with_a_clear_detail():
    c = compare(np.zeros(3), np.zeros((3, 1)), 1.0)
    assert not c.ok and "shape" in c.detail


def test_errors_are_measured_over_finite_elements_only():
    c = compare([1.5, INF, np.nan], [1.0, INF, np.nan], [1.0, 0.0, 0.0], scale_a=[1.0, 1.0, 1.0], eps=0.5)
    assert c.ok and c.max_abs == 0.5 and c.max_rel == 0.5 and c.tol_units == 0.5 and c.eps_units == 1.0


def test_the_worst_elements_carry_the_numbers_non_finite_first():
    got = np.array([1.0, 2.5, np.nan, 4.0, 7.0])
    exp = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    c = compare(got, exp, 0.1)
    assert [w["at"] for w in c.worst] == [[2], [4], [1]]  # NaN where finite, then 20 units, then 5 units
    assert c.worst[0] == {"at": [2], "expected": 3.0, "got": "nan", "bound": 0.1}
    assert c.worst[1]["got"] == 7.0 and c.worst[1]["expected"] == 5.0


def test_an_exact_expectation_says_so_instead_of_a_bound():
    c = compare(np.array([1.0]), np.array([np.inf]), np.array([np.nan]))
    assert "(exact" in c.detail and "bound nan" not in c.detail
    assert c.worst == ({"at": [0], "expected": "inf", "got": 1.0, "bound": None},)


def test_without_a_mismatch_the_worst_elements_are_the_largest_errors_within_the_bound():
    c = compare(np.array([[1.0, 2.01], [3.0, 4.05]]), np.array([[1.0, 2.0], [3.0, 4.0]]), 0.1)
    assert c.ok and [w["at"] for w in c.worst] == [[1, 1], [0, 1], [0, 0]]
    assert compare(np.array(2.0), np.array(2.0), 0.1).worst == ({"at": [], "expected": 2.0, "got": 2.0, "bound": 0.1},)
