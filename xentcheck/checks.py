"""Checks: run one binding on one problem and turn the comparison with the oracle into an outcome.

Outcomes (``docs/results.md``): ``pass``, ``deviation`` (documented in the registry and matching it),
``fail``, ``unsupported`` (outside the binding's capabilities; the reason is recorded), ``error`` (the
binding raised). The verdict itself is :func:`xentcheck.verdict.judge`; this module runs the binding
and fills the record. It imports no framework: it drives whatever adapter it is given.
"""
from __future__ import annotations

import time
import traceback
import zlib

import numpy as np

from . import reference
from .exception_text import one_line, raised_at
from .expectations import Registry
from .invalid_input import judge_invalid_input
from .problem import Problem, round_to
from .protocol import Adapter, Binding, ContractError, run_binding
from .records import OUTCOMES, CheckRecord
from .verdict import Verdict, compare_check, judge, judge_raised

__all__ = ["CHECKS", "OUTCOMES", "check_id", "cotangent_for", "new_record", "run_check", "unsupported_reason"]

CHECKS = ("value", "grad")


def check_id(framework: str, binding: str, case: str, dtype: str, mode: str, reduction: str, check: str) -> str:
    """The test id part naming one check; ``-k`` selects any slice of it."""
    return "-".join((framework, binding, case, dtype, mode, reduction, check))


def cotangent_for(problem: Problem, conv: reference.Convention) -> np.ndarray | None:
    """The seeded upstream gradient for an unreduced output (rounded to the dtype), else None.

    A random cotangent rather than ones, so that a per-element scaling bug cannot hide in a sum. A case
    may declare its own (``cotangent``); it is used where the binding's unreduced output has its shape
    (a binary loss that averages the last axis returns one value per row: the seeded one is used there).
    """
    if problem.reduction != "none":
        return None
    shape = reference.output_shape(problem, conv)
    if problem.cotangent is not None and problem.cotangent.shape == shape:  # the case's own
        return round_to(problem.cotangent, problem.dtype)
    rng = np.random.default_rng(zlib.crc32(f"{problem.case}:{shape}".encode()))
    return round_to(rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape), problem.dtype)


def _vs_eager(adapter: Adapter, binding: Binding, problem: Problem, check: str, cot: np.ndarray | None,
              got: np.ndarray, ev: reference.Evaluation, dtype: str, device: str) -> dict:
    """How far a compiled result lies from the same binding's eager result, in units of twice the bound
    of the evaluation the check was judged by (each may err by one bound): a compiler that changes the
    numbers beyond rounding is visible even where both results pass."""
    try:
        eager = run_binding(adapter, binding, problem, grad=check == "grad", cotangent=cot, mode="eager",
                            device=device)
    except Exception as e:
        return {"error": one_line(e)}

    def double(sc: tuple) -> tuple:
        return 2 * sc[0], 2 * sc[1]

    c = compare_check(got, reference.Evaluation(eager.value, eager.grad, double(ev.value_scale),
                                                double(ev.grad_scale)), check, dtype)
    return {**c.errors().to_json(), "same": c.ok, "detail": c.detail[:300]}


def unsupported_reason(binding: Binding, problem: Problem, check: str, mode: str = "eager",
                       device: str = "cpu") -> str | None:
    """Why this check cannot run (outside the binding's declared capabilities), or None. It depends on
    declarations only, so a run can settle it without calling the binding."""
    reason = binding.caps.why_unsupported(problem, mode=mode, device=device)
    if reason is None and check == "grad" and not binding.caps.grad:
        reason = "no gradient: the framework has no autodiff for this API"
    if reason is None and check == "grad" and problem.invalid_input:
        reason = "gradients are not checked for invalid input (the errors layer judges what the call does)"
    return reason


def new_record(framework: str, binding: Binding, problem: Problem, check: str, mode: str = "eager",
               device: str = "cpu") -> CheckRecord:
    """A check's record before it runs: outcome ``unsupported`` with an empty reason."""
    return CheckRecord(
        id=check_id(framework, binding.name, problem.case, problem.dtype, mode, problem.reduction, check),
        framework=framework, binding=binding.name, api=binding.api, op=problem.op, case=problem.case,
        category=problem.category, dtype=problem.dtype, mode=mode, device=device, reduction=problem.reduction,
        target=problem.target_kind, check=check)


