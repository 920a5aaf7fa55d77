"""Relations: identities that must hold inside one framework, checked on inputs drawn by hypothesis.

The conformance checks compare each binding with the oracle on declared cases. Relations compare a
binding with *itself* (or with a sibling binding of the same framework) on two formulations of one
problem that mathematics says are equal: index vs one-hot targets, shifted logits, label smoothing
vs its soft targets, ignored rows vs dropped rows, a reduction vs the sum of the unreduced loss,
sigmoid BCE vs a two-class softmax, CE >= H(p), and agreement with the framework's first binding
of the same op. Inputs are drawn by hypothesis (derandomized and few in the default run; many with
``--fuzz``), and hypothesis shrinks a counter-example to the smallest one it can find.

Each side's tolerance is the oracle's bound for that side's problem (:func:`xentcheck.tolerance.bound`),
so a relation is allowed exactly the rounding error both sides are allowed, never a tuned margin. Drawn
logits lie on a 2^-8 grid within +-100 and shifts are integers within +-100, so a shifted input is exact in float32
and float64 (the dtypes relations run in). This module imports no framework.
"""

from __future__ import annotations

import itertools
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from . import reference
from .check import Check, Verdict
from .compare import compare
from .exception_text import one_line
from .problem import CATEGORICAL_OPS, Problem, round_to
from .protocol import Adapter, Binding, Capabilities, run_binding, variant_of
from .records import Errors
from .tolerance import bound

if TYPE_CHECKING:
    from .checks import Judge

#: the dtypes relations are drawn in (a shifted or rearranged drawn input is exact there)
RELATION_DTYPES = ("float32", "float64")
#: the default run's batch sizes and class counts (few: frameworks that compile per shape reuse caches)
DEFAULT_BATCHES, DEFAULT_CLASSES = (1, 2, 4), (2, 3, 5)


@dataclass(frozen=True)
class Draw:
    """One drawn input: sizes, logit scale, seed, and the per-relation knobs."""

    dtype: str
    batch: int
    classes: int
    scale: float
    seed: int
    reduction: str
    shift: int
    smoothing: float


@dataclass(frozen=True)
class Side:
    """One formulation: a problem, the binding that evaluates it (None: the one under test), and a linear
    map applied to its value and gradient (and, with absolute coefficients, to their bounds) before
    comparing. ``cotangent`` scales the pulled-back ones of an unreduced output."""

    problem: Problem
    binding: Binding | None = None
    value_map: Callable[[np.ndarray], np.ndarray] = np.asarray
    grad_map: Callable[[np.ndarray], np.ndarray] = np.asarray
    cotangent: float = 1.0


@dataclass(frozen=True)
class Relation:
    """An identity (``eq``) or inequality (``ge``: lhs >= rhs) between two sides."""

    name: str
    statement: str
    applies: Callable[[Capabilities], str | None]  # None, or why the relation does not apply
    build: Callable[[Draw, Binding, list[Binding]], tuple[Side, Side] | None]  # None: this draw does not fit
    kind: str = "eq"
    grad: bool = True
    #: the reductions a draw may take (None: any the binding offers); draws outside could never fit
    reductions: frozenset[str] | None = None


# -- drawn problems ------------------------------------------------------------------------------
def _logits(d: Draw, shape: tuple[int, ...]) -> np.ndarray:
    z = np.random.default_rng(d.seed).normal(0.0, d.scale, size=shape)
    return np.clip(np.round(z * 256.0) / 256.0, -100.0, 100.0)  # exact in float32: see the module doc


def base(op: str, dtype: str, d: Draw, kind: str, shape: tuple[int, ...] | None = None) -> Problem:
    """A drawn problem for ``op`` with ``kind`` targets ("index", "onehot", "soft", "binary")."""
    shape = shape or (d.batch, d.classes)
    z = _logits(d, shape)
    rng = np.random.default_rng(d.seed + 1)
    if op == "softmax_ce" or op == "sigmoid_bce":
        x = z
    elif op in CATEGORICAL_OPS:
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        x = e / e.sum(axis=-1, keepdims=True)
    else:
        x = 1.0 / (1.0 + np.exp(-z))
    x = round_to(x, dtype)
    if kind == "index":
        target = rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int64)
    elif kind == "onehot":
        target = _onehot(rng.integers(0, shape[-1], size=shape[:-1]), shape[-1])
    elif kind == "soft" and op in CATEGORICAL_OPS:
        target = round_to(rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]), dtype)
    elif kind == "soft":
        target = round_to(rng.random(shape), dtype)
    else:
        target = (rng.random(shape) < 0.5).astype(np.float64)
    w = None
    if op == "linear_ce":  # hidden states X [N, 4] and a classifier W [C, 4] whose logits are about z's scale
        x = round_to(np.clip(np.round(rng.normal(0.0, 1.0, (shape[0], 4)) * 64) / 64, -4, 4), dtype)
        w = round_to(np.round(rng.normal(0.0, d.scale / 2, (shape[-1], 4)) * 64) / 64, dtype)
    return Problem(
        case="relation",
        op=op,
        dtype=dtype,
        x=x,
        target=target,
        target_kind=kind,
        reduction=d.reduction,
        category="relations",
        weight_matrix=w,
    )


