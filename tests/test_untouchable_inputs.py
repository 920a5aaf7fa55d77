"""Inputs the kernel cannot touch: a binding gets private copies, one that writes into them is an
``error`` naming it (never a pass), the oracle judges the declared inputs and the next binding gets
pristine ones."""

import numpy as np
import pytest

from cases import load_catalog
from xentcheck.checks import Judge
from xentcheck.protocol import InputWrittenError, run_binding

from .fake_adapter import HONEST
from .vandal_adapter import ADAPTER as VANDAL

CASES = {c.name: c for c in load_catalog()}
NAMES = [c.name for c in CASES.values() if "softmax_ce" in c.ops and c.invalid is None]


@pytest.mark.parametrize("case", NAMES)
@pytest.mark.parametrize("check", ["value", "grad"])
def test_a_kernel_that_writes_into_its_inputs_is_an_error_never_a_pass(case, check):
    p = CASES[case].problem("softmax_ce", "float32", "none")
    if not np.any(p.x != 0):
        pytest.skip("no logit to overwrite (an empty batch): zeroing writes nothing")
    before = p.x.copy()
    rec = Judge().check(VANDAL, VANDAL.bindings()[0], p, check)
    if rec.outcome == "unsupported":
        pytest.skip(rec.reason)
    assert rec.outcome == "error" and "fake.softmax_ce wrote into its inputs (x)" in rec.reason
    np.testing.assert_array_equal(p.x, before)  # the judge's copy is untouched
    after = Judge().check(HONEST, HONEST.bindings()[0], p, check)
    assert after.outcome == "pass"  # the next binding gets pristine inputs


def test_the_error_names_the_binding_and_the_written_arrays():
    p = CASES["random_index"].problem("softmax_ce", "float32", "none")
    with pytest.raises(InputWrittenError, match=r"^fake.softmax_ce wrote into its inputs \(x\)"):
        run_binding(VANDAL, VANDAL.bindings()[0], p, grad=False, cotangent=None)


def test_an_honest_binding_reuses_one_verified_copy_per_problem():
    # an adapter that caches by problem (one value-and-gradient step for both checks) still hits its cache
    seen = []

    class Recorder(type(HONEST)):
        def run(self, binding, problem, **kw):
            seen.append(problem)
            return super().run(binding, problem, **kw)

    a = Recorder("fake")
    p = CASES["random_index"].problem("softmax_ce", "float32", "none")
    for grad in (False, True):
        run_binding(a, a.bindings()[0], p, grad=grad, cotangent=np.ones(p.x.shape[0]))
    assert seen[0] is seen[1] and seen[0] is not p and seen[0].x is not p.x


def test_a_suite_run_of_the_external_vandal_has_no_pass(run_suite, tmp_path):
    import json

    res = tmp_path / "r.json"
    run_suite(
        "suites",
        "--frameworks=",
        "--adapter=tests.vandal_adapter:ADAPTER",
        "-k",
        "random_index or soft_",
        f"--results={res}",
    )
    recs = [r for r in json.loads(res.read_text())["records"] if r["check"] in ("value", "grad")]
    ran = [r for r in recs if r["outcome"] != "unsupported"]
    assert ran and all(r["outcome"] == "error" and "wrote into its inputs" in r["reason"] for r in ran)
