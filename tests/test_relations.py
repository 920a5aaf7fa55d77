"""The relations layer bites: the honest NumPy implementation satisfies every relation, and each
planted bug that breaks an identity is caught by the relation that states it (framework-free)."""

from dataclasses import replace

import pytest

from xentcheck.checks import Judge
from xentcheck.relations import RELATIONS

from .mutants import MutantAdapter


def _run(bug, relation, dtype="float32", examples=8):
    adapter = MutantAdapter(bug)
    bindings = adapter.bindings()
    recs = []
    for b in bindings:  # a renamed twin gives agrees_with_first_binding a sibling to agree with
        others = [o for o in bindings if o is not b] + [replace(b, name=b.name + "-twin")]
        recs.append(Judge(relation_examples=examples).relation(adapter, b, others, relation, dtype))
    return recs


@pytest.mark.parametrize("relation", RELATIONS, ids=[r.name for r in RELATIONS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_honest_implementation_satisfies_every_relation(relation, dtype):
    recs = _run(None, relation, dtype)
    assert [r.reason for r in recs if r.outcome in ("fail", "error")] == []
    assert any(r.outcome == "pass" for r in recs), "the relation applies to no op of the honest adapter"


CAUGHT_BY = {
    "no_max_shift": "shift_invariance",
    "smoothing_dropped": "label_smoothing_soft",
    "smoothing_binary_convention": "label_smoothing_soft",
    "ignored_rows_counted": "ignore_index_drop",
    "grad_off_by_reduction": "reduction_of_none",
    "wrong_cotangent": "reduction_of_none",
    "naive_sigmoid": "sigmoid_is_2class_softmax",
}


@pytest.mark.parametrize("bug", sorted(CAUGHT_BY))
def test_a_relation_catches_the_planted_bug(bug):
    relation = next(r for r in RELATIONS if r.name == CAUGHT_BY[bug])
    recs = _run(bug, relation)
    failed = [r for r in recs if r.outcome == "fail"]
    assert failed, f"{relation.name} missed {bug}"
    assert all("does not hold" in r.reason and "Draw(" in r.reason for r in failed)  # with the counter-example


def test_a_relation_outside_the_capabilities_is_unsupported_with_the_reason():
    adapter = MutantAdapter(None)
    b = next(b for b in adapter.bindings() if b.caps.op == "softmax_ce")
    narrow = replace(b, caps=replace(b.caps, options=frozenset()))
    smoothing = next(r for r in RELATIONS if r.name == "label_smoothing_soft")
    rec = Judge().relation(adapter, narrow, [], smoothing, "float32")
    assert rec.outcome == "unsupported" and "label_smoothing" in rec.reason
