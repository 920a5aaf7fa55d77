"""Checks: run one binding on one problem and turn the comparison with the oracle into an outcome.

Outcomes (DESIGN.md): ``pass``, ``deviation`` (documented in the registry and matching it), ``fail``,
``unsupported`` (outside the binding's capabilities; the reason is recorded), ``error`` (the binding
raised). This module imports no framework: it drives whatever adapter it is given.
"""
from __future__ import annotations

import time
import traceback
import zlib
from typing import Any

import numpy as np

from . import reference
from .compare import Comparison, compare
from .expectations import Registry
from .invalid_input import judge_invalid_input
from .problem import Problem, round_to, unit_roundoff
from .tolerance import bound, compute_dtype

OUTCOMES = ("pass", "deviation", "fail", "unsupported", "error")
CHECKS = ("value", "grad")


def check_id(framework: str, binding: str, case: str, dtype: str, mode: str, reduction: str, check: str) -> str:
    """The test id part naming one check; ``-k`` selects any slice of it."""
    return "-".join((framework, binding, case, dtype, mode, reduction, check))


def cotangent_for(problem: Problem, conv: reference.Convention) -> np.ndarray | None:
    """The seeded upstream gradient for an unreduced output (rounded to the dtype), else None.

    A random cotangent rather than ones, so that a per-element scaling bug cannot hide in a sum.
    """
    if problem.reduction != "none":
        return None
    shape = reference.output_shape(problem, conv)
    rng = np.random.default_rng(zlib.crc32(f"{problem.case}:{shape}".encode()))
    return round_to(rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape), problem.dtype)


def overflowed(exp: np.ndarray, dtype: str) -> np.ndarray:
    """``exp`` with every value beyond ``dtype``'s range as the +-inf that correct rounding gives there."""
    with np.errstate(over="ignore"):
        r = round_to(exp, dtype)
    return np.where(np.isinf(r) & np.isfinite(exp), r, exp)


def _compare(got: np.ndarray, ev: reference.Evaluation, check: str, dtype: str) -> Comparison:
    exp = overflowed(ev.value if check == "value" else ev.grad, dtype)
    scale = ev.value_scale if check == "value" else ev.grad_scale
    return compare(got, exp, bound(scale, dtype), scale_a=scale[0], eps=2 * unit_roundoff(dtype))


def _vs_eager(adapter: Any, binding: Any, problem: Problem, check: str, cot, got: np.ndarray,
              ev: reference.Evaluation, dtype: str, device: str) -> dict:
    """How far a compiled result lies from the same binding's eager result, in units of twice the bound
    of the evaluation the check was judged by (each may err by one bound): a compiler that changes the
    numbers beyond rounding is visible even where both results pass."""
    try:
        eager = adapter.run(binding, problem, grad=check == "grad", cotangent=cot, mode="eager", device=device)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0][:200]}
    double = (lambda sc: (2 * sc[0], 2 * sc[1]))
    c = _compare(got, reference.Evaluation(eager.value, eager.grad, double(ev.value_scale), double(ev.grad_scale)),
                 check, dtype)
    return {**c.errors(), "same": c.ok, "detail": c.detail[:300]}


def unsupported_reason(binding: Any, problem: Problem, check: str, mode: str = "eager",
                       device: str = "cpu") -> str | None:
    """Why this check cannot run (outside the binding's declared capabilities), or None. It depends on
    declarations only, so a run can settle it without calling the binding."""
    reason = binding.caps.why_unsupported(problem, mode=mode, device=device)
    if reason is None and check == "grad" and not binding.caps.grad:
        reason = "no gradient: the framework has no autodiff for this API"
    if reason is None and check == "grad" and problem.invalid_input:
        reason = "gradients are not checked for invalid input (the errors layer judges what the call does)"
    return reason


def new_record(framework: str, binding: Any, problem: Problem, check: str, mode: str = "eager",
               device: str = "cpu") -> dict:
    """A check's record before it runs: outcome ``unsupported`` with an empty reason."""
    return {
        "id": check_id(framework, binding.name, problem.case, problem.dtype, mode, problem.reduction, check),
        "framework": framework, "binding": binding.name, "api": binding.api, "op": problem.op,
        "case": problem.case, "category": problem.category, "dtype": problem.dtype, "mode": mode, "device": device,
        "reduction": problem.reduction, "target": problem.target_kind, "check": check,
        "outcome": "unsupported", "reason": "", "expectation": None, "errors": None,
        "result_dtype": None, "compute_dtype": None, "duration_s": 0.0,
    }


