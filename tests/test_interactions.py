"""The interaction-case generator: covering arrays over each binding's declared factors (mixed strength by
default: triples of the factors that change the mathematics, pairs of all), checked by enumeration."""

import itertools
from dataclasses import replace

import pytest

from cases import interactions
from reports.coverage import interactions_view
from xentcheck.checks import unsupported_reason
from xentcheck.problem import OPTIONS
from xentcheck.records import InteractionCoverage, Results

from .mutants import MutantAdapter

BINDINGS = MutantAdapter().bindings()


def _feasible(plan, t, names):
    """Every combination of ``t`` values of ``names`` some problem of the binding can have, by enumeration."""
    return {
        c
        for combo in itertools.combinations(names, t)
        for c in (tuple(zip(combo, v, strict=True)) for v in itertools.product(*(plan.factors[k] for k in combo)))
        if interactions.why_infeasible(dict(c), plan.factors) is None
    }


def _met(plan, t, names):
    return {c for r in plan.rows for c in itertools.combinations([(k, r[k]) for k in names], t)}


def _product(plan):
    full = 1
    for v in plan.factors.values():
        full *= len(v)
    return full


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.name)
@pytest.mark.parametrize("strength", [2, 3])
def test_every_feasible_tuple_is_covered_and_nothing_is_missing(binding, strength):
    plan = interactions.plan(binding, strength)
    names = tuple(plan.factors)
    assert _feasible(plan, strength, names) <= _met(plan, strength, names)
    (cov,) = plan.coverage
    assert (cov.strength, cov.factors) == (strength, names)
    assert plan.missing == [] and len(cov.covered) + len(cov.ruled_out) == len(cov.tuples)
    assert all(interactions.conflict(r) is None for r in plan.rows)
    # a handful of cases, not the full product
    assert len(plan.rows) < _product(plan) / 4


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.name)
def test_the_default_covers_every_math_triple_and_every_pair(binding):
    """The mixed array, checked by enumeration: every feasible triple of values of the factors that
    change the mathematics and every feasible pair of values of all factors meet in some row."""
    plan = interactions.plan(binding)
    assert plan.strength == interactions.MIXED == interactions.plan.__defaults__[0]
    names = tuple(plan.factors)
    math = tuple(k for k in names if k in interactions.MATH_FACTORS)
    assert {"target", "reduction"} <= set(math) and "dtype" not in math
    assert _feasible(plan, 3, math) <= _met(plan, 3, math)
    assert _feasible(plan, 2, names) <= _met(plan, 2, names)
    assert [(c.strength, c.factors) for c in plan.coverage] == [(3, math), (2, names)]
    for c in plan.coverage:
        assert c.missing == [] and len(c.covered) + len(c.ruled_out) == len(c.tuples)
        assert len(c.covered) == len(_feasible(plan, c.strength, c.factors))
    assert all(interactions.conflict(r) is None for r in plan.rows)
    assert len({tuple(r.items()) for r in plan.rows}) == len(plan.rows)


#: the stated bound on the default array, per binding of the mutant adapter (every option declared;
#: the full product of its factors is in the thousands): measured 32 for softmax_ce (41 at strength 3)
MIXED_BOUND = 40


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.name)
def test_the_default_is_no_larger_than_its_bound_and_between_pairs_and_triples(binding):
    mixed = interactions.plan(binding)
    assert len(mixed.rows) <= MIXED_BOUND
    assert len(mixed.rows) <= len(interactions.plan(binding, 3).rows)
    # at least as many rows as the largest product of three math factors' value counts
    math = [len(v) for k, v in mixed.factors.items() if k in interactions.MATH_FACTORS]
    assert len(mixed.rows) >= max(a * b * c for a, b, c in itertools.combinations(math, 3))


def test_the_same_rows_and_ids_every_time():
    b = BINDINGS[0]
    a = interactions.plan(b)
    interactions._built.cache_clear()  # built anew, not the cached rows
    c = interactions.plan(b)
    assert a.rows == c.rows and a.as_dict() == c.as_dict()
    names = [interactions.case_name(b.caps.op, r) for r in a.rows]
    assert all(n.startswith("ix-softmaxce-") for n in names)
    assert any("-cw" in n for n in names) and any("-ls" in n for n in names)


