"""The interaction-case generator: covering arrays over each binding's declared factors."""

import itertools
from dataclasses import replace

import pytest

from cases import interactions
from xentcheck.checks import unsupported_reason
from xentcheck.problem import OPTIONS

from .mutants import MutantAdapter

BINDINGS = MutantAdapter().bindings()


def _rows_cover(plan, strength):
    names = list(plan.factors)
    want = {
        t
        for combo in itertools.combinations(names, strength)
        for t in (tuple(zip(combo, v, strict=True)) for v in itertools.product(*(plan.factors[k] for k in combo)))
        if interactions.why_infeasible(dict(t), plan.factors) is None
    }
    got = {t for r in plan.rows for t in itertools.combinations(r.items(), strength)}
    return want <= got


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.name)
@pytest.mark.parametrize("strength", [2, 3])
def test_every_feasible_tuple_is_covered_and_nothing_is_missing(binding, strength):
    plan = interactions.plan(binding, strength)
    assert _rows_cover(plan, strength)
    assert plan.missing == [] and len(plan.covered) + len(plan.ruled_out) == len(plan.pairs)
    assert all(interactions.conflict(r) is None for r in plan.rows)
    # a handful of cases, not the full product
    full = 1
    for v in plan.factors.values():
        full *= len(v)
    assert len(plan.rows) < full / 4


def test_the_same_rows_and_ids_every_time():
    b = BINDINGS[0]
    a, c = interactions.plan(b), interactions.plan(b)
    assert a.rows == c.rows
    names = [interactions.case_name(b.caps.op, r) for r in a.rows]
    assert all(n.startswith("ix-softmaxce-") for n in names)
    assert any("-cw" in n for n in names) and any("-ls" in n for n in names)


def test_ruled_out_pairs_carry_the_reason():
    plan = interactions.plan(BINDINGS[0])  # every option: ignore_index meets dense targets
    reasons = {tuple(p): r for p, r in plan.ruled_out}
    assert reasons[("target=onehot", "ignore_index=on")].startswith("ignore_index applies to index targets")
    assert "spatial" in reasons[("channels_first=on", "spatial=off")]


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.name)
def test_every_generated_case_is_a_problem_the_binding_declares(binding):
    for row in interactions.plan(binding).rows:
        case = interactions.case(binding.caps.op, row)
        p = case.problem(binding.caps.op, row["dtype"], row["reduction"])
        assert unsupported_reason(binding, p, "value") is None, (row, case.name)
        used = {k for k, v in row.items() if v is True and k in OPTIONS}
        assert p.options_used() == used, case.name


def test_a_strength_it_cannot_build_is_one_line():
    with pytest.raises(interactions.InteractionError, match=r"^--interactions=4: .*strength 2"):
        interactions.plan(BINDINGS[0], 4)


def test_an_unknown_declared_option_is_one_line_naming_the_binding():
    b = replace(BINDINGS[0], caps=replace(BINDINGS[0].caps, options=frozenset({"class_weights"})))
    with pytest.raises(
        interactions.InteractionError,
        match=r"^binding np\.softmax_ce: declares unknown option "
        r"'class_weights'",
    ):
        interactions.plan(b)