def run_check(adapter: Adapter, binding: Binding, problem: Problem, check: str, *, registry: Registry,
              versions: dict, mode: str = "eager", device: str = "cpu") -> CheckRecord:
    """Run one check and return its results record (see docs/results.md for the fields)."""
    rec = new_record(adapter.name, binding, problem, check, mode, device)
    reason = unsupported_reason(binding, problem, check, mode, device)
    if reason is not None:
        rec.reason = reason
        return rec
    if problem.invalid_input:
        return judge_invalid_input(rec, adapter, binding, problem, registry, versions, mode, device)
    conv = binding.convention_for(problem)
    cot = cotangent_for(problem, conv)
    t0 = time.perf_counter()
    try:
        out = run_binding(adapter, binding, problem, grad=check == "grad", cotangent=cot, mode=mode, device=device)
    except Exception as e:  # the binding raised where the mathematics has an answer (or broke the protocol)
        rec.outcome, rec.reason, rec.duration_s = "error", one_line(e), time.perf_counter() - t0
        rec.traceback = "".join(traceback.format_exception_only(type(e), e))[-2000:]
        rec.raised = {"type": type(e).__name__, "at": raised_at(e)}
        documented = None if isinstance(e, ContractError) else \
            judge_raised(registry, versions, adapter.name, binding, problem, check, e, mode=mode)
        if documented is not None:
            rec.outcome, rec.reason, rec.expectation = documented
            rec.expectation_differs = True
        return _with_repro(rec, adapter, binding, problem, check, cot, conv)
    rec.duration_s = time.perf_counter() - t0
    got = out.value if check == "value" else out.grad
    try:
        v = judge(registry, versions, adapter.name, binding, problem, check, got, result_dtype=out.dtype_of(check),
                  mode=mode, cotangent=cot)
    except Exception as e:  # xentcheck's own oracle or judge failed: a defect of the harness, said as such
        rec.outcome = "error"
        rec.reason = f"xentcheck could not judge this result (its oracle or judge raised): {one_line(e)}"[:500]
        rec.traceback = "".join(traceback.format_exception(type(e), e, e.__traceback__))[-2000:]
        return rec
    _fill(rec, v, out.dtype_of(check))
    if mode != "eager":
        rec.vs_eager = _vs_eager(adapter, binding, problem, check, cot, got, v.judged_by, v.expected.dtype, device)
    return _with_repro(rec, adapter, binding, problem, check, cot, conv, v.expected.math)


def _fill(rec: CheckRecord, v: Verdict, result_dtype: str) -> None:
    """Copy a verdict into a check's record."""
    rec.outcome, rec.reason, rec.expectation = v.outcome, v.reason, v.expectation
    rec.result_dtype, rec.compute_dtype = result_dtype, v.expected.dtype
    rec.errors = v.errors.errors()
    rec.expectation_differs = v.expectation_differs
    if v.outcome in ("fail", "deviation") and v.errors.worst:
        rec.worst = [dict(w) for w in v.errors.worst]
    if v.errors_vs_expectation is not None:
        rec.errors_vs_expectation = v.errors_vs_expectation.errors()


def _with_repro(rec: CheckRecord, adapter: Adapter, binding: Binding, problem: Problem, check: str,
                cot: np.ndarray | None, conv: reference.Convention,
                ev: reference.Evaluation | None = None) -> CheckRecord:
    """A fail, an error or a documented deviation gets a standalone snippet reproducing it, where the
    adapter can write one (ending with the oracle's answer: ``ev``, evaluated here when the binding
    raised before it was); the report's findings show them."""
    if rec.outcome in ("fail", "error", "deviation") and hasattr(adapter, "repro"):
        try:
            ev = ev or reference.evaluate(problem, conv, cot)
            text = adapter.repro(binding, problem, check, cot, ev.value if check == "value" else ev.grad,
                                 rec.mode)
        except Exception:  # a snippet is a courtesy: never let it cost the record
            text = None
        if text:
            rec.repro = text
    return rec
