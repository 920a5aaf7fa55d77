"""The check as one value (framework-free): one Check names every kind of check, and one function makes
its record from a verdict, for each kind (so a check whose worker dies still gets its full record);
records are frozen once made."""

import dataclasses

import pytest

from xentcheck.check import Bundle, Check, Verdict, record
from xentcheck.records import CheckRecord, RelationRecord, StabilityRecord


@pytest.mark.parametrize(
    "check, kind",
    [
        (
            Check(
                "fake",
                "b",
                "random_index",
                "float32",
                "eager",
                "mean",
                "value",
                api="fake.b",
                op="softmax_ce",
                category="random",
                target="index",
            ),
            CheckRecord,
        ),
        (
            Check(
                "fake",
                "b",
                "shift_invariance",
                "float32",
                "eager",
                "all",
                "relation",
                api="fake.b",
                statement="L(x + c) = L(x)",
            ),
            RelationRecord,
        ),
        (
            Check(
                "fake",
                "b",
                "logit_magnitude",
                "float16",
                kind="stability",
                op="softmax_ce",
                statement="largest |logit|",
            ),
            StabilityRecord,
        ),
    ],
)
def test_a_check_that_never_finished_gets_its_full_record_whatever_its_kind(check, kind):
    rec = record(check, Verdict("error", "did not complete: Timeout"))
    assert type(rec) is kind and rec.id == check.id and rec.outcome == "error"
    assert rec.reason == "did not complete: Timeout" and rec.framework == "fake" and rec.binding == "b"
    if kind is RelationRecord:
        assert rec.relation == "L(x + c) = L(x)" and rec.id.endswith("-eager-all-relation")
    if kind is StabilityRecord:
        assert rec.axis == "logit_magnitude" and rec.label == "largest |logit|"
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.outcome = "pass"  # records are not changed once made


def test_the_identity_is_what_a_check_compares_by():
    a = Check("fake", "b", "c", "float32", "eager", "mean", "grad", group="one")
    assert a == Check("fake", "b", "c", "float32", "eager", "mean", "grad", group="another", api="x")
    assert a != Check("fake", "b", "c", "float32", "compiled", "mean", "grad")


def test_a_bundle_holds_the_checks_of_one_binding_case_dtype_and_mode():
    def c(dtype: str, reduction: str, kind: str, group: str = "g") -> Check:
        return Check("fake", "b", "random_index", dtype, "eager", reduction, kind, group=group)

    checks = [c("float32", "none", "value"), c("float64", "none", "value"), c("float32", "mean", "grad")]
    checks.append(c("float32", "sum", "grad", group="other"))  # another worker group: never bundled with the rest
    bundles = Bundle.of(checks)
    assert [b.checks for b in bundles] == [(checks[0], checks[2]), (checks[1],), (checks[3],)]
    assert bundles[0].test_id == "fake-b-random_index-float32-eager" and bundles[0].group == "g"
    assert [c.id for c in bundles[0].checks] == [
        "fake-b-random_index-float32-eager-none-value",
        "fake-b-random_index-float32-eager-mean-grad",
    ]
    with pytest.raises(ValueError):
        Bundle(())
