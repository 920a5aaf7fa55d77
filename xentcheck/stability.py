"""The stability sweep: each binding's loss and gradient along a path to the edge of its dtype.

One *axis* is a family of inputs indexed by one number: the logit magnitude (from 0.1 up to the
dtype's largest finite value), a probability approaching 0 (down through the subnormals to 0) or
approaching 1 (until it rounds to 1). Every point of an axis is one row of a single batch, so a
binding runs each axis once per dtype (unreduced, with a cotangent of ones, so each row's gradient
is its own). Each point is judged against the oracle with the derived per-element bound and gets a
status: ``ok``, ``documented`` (within the bound of the binding's registry entry), ``inaccurate``
(finite but beyond the bound), ``inf`` or ``nan`` (where the mathematics is finite), ``error``.

The sweep is a diagnostic drawn as the report's stability charts (where does each API stop being
right?); the verdicts stay with the checks, whose cases include points of these axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from . import reference
from .check import Check, Verdict
from .exception_text import one_line
from .problem import LOGIT_OPS, Problem, numpy_dtype, round_to
from .protocol import Adapter, Binding, run_binding
from .records import StabilityPoint, StabilityRecord
from .tolerance import bound
from .verdict import expected_for

if TYPE_CHECKING:
    from .checks import Judge

STATUSES = ("ok", "documented", "inaccurate", "inf", "nan", "error")
MAX_POINTS = 40


@dataclass(frozen=True)
class Axis:
    """One sweep path: which ops it applies to, the registry category it falls in, and its points."""

    name: str
    label: str  # what the x axis shows
    ops: frozenset[str]
    category: str
    points: Callable[[str], np.ndarray]
    build: Callable[[str, str, np.ndarray], tuple[np.ndarray, np.ndarray]]  # (op, dtype, pts) -> x, dense target


def _exponents(lo: int, hi: int) -> np.ndarray:
    """At most MAX_POINTS decimal exponents from lo to hi, evenly spaced."""
    step = max(1, math.ceil((hi - lo) / MAX_POINTS))
    return np.arange(lo, hi + 1, step, dtype=np.float64)


def _finfo(dtype: str):
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(numpy_dtype(dtype))


def _magnitudes(dtype: str) -> np.ndarray:
    big = float(_finfo(dtype).max)
    return np.append(10.0 ** _exponents(-1, int(math.floor(math.log10(big)))), big)


def _to_zero(dtype: str) -> np.ndarray:
    tiny = float(_finfo(dtype).smallest_subnormal)
    # through the subnormals to the smallest one, then exactly 0
    return np.append(10.0 ** -_exponents(1, int(math.floor(-math.log10(tiny)))), [tiny, 0.0])


def _to_one(dtype: str) -> np.ndarray:
    digits = int(math.ceil(-math.log10(float(_finfo(dtype).eps)))) + 1
    return np.append(10.0 ** -_exponents(1, digits), 0.0)  # the distance from 1; its last point is exactly 1


#: the softmax row: the target (class 2) is neither the largest logit nor the smallest, so the loss
#: grows like 0.75 m and stays representable up to the dtype's largest logit
_ROW = np.array([1.0, -0.5, 0.25, -1.0])
_TARGET = 2


def _logits(op: str, dtype: str, m: np.ndarray):
    if op == "softmax_ce":
        x = round_to(m[:, None] * _ROW, dtype)
        return x, np.eye(len(_ROW))[np.full(len(m), _TARGET)]
    # sigmoid: a large positive logit against a 0 label (loss ~ m) and a large negative one (loss ~ e^-m)
    x = round_to(np.stack([m, -m], axis=1), dtype)
    return x, np.zeros_like(x)


def _probabilities(to_one: bool) -> Callable:
    def build(op: str, dtype: str, d: np.ndarray):
        p = round_to(1.0 - d if to_one else d, dtype)  # the probability of the target class
        if op == "categorical_ce":
            x = np.stack([p, round_to(1.0 - p, dtype)], axis=1)
            return x, np.tile([1.0, 0.0], (len(p), 1))
        return p[:, None], np.ones((len(p), 1))

    return build


AXES = (
    Axis("logit_magnitude", "largest |logit|", LOGIT_OPS, "extreme logits", _magnitudes, _logits),
    Axis(
        "probability_to_0",
        "probability of the target",
        frozenset({"categorical_ce", "bce"}),
        "zero probabilities",
        _to_zero,
        _probabilities(False),
    ),
    Axis(
        "probability_to_1",
        "1 - probability of the target",
        frozenset({"categorical_ce", "bce"}),
        "zero probabilities",
        _to_one,
        _probabilities(True),
    ),
)
BY_NAME = {a.name: a for a in AXES}


def problem(axis: Axis, op: str, dtype: str, target_kind: str) -> tuple[Problem, np.ndarray]:
    """The batch of one axis for one op and dtype (target kind as the binding takes it), and its points."""
    pts = axis.points(dtype)
    x, dense = axis.build(op, dtype, pts)
    if target_kind == "index":
        target = dense.argmax(axis=-1).astype(np.int64)
    else:
        target = dense
    return Problem(
        case=f"stability_{axis.name}",
        op=op,
        dtype=dtype,
        x=x,
        target=target,
        target_kind=target_kind,
        reduction="none",
        category=axis.category,
    ), pts


def _per_row(a: np.ndarray, rows: int) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(rows, -1)


def _row_units(got: np.ndarray, ev_val: np.ndarray, scale, dtype: str, rows: int) -> np.ndarray:
    """Per-row error in units of the derived bound (inf where got is non-finite but expected finite).
    The expectation is first rounded to ``dtype``: a true value beyond its range is right as inf."""
    g, e = _per_row(got, rows), _per_row(round_to(ev_val, dtype), rows)
    b = _per_row(np.broadcast_to(bound(scale, dtype), np.shape(ev_val)), rows)
    with np.errstate(all="ignore"):
        same = (g == e) | (np.isnan(g) & np.isnan(e))
        units = np.where(same, 0.0, np.abs(g - e) / b)
    return np.nan_to_num(units, nan=np.inf).max(axis=1)  # nan here only from inf - inf: the worst


def _status(got_rows: np.ndarray, exp_rows: np.ndarray, units: np.ndarray, policy_units: np.ndarray | None) -> list:
    out = []
    policy = policy_units if policy_units is not None else [None] * len(units)
    for g, e, u, pu in zip(got_rows, exp_rows, units, policy, strict=True):
        if u <= 1:
            out.append("ok")
        elif pu is not None and pu <= 1:
            out.append("documented")
        elif np.isnan(g).any() and not np.isnan(e).any():
            out.append("nan")
        elif np.isinf(g).any() and np.isfinite(e).all():
            out.append("inf")
        else:
            out.append("inaccurate")
    return out


def _json_number(v: float) -> float | str:
    """A number as strict JSON holds it: non-finite values as the strings "inf", "-inf", "nan"."""
    return float(v) if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))


def check_for(judge: Judge, framework: str, binding: Binding, axis: Axis, dtype: str) -> Check:
    """The check of ``binding`` of ``framework`` along ``axis`` in ``dtype`` (eager, on the judge's device)."""
    return Check(
        framework,
        binding.name,
        axis.name,
        dtype,
        kind="stability",
        api=binding.api,
        op=binding.caps.op,
        device=judge.device,
        statement=axis.label,
    )


def sweep(judge: Judge, adapter: Adapter, binding: Binding, check: Check) -> Verdict:
    """Run one binding along one axis (``check.case``) in one dtype (eager); returns its verdict, whose
    points the record keeps (:func:`xentcheck.check.record`)."""
    caps, axis, dtype = binding.caps, BY_NAME[check.case], check.dtype
    ok = Verdict(outcome="ok")
    kinds = [k for k in ("index", "onehot", "soft", "binary") if k in caps.targets]
    if caps.op not in axis.ops or not kinds:
        return replace(ok, outcome="unsupported", reason=f"the axis applies to {', '.join(sorted(axis.ops))}")
    with np.errstate(all="ignore"):  # the points overflow on purpose; what the binding returns is judged
        prob, pts = problem(axis, caps.op, dtype, kinds[0])
    why = caps.why_unsupported(prob, device=judge.device)
    if why is not None:
        return replace(ok, outcome="unsupported", reason=why)
    conv = binding.convention_for(prob)
    cot = np.ones(reference.output_shape(prob, conv))
    try:
        with np.errstate(all="ignore"):
            out = run_binding(adapter, binding, prob, grad=caps.grad, cotangent=cot, mode="eager")
    except Exception as e:
        return replace(ok, outcome="error", reason=one_line(e))
    rows = len(pts)
    entries = set()
    math = reference.evaluate(prob, conv, cot)  # one oracle call serves the value and the gradient

    def judge_rows(kind: str, got: np.ndarray):
        """Per-row error units and statuses of one check, against the mathematics and any registry entry."""
        key = Check(
            adapter.name, binding.name, prob.case, prob.dtype, "eager", prob.reduction, kind, category=prob.category
        )
        ex = expected_for(judge.expectation(key, prob), binding, prob, cot, math)
        pick = (lambda e: (e.value, e.value_scale)) if kind == "value" else (lambda e: (e.grad, e.grad_scale))
        exp, scale = pick(ex.math)
        units = _row_units(got, exp, scale, ex.dtype, rows)
        policy_units = None
        if ex.entry is not None:
            entries.add(ex.entry.id)
            pexp, pscale = pick(ex.documented)
            policy_units = _row_units(got, pexp, pscale, ex.documented_dtype, rows)
        return units, _status(_per_row(got, rows), _per_row(round_to(exp, ex.dtype), rows), units, policy_units), exp

    v_units, v_status, exp_value = judge_rows("value", out.value)
    got_v, exp_v = _per_row(out.value, rows), _per_row(exp_value, rows)
    g_units, g_status, _ = judge_rows("grad", out.grad) if out.grad is not None else (None, None, None)
    points = []
    for i, p in enumerate(pts):
        grad = {} if g_status is None else {"grad_units": _json_number(g_units[i]), "grad_status": g_status[i]}
        points.append(
            StabilityPoint(
                x=float(p),
                value=_json_number(got_v[i].sum()),
                reference=_json_number(exp_v[i].sum()),
                value_units=_json_number(v_units[i]),
                value_status=v_status[i],
                **grad,
            )
        )
    return replace(ok, points=tuple(points), expectations=tuple(sorted(entries)))


def first_failure(rec: StabilityRecord, key: str = "value_status") -> StabilityPoint | None:
    """The first point (in axis order) whose status is neither ok nor documented, if any."""
    return next((p for p in rec.points if getattr(p, key) not in (None, "ok", "documented")), None)
