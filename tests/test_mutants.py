"""Proof that the suite bites: every planted bug is flagged, the honest implementation passes.

The whole case catalog runs through the check runner for the honest NumPy adapter and for each
mutant (tests/mutants.py). A mutant is killed when at least one check fails; the kill rate must be 1.
"""

from functools import cache

import pytest

from cases import load_catalog
from xentcheck.checks import CHECKS, Judge
from xentcheck.expectations import Registry

from .mutants import MUTANTS, MutantAdapter


@cache
def outcomes(bug):
    adapter = MutantAdapter(bug)
    bindings = {b.caps.op: b for b in adapter.bindings()}
    out = []
    for case in load_catalog():
        for op in (o for o in case.ops if o in bindings):  # linear_ce: tests/test_linear_ce.py
            for dtype in case.dtypes:
                for reduction in case.reductions:
                    problem = case.problem(op, dtype, reduction)
                    for check in CHECKS:
                        out.append(Judge(Registry(), {}).check(adapter, bindings[op], problem, check))
    return out


def test_the_honest_implementation_passes_every_case():
    recs = outcomes(None)
    bad = [(r.id, r.reason[:200]) for r in recs if r.outcome in ("fail", "error")]
    assert not bad
    assert sum(r.outcome == "pass" for r in recs) > 300


@pytest.mark.parametrize("bug", sorted(MUTANTS))
def test_every_planted_bug_is_killed(bug):
    killed = [r.id for r in outcomes(bug) if r.outcome in ("fail", "error")]
    assert killed, f"planted bug survived: {MUTANTS[bug]}"


def test_kill_rate_is_one():
    killed = sum(any(r.outcome in ("fail", "error") for r in outcomes(b)) for b in MUTANTS)
    assert killed / len(MUTANTS) == 1.0