def test_ruled_out_pairs_carry_the_reason():
    plan = interactions.plan(BINDINGS[0], 2)  # every option: ignore_index meets dense targets
    reasons = {tuple(p): r for p, r in plan.coverage[0].ruled_out}
    assert reasons[("target=onehot", "ignore_index=on")].startswith("ignore_index applies to index targets")
    assert "spatial" in reasons[("channels_first=on", "spatial=off")]


def test_ruled_out_triples_carry_the_reason():
    plan = interactions.plan(BINDINGS[0])
    reasons = {tuple(p): r for p, r in plan.coverage[0].ruled_out}
    assert reasons[("target=soft", "reduction=mean", "ignore_index=on")].startswith("ignore_index applies")


def test_the_coverage_record_round_trips_and_reads_the_older_pair_form():
    plan = interactions.plan(BINDINGS[0])
    d = plan.as_dict()
    assert d["strength"] == "mixed" and [c["strength"] for c in d["by_strength"]] == [3, 2]
    assert InteractionCoverage.from_json(d).to_json() == d
    old = {
        "strength": 2,
        "cases": 4,
        "pairs": 3,
        "covered": 2,
        "ruled_out": [{"pair": ["a=on", "b=off"], "reason": "why"}],
        "missing": [],
        "factors": {"a": ["False", "True"], "b": ["False", "True"]},
    }
    (c,) = InteractionCoverage.from_json(old).by_strength
    assert (c.strength, c.factors, c.tuples, c.covered, c.ruled_out[0]["tuple"]) == (
        2,
        ("a", "b"),
        3,
        2,
        ("a=on", "b=off"),
    )


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.name)
def test_every_generated_case_is_a_problem_the_binding_declares(binding):
    for row in interactions.plan(binding).rows:
        case = interactions.case(binding.caps.op, row)
        p = case.problem(binding.caps.op, row["dtype"], row["reduction"])
        assert unsupported_reason(binding, p, "value") is None, (row, case.name)
        used = {k for k, v in row.items() if v is True and k in OPTIONS}
        assert p.options_used() == used, case.name


def test_a_strength_it_cannot_build_is_one_line():
    with pytest.raises(interactions.InteractionError, match=r"^--interactions=4: .*strength 2.*mixed"):
        interactions.plan(BINDINGS[0], 4)
    for bad in ("4", "pairs", "", "True"):
        with pytest.raises(interactions.InteractionError, match=r"^--interactions="):
            interactions.parse_strength(bad)
    assert [interactions.parse_strength(t) for t in ("mixed", "0", "2", "3")] == ["mixed", 0, 2, 3]


def test_an_unknown_declared_option_is_one_line_naming_the_binding():
    b = replace(BINDINGS[0], caps=replace(BINDINGS[0].caps, options=frozenset({"class_weights"})))
    with pytest.raises(
        interactions.InteractionError,
        match=r"^binding np\.softmax_ce: declares unknown option "
        r"'class_weights'",
    ):
        interactions.plan(b)


def test_the_report_view_shows_each_strength_of_each_binding_and_reads_the_older_form():
    env = {
        "interactions": {
            "fake::fake.softmax_ce": interactions.plan(BINDINGS[0]).as_dict(),
            "old::old.bce": {"strength": 2, "cases": 4, "pairs": 3, "covered": 3, "ruled_out": [], "missing": []},
        }
    }
    rows = interactions_view([Results(environment=env, summary={}, expectations={}, records=[])])
    new, old = rows
    assert new["run_strength"] == "mixed" and [c["strength"] for c in new["by_strength"]] == [3, 2]
    assert all(c["missing"] == [] and c["covered"] + len(c["ruled_out"]) == c["tuples"] for c in new["by_strength"])
    assert "dtype" not in new["by_strength"][0]["factors"]
    assert old["run_strength"] == "2" and [(c["strength"], c["tuples"]) for c in old["by_strength"]] == [(2, 3)]
