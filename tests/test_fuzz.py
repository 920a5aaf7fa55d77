"""The fuzzer (xentcheck/fuzz.py): draws within a binding's capabilities, special values included;
a planted bug is found and shrunk, and findings group by (binding, check, properties of the input)."""

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Found

from xentcheck import fuzz
from xentcheck.checks import Judge

from .fake_adapter import CAPS, HONEST, FakeAdapter

SETTINGS = settings(
    derandomize=True, max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
STRATEGY = fuzz.problems(replace(CAPS, options=frozenset({"class_weight"})), frozenset({"float32", "float64"}))


@SETTINGS
@given(STRATEGY)
def test_draws_stay_inside_the_capabilities(p):
    assert p.op == "softmax_ce" and p.target_kind in CAPS.targets and p.dtype in ("float32", "float64")
    assert p.x.shape[-1] >= 1 and p.options_used() <= {"class_weight"}
    if p.target_kind == "index":
        assert p.target.shape == p.x.shape[:-1]


def test_special_values_are_drawn():
    seen = set()

    @SETTINGS
    @given(fuzz.logit_values("float32"))
    def collect(v):
        seen.add("nan" if np.isnan(v) else v)

    collect()
    assert {"nan", np.inf, -np.inf, 0.0}.issubset(seen) and any(abs(v) > 1e38 for v in seen if v != "nan")


def _findings(adapter, max_examples=80) -> dict:
    found: dict = {}

    @settings(
        derandomize=True,
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(STRATEGY)
    def run(p):
        for check in ("value", "grad"):
            rec = Judge().check(adapter, adapter.bindings()[0], p, check)
            if rec.outcome in ("fail", "error"):
                found.setdefault(fuzz.finding_key("fake.softmax_ce", check, p), rec.reason)

    run()
    return found


def test_a_planted_bug_is_found_and_grouped():
    found = _findings(FakeAdapter("fake", shift=False))  # no max shift: overflows at large logits
    assert found
    assert all(k[0] == "fake.softmax_ce" and k[1] in ("value", "grad") for k in found)


def test_a_failing_draw_shrinks_to_a_small_example():
    bad = FakeAdapter("fake", shift=False)

    @settings(derandomize=True, max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(STRATEGY)
    def failing(p):
        rec = Judge().check(bad, bad.bindings()[0], p, "value")
        if rec.outcome == "fail":
            raise Found(fuzz.repro_line(p))

    try:
        failing()
    except Found as e:
        assert "x=np.array(" in str(e)
    else:
        raise AssertionError("the planted bug was not found")


def test_the_finding_key_names_the_properties_that_hold():
    from xentcheck.problem import Problem

    p = Problem("fuzz", "softmax_ce", "float32", np.array([[np.inf, 0.0]]), np.array([1]), "index")
    key = fuzz.finding_key("b", "value", p)
    assert key[:4] == ("b", "value", "float32", "index") and "has_pos_inf" in key[4]


def test_the_honest_fake_has_no_finding():
    # special values included: the oracle and a correct kernel agree on every draw
    assert _findings(HONEST, 60) == {}


@SETTINGS
@given(
    fuzz.problems(
        replace(CAPS, options=frozenset(fuzz.FUZZ_OPTIONS + fuzz.LATE_OPTIONS)), frozenset({"float16", "float64"})
    )
)
def test_the_repro_rebuilds_the_draw(p):
    from numpy import inf, nan  # noqa: F401  (names the repro expression uses)

    from xentcheck.problem import Problem  # noqa: F401

    q = eval(fuzz.repro_line(p))
    for name in ("x", "target", "class_weight", "sample_weight", "pos_weight", "where"):
        a, b = getattr(p, name), getattr(q, name)
        assert (a is None and b is None) or np.array_equal(a, b, equal_nan=True), name
    assert (q.op, q.dtype, q.reduction, q.target_kind, q.ignore_index, q.label_smoothing, q.channels_first) == (
        p.op,
        p.dtype,
        p.reduction,
        p.target_kind,
        p.ignore_index,
        p.label_smoothing,
        p.channels_first,
    )


def test_a_shared_database_folder_becomes_the_campaigns_default(tmp_path):
    from hypothesis.database import DirectoryBasedExampleDatabase

    before = settings._current_profile
    try:
        fuzz.register_profile(True, 10, str(tmp_path / "db"))
        shared = DirectoryBasedExampleDatabase(str(tmp_path / "db"))
        # HypoFuzz fuzzes a test only when its database is the default one: both are the shared folder
        assert settings().database == shared and fuzz.profile().database == shared
        assert not fuzz.profile().derandomize
    finally:
        settings.load_profile(before)
        fuzz.register_profile(False, 2)
