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


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_what_the_declaration_rules_out_is_the_run_s_own_unsupported_verdict(dtype):
    """A run settles a relation at collection by ``declared_unsupported``: it must be exactly the
    verdict running the relation gives, and say nothing of a relation that may run."""
    import xentcheck.relations as relations

    adapter = MutantAdapter(None)
    bindings = adapter.bindings()
    for b in [*bindings, replace(bindings[0], caps=replace(bindings[0].caps, dtypes=frozenset({"float64"})))]:
        for relation in RELATIONS:
            why = relations.declared_unsupported(b, relation, dtype)
            rec = Judge(relation_examples=1).relation(adapter, b, bindings, relation, dtype)
            if why is not None:
                assert (rec.outcome, rec.reason) == ("unsupported", why), (b.name, relation.name)
            else:
                assert dtype in relations.RELATION_DTYPES and dtype in b.caps.dtypes


def test_a_relation_no_draw_can_fit_is_unsupported_without_drawing(monkeypatch):
    """A binding with no partner to agree with fits no draw whatever its values: it is settled before
    hypothesis draws (which would reject hundreds of draws before giving up)."""
    import xentcheck.relations as relations

    adapter = MutantAdapter(None)
    b = next(b for b in adapter.bindings() if b.caps.op == "softmax_ce")
    drawn = []
    monkeypatch.setattr(relations, "check_draw", lambda *a: drawn.append(a))
    agrees = relations.BY_NAME["agrees_with_first_binding"]
    rec = Judge().relation(adapter, b, [], agrees, "float32")
    assert rec.outcome == "unsupported" and "no drawn input fits" in rec.reason
    assert drawn == []


def test_a_relation_draws_only_the_reductions_it_can_use():
    """reduction_of_none compares a reduced loss with its unreduced one: a draw of reduction none
    never fits, so none is not drawn."""
    adapter = MutantAdapter(None)
    b = next(b for b in adapter.bindings() if b.caps.op == "softmax_ce")
    assert "none" in b.caps.reductions
    rec = Judge(relation_examples=4).relation(adapter, b, [], relations_by_name("reduction_of_none"), "float64")
    assert rec.outcome == "pass" and "held on 4 drawn inputs" in rec.reason


def relations_by_name(name):
    from xentcheck.relations import BY_NAME

    return BY_NAME[name]