def run_check(adapter: Any, binding: Any, problem: Problem, check: str, *, registry: Registry, versions: dict,
              mode: str = "eager", device: str = "cpu") -> dict:
    """Run one check and return its results record (see docs/results.md for the fields)."""
    rec = new_record(adapter.name, binding, problem, check, mode, device)
    reason = unsupported_reason(binding, problem, check, mode, device)
    if reason is not None:
        rec["reason"] = reason
        return rec
    if problem.invalid_input:
        return judge_invalid_input(rec, adapter, binding, problem, registry, versions, mode, device)
    conv = binding.convention_for(problem)
    cot = cotangent_for(problem, conv)
    t0 = time.perf_counter()
    try:
        out = adapter.run(binding, problem, grad=check == "grad", cotangent=cot, mode=mode, device=device)
    except Exception as e:  # the binding raised where the mathematics has an answer
        first_line = (str(e).strip().splitlines() or [""])[0]
        rec.update(outcome="error", reason=f"{type(e).__name__}: {first_line}"[:500], duration_s=time.perf_counter() - t0)
        rec["traceback"] = "".join(traceback.format_exception_only(type(e), e))[-2000:]
        return _with_repro(rec, adapter, binding, problem, check, cot, conv)
    rec["duration_s"] = time.perf_counter() - t0
    got = out.value if check == "value" else out.grad
    dtype = compute_dtype(problem.dtype, out.dtype)
    rec["result_dtype"], rec["compute_dtype"] = out.dtype, dtype
    math_ev = reference.evaluate(problem, conv, cot)
    vs_math = _compare(got, math_ev, check, dtype)
    rec["errors"] = vs_math.errors()
    judged_by = _judge(rec, got, problem, check, conv, cot, math_ev, vs_math, dtype, registry, versions, mode)
    if mode != "eager":
        rec["vs_eager"] = _vs_eager(adapter, binding, problem, check, cot, got, judged_by, dtype, device)
    return _with_repro(rec, adapter, binding, problem, check, cot, conv, math_ev)


def _with_repro(rec: dict, adapter: Any, binding: Any, problem: Problem, check: str, cot,
                conv: reference.Convention, ev: reference.Evaluation | None = None) -> dict:
    """A fail or error gets a standalone snippet reproducing it, where the adapter can write one
    (ending with the oracle's answer: ``ev``, evaluated here when the binding raised before it was)."""
    if rec["outcome"] in ("fail", "error") and hasattr(adapter, "repro"):
        try:
            ev = ev or reference.evaluate(problem, conv, cot)
            text = adapter.repro(binding, problem, check, cot, ev.value if check == "value" else ev.grad,
                                 rec["mode"])
        except Exception:  # a snippet is a courtesy: never let it cost the record
            text = None
        if text:
            rec["repro"] = text
    return rec


def _judge(rec: dict, got: np.ndarray, problem: Problem, check: str, conv: reference.Convention, cot,
           math_ev: reference.Evaluation, vs_math: Comparison, dtype: str, registry: Registry, versions: dict,
           mode: str) -> reference.Evaluation:
    """Set ``rec``'s outcome against the mathematics and the registry; return the evaluation it was
    judged by (the registry's documented behaviour for a deviation, else the mathematics)."""
    framework, binding = rec["framework"], rec["binding"]
    entry = registry.find(framework, binding, problem.case, problem.category, problem.dtype, check, versions, mode)
    if entry is None:
        rec["outcome"] = "pass" if vs_math.ok else "fail"
        rec["reason"] = vs_math.detail
        return math_ev
    rec["expectation"] = entry.id
    dev_ev = reference.evaluate(problem, entry.convention(conv), cot)
    dev_dtype = compute_dtype(entry.compute_dtype or dtype, dtype)
    vs_policy = _compare(got, dev_ev, check, dev_dtype)
    expected = dev_ev.value if check == "value" else dev_ev.grad
    # Whether the documented behaviour is distinguishable from the mathematics on this input; a
    # precision-only entry (compute_dtype) is not, per check: the run-level audit covers it.
    policy_differs = not _compare(expected, math_ev, check, dtype).ok
    rec["expectation_differs"] = policy_differs or entry.compute_dtype is not None
    if vs_math.ok:
        if policy_differs:
            rec["outcome"] = "fail"
            rec["reason"] = (f"expectation {entry.id!r} no longer happens: the result matches the mathematics "
                             f"where the documented policy {entry.expect} would differ; update the registry")
        else:
            rec["outcome"] = "pass"  # the policy makes no difference on this input
        return math_ev
    if vs_policy.ok:
        rec["outcome"] = "deviation"
        rec["reason"] = f"{entry.reason} (as documented: {entry.expect}); vs mathematics: {vs_math.detail}"
        rec["errors_vs_expectation"] = vs_policy.errors()
        return dev_ev
    rec["outcome"] = "fail"
    rec["reason"] = (f"differs from the mathematics ({vs_math.detail}) and from expectation {entry.id!r} "
                     f"({vs_policy.detail})")
    return math_ev