def _onehot(idx: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros(idx.shape + (c,))
    np.put_along_axis(out, idx[..., None], 1.0, axis=-1)
    return out


def _takes(caps, *kinds: str) -> str | None:
    return next((k for k in kinds if k in caps.targets), None)


def _supports(b, p: Problem) -> bool:
    return b.caps.why_unsupported(p) is None


# -- the relations ---------------------------------------------------------------------------------
def _index_onehot(d, b, others):
    p = base(b.caps.op, d.dtype, d, "index")
    return Side(p), Side(replace(p, target=_onehot(p.target, p.num_classes), target_kind="onehot"))


def _shift(d, b, others):
    kind = _takes(b.caps, "index", "onehot", "soft")
    p = base("softmax_ce", d.dtype, d, kind)
    shifts = (np.arange(d.batch) % 3 - 1) * d.shift  # a different constant per row, one of them 0
    return Side(p), Side(replace(p, x=p.x + shifts[:, None]))


def _smoothing(d, b, others):
    kind = _takes(b.caps, "index", "onehot") if b.caps.op in CATEGORICAL_OPS else "binary"
    p = replace(base(b.caps.op, d.dtype, d, kind), label_smoothing=d.smoothing)
    dense = p.dense_target()
    k = p.num_classes if p.categorical else 2  # Keras's binary convention smooths toward 1/2
    soft = round_to(dense * (1.0 - d.smoothing) + d.smoothing / k, p.dtype)
    return Side(p), Side(replace(p, target=soft, target_kind="soft", label_smoothing=0.0))


def _ignore(d, b, others):
    if d.batch < 2:
        return None
    p = base(b.caps.op, d.dtype, d, "index")
    ignored = np.arange(d.batch) % 2 == 1  # every other row
    p = replace(p, target=np.where(ignored, -100, p.target), ignore_index=-100)
    kept = replace(p, x=p.x[~ignored], target=p.target[~ignored], ignore_index=None)

    def scatter(a):  # the dropped rows' results in place; an ignored row's gradient must be exactly 0
        out = np.zeros(p.x.shape[:1] + np.shape(a)[1:])
        out[~ignored] = a
        return out

    return Side(p), Side(kept, value_map=scatter if p.reduction == "none" else np.asarray, grad_map=scatter)


def _reduction(d, b, others):
    if d.reduction == "none":
        return None
    kind = _takes(b.caps, "index", "onehot", "soft", "binary")
    p = base(b.caps.op, d.dtype, d, kind)
    n = int(np.prod(reference.output_shape(p, b.convention_for(p))))
    k = 1.0 if d.reduction == "sum" else 1.0 / n
    return Side(p), Side(replace(p, reduction="none"), value_map=lambda v: np.sum(v) * k, cotangent=k)


def _sigmoid_softmax(d, b, others):
    p = base("sigmoid_bce", d.dtype, d, "binary", shape=(d.batch * d.classes, 1))
    two = replace(
        p,
        op="softmax_ce",
        x=np.concatenate([np.zeros_like(p.x), p.x], axis=-1),
        target=p.target[:, 0].astype(np.int64),
        target_kind="index",
    )
    softmax = next((o for o in others if o.caps.op == "softmax_ce" and _supports(o, two)), None)
    if softmax is None:
        return None
    return (
        Side(p, value_map=lambda v: np.reshape(v, -1), grad_map=lambda g: g[:, 0]),
        Side(two, binding=softmax, value_map=lambda v: np.reshape(v, -1), grad_map=lambda g: g[:, 1]),
    )


def _entropy(d, b, others):
    p = replace(base("softmax_ce", d.dtype, d, "soft"), reduction="none")
    with np.errstate(divide="ignore"):
        at_target = replace(p, x=round_to(np.log(p.target), p.dtype))  # the minimiser: CE(log p, p) = H(p)
    if not np.all(np.isfinite(at_target.x)):
        return None
    return Side(p), Side(at_target)


def _agrees(d, b, others):
    kind = _takes(b.caps, "index", "binary", "onehot", "soft")
    p = base(b.caps.op, d.dtype, d, kind)
    first = next((o for o in others if o.caps.op == b.caps.op and _supports(o, p)), None)
    if first is None or first.convention_for(p) != b.convention_for(p):
        return None
    return Side(p), Side(p, binding=first)


def _need(op=None, targets=(), options=(), reductions=()):
    def why(caps) -> str | None:
        if op and caps.op not in op:
            return f"binding implements {caps.op}"
        for t in targets:
            if not set(t.split("|")) & caps.targets:
                return f"needs {t.replace('|', ' or ')} targets"
        for o in options:
            if o not in caps.options:
                return f"needs option {o}"
        for r in reductions:
            if not set(r.split("|")) & caps.reductions:
                return f"needs reduction {r.replace('|', ' or ')}"
        return None

    return why


RELATIONS: tuple[Relation, ...] = (
    Relation(
        "index_onehot",
        "CE(z, index t) = CE(z, onehot(t))",
        _need(CATEGORICAL_OPS, targets=("index", "onehot")),
        _index_onehot,
    ),
    Relation("shift_invariance", "CE(z + c, t) = CE(z, t) for a constant c per row", _need({"softmax_ce"}), _shift),
    Relation(
        "label_smoothing_soft",
        "CE with smoothing e = CE with targets (1 - e) y + e / K",
        _need(targets=("soft",), options=("label_smoothing",)),
        _smoothing,
    ),
    Relation(
        "ignore_index_drop",
        "ignored rows count as dropped rows (zero weight)",
        _need(CATEGORICAL_OPS - {"linear_ce"}, targets=("index",), options=("ignore_index",)),
        _ignore,
    ),
    Relation(
        "reduction_of_none",
        "sum = sum of the unreduced loss; mean = that sum / count",
        _need(reductions=("none", "sum|mean")),
        _reduction,
        reductions=frozenset({"sum", "mean"}),
    ),
    Relation(
        "sigmoid_is_2class_softmax",
        "BCE(sigmoid z, t) = CE(softmax [0, z], t)",
        _need({"sigmoid_bce"}, targets=("binary",)),
        _sigmoid_softmax,
    ),
    Relation(
        "ce_at_least_entropy",
        "CE(z, p) >= CE(log p, p) = H(p)",
        _need({"softmax_ce"}, targets=("soft",), reductions=("none",)),
        _entropy,
        kind="ge",
        grad=False,
    ),
    Relation(
        "agrees_with_first_binding",
        "equals the framework's first binding of the same op",
        _need(),
        _agrees,
    ),
)
BY_NAME = {r.name: r for r in RELATIONS}


# -- running ---------------------------------------------------------------------------------------
def strategy(dtype: str, reductions: frozenset[str], wide: bool = False):
    """The hypothesis strategy of draws in ``dtype`` for a binding offering ``reductions``. The default
    run draws from a few shapes (frameworks that compile per shape, like JAX's eager dispatch, reuse
    their caches across relations); ``wide`` (the fuzz run) draws any small shape."""
    from hypothesis import strategies as st

    sizes = (
        (st.integers(1, 8), st.integers(2, 9))
        if wide
        else (st.sampled_from(DEFAULT_BATCHES), st.sampled_from(DEFAULT_CLASSES))
    )
    return st.builds(
        Draw,
        dtype=st.just(dtype),
        batch=sizes[0],
        classes=sizes[1],
        scale=st.sampled_from([0.5, 4.0, 30.0]),
        seed=st.integers(0, 2**16),
        reduction=st.sampled_from(sorted(reductions)),
        shift=st.integers(-100, 100).filter(bool),
        smoothing=st.sampled_from([0.1, 0.25, 0.5]),
    )


def _fits_somewhere(relation: Relation, subject: Subject, dtype: str, reductions: frozenset[str]) -> bool:
    """Whether any draw of the default run's grid (every size and reduction, fixed values) fits: a
    relation that needs a partner binding the framework lacks, or a target kind no partner takes, fits
    none, and hypothesis would reject draw after draw (hundreds, most of the relations' time) before
    giving up. Fitting depends on sizes, reductions and the bindings, not on the drawn values."""
    grid = itertools.product(DEFAULT_BATCHES, DEFAULT_CLASSES, sorted(reductions))
    return any(_fitting_sides(relation, subject, Draw(dtype, n, c, 0.5, 0, r, 1, 0.1)) for n, c, r in grid)


def _fitting_sides(relation: Relation, subject: Subject, d: Draw) -> tuple[Side, Side] | None:
    """The two sides of ``relation`` on draw ``d``, or None when the draw does not fit the bindings."""
    sides = relation.build(d, subject.binding, list(subject.others))
    if sides is None or not all(_supports(s.binding or subject.binding, s.problem) for s in sides):
        return None
    return sides


class _NotFinite(Exception):
    """A side overflowed to inf/NaN where the mathematics is finite (both sides NaN is no identity)."""


@dataclass
class _Outcome:
    ok: bool
    detail: str = ""
    tol_units: float = 0.0


@dataclass(frozen=True)
class Subject:
    """What a relation check runs on: ``binding`` of ``adapter``, and the ``others`` of its framework
    it may be compared with (see :func:`partners`)."""

    adapter: Adapter
    binding: Binding
    others: tuple[Binding, ...] = ()


def _evaluate(judge: Judge, subject: Subject, side: Side, grad: bool):
    b = side.binding or subject.binding
    p = side.problem
    conv = b.convention_for(p)
    cot = np.full(reference.output_shape(p, conv), side.cotangent) if p.reduction == "none" else None
    out = run_binding(subject.adapter, b, p, grad=grad, cotangent=cot, mode="eager")
    # a side is allowed the error of the binding's documented behaviour on any input (its "grad" entry)
    key = Check(subject.adapter.name, b.name, p.case, p.dtype, "eager", p.reduction, "grad", category=p.category)
    ev, dtype = judge.expected(key, b, p, cot).allowed
    finfo_max = float(np.finfo(p.dtype).max)
    for name, g, e in (("value", out.value, ev.value), ("grad", out.grad if grad else None, ev.grad)):
        # finite and representable in the dtype (a gradient of -1/p for a subnormal p may overflow)
        if g is not None and np.any((np.abs(e) <= finfo_max) & ~np.isfinite(g)):
            raise _NotFinite(
                f"{name} of {b.name} is not finite where the mathematics is: {np.asarray(g).ravel()[:6].tolist()}"
            )
    got = {"value": side.value_map(out.value)}
    bounds = {"value": side.value_map(np.broadcast_to(bound(ev.value_scale, dtype), np.shape(ev.value)))}
    if grad:
        got["grad"] = side.grad_map(out.grad)
        bounds["grad"] = side.grad_map(bound(ev.grad_scale, dtype))
    return got, bounds


def check_draw(judge: Judge, subject: Subject, relation: Relation, d: Draw) -> _Outcome | None:
    """Evaluate one drawn instance of ``relation``; None when the draw does not fit the binding."""
    binding = subject.binding
    sides = _fitting_sides(relation, subject, d)
    if sides is None:
        return None
    grad = relation.grad and binding.caps.grad and all((s.binding or binding).caps.grad for s in sides)
    try:
        (lv, lb), (rv, rb) = (_evaluate(judge, subject, s, grad) for s in sides)
    except _NotFinite as e:
        return _Outcome(False, str(e))
    worst = 0.0
    for check in lv:
        tol = np.asarray(lb[check]) + np.asarray(rb[check])
        if relation.kind == "ge":
            lhs, rhs = np.asarray(lv[check], float), np.asarray(rv[check], float)
            ok = np.isfinite(lhs) & np.isfinite(rhs) & (lhs >= rhs - tol)
            if not ok.all():
                i = int(np.argmin(ok))
                return _Outcome(False, f"{check}: {lhs.flat[i]!r} < {rhs.flat[i]!r} - {tol.flat[i]:.3g}")
            continue
        c = compare(lv[check], rv[check], tol)
        worst = max(worst, c.tol_units)
        if not c.ok:
            return _Outcome(False, f"{check}: {c.detail}", c.tol_units)
    return _Outcome(True, tol_units=worst)


def partners(judge: Judge, framework: str, binding: Binding, bindings: list[Binding], dtype: str) -> list[Binding]:
    """The framework's other bindings a relation may compare ``binding`` with: those the registry
    documents alike on relation inputs (a sibling whose documented behaviour differs may
    legitimately disagree)."""

    def documented(name: str) -> tuple:
        return tuple(
            getattr(
                judge.expectation(Check(framework, name, "relation", dtype, kind=c, category="relations")), "id", None
            )
            for c in ("value", "grad")
        )

    mine = documented(binding.name)
    return [
        b for b in bindings if b.name != binding.name and variant_of(b.name) == b.name and documented(b.name) == mine
    ]


def check_for(judge: Judge, framework: str, binding: Binding, relation: Relation, dtype: str) -> Check:
    """The check of ``relation`` for ``binding`` of ``framework`` in ``dtype`` (eager, on the judge's device)."""
    return Check(
        framework,
        binding.name,
        relation.name,
        dtype,
        "eager",
        "all",
        "relation",
        api=binding.api,
        op=binding.caps.op,
        category="relations",
        device=judge.device,
        statement=relation.statement,
    )


def declared_unsupported(binding: Binding, relation: Relation, dtype: str) -> str | None:
    """Why ``relation`` cannot run for ``binding`` in ``dtype``, from the binding's declaration alone
    (None: it may run). A run settles these at collection, as it settles conformance checks."""
    why = relation.applies(binding.caps) or (None if dtype in binding.caps.dtypes else f"dtype {dtype} not supported")
    if why is None and dtype not in RELATION_DTYPES:
        why = (
            f"relations run in {' and '.join(RELATION_DTYPES)}: a shifted or rearranged drawn input is exact there, "
            f"not in {dtype}"
        )
    return why


def run_relation(judge: Judge, subject: Subject, relation: Relation, check: Check) -> Verdict:
    """Check ``relation`` for ``subject``'s binding on the judge's number of hypothesis draws
    (``judge.relation_examples``); returns its verdict. Each side's bound is the one of the behaviour
    the registry documents for its binding on any relation input (e.g. a renormalised gradient)."""
    from hypothesis import HealthCheck, assume, given, seed, settings
    from hypothesis.errors import Unsatisfiable

    binding, dtype = subject.binding, check.dtype
    base = Verdict(compute_dtype=dtype)
    why = declared_unsupported(binding, relation, dtype)
    reductions = binding.caps.reductions & relation.reductions if relation.reductions else binding.caps.reductions
    if why is None and not _fits_somewhere(relation, subject, dtype, reductions):
        why = f"no drawn input fits the binding ({relation.statement})"
    if why:
        return replace(base, reason=why)
    seen = {"ran": 0, "worst": 0.0, "last": None}

    # The default run's draws are fixed by the check's id (not by this function's source, which
    # hypothesis's derandomize would hash: an edit here must not change which inputs are drawn).
    @seed(zlib.crc32(check.id.encode()) if judge.derandomize else None)
    @settings(
        max_examples=judge.relation_examples,
        derandomize=False,
        deadline=None,
        database=None,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy(dtype, reductions, wide=not judge.derandomize))
    def holds(d: Draw) -> None:
        out = check_draw(judge, subject, relation, d)
        assume(out is not None)  # a draw that does not fit is replaced: the relation runs on `examples` inputs
        seen["ran"] += 1
        seen["last"] = d
        seen["worst"] = max(seen["worst"], out.tol_units)
        assert out.ok, f"{out.detail} for {d}"

    t0 = time.perf_counter()
    try:
        holds()
    except AssertionError as e:
        outcome, why = "fail", f"{relation.statement} does not hold: {str(e).splitlines()[0]}"[:800]
    except Unsatisfiable:
        outcome, why = "unsupported", f"no drawn input fits the binding ({relation.statement})"
    except Exception as e:  # the binding raised on a drawn input
        outcome, why = "error", f"{one_line(e)} (on {seen['last']})"
    else:
        outcome, why = (
            ("unsupported", f"no drawn input fits the binding ({relation.statement})")
            if seen["ran"] == 0
            else ("pass", f"held on {seen['ran']} drawn inputs")
        )
    return replace(
        base,
        outcome=outcome,
        reason=why,
        duration_s=time.perf_counter() - t0,
        errors=Errors(max_abs=0.0, max_rel=0.0, tol_units=seen["worst"], eps_units=0.0, mismatches=0),
    )
