"""The errors layer: what a binding does with invalid input (an out-of-range label, a malformed target).

There is no loss to compare with, or only the well-formed problem's: raising is always right, a
behaviour the registry documents (``invalid_targets``) is a deviation, and any other number returned
is silent garbage. Only values are judged.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace

import numpy as np

from . import reference
from .compare import compare
from .exception_text import one_line, raised_at
from .expectations import Expectation, Registry
from .problem import Problem
from .protocol import Adapter, Binding, ContractError, run_binding
from .records import CheckRecord
from .tolerance import bound
from .verdict import expected_for

#: where the built-in adapters' own code lives
GLUE = "adapters/"
#: how a call the adapter itself got wrong fails (a keyword or an API the installed version lacks)
_SIGNATURE = re.compile(r"unexpected keyword argument|positional arguments? but|missing \d+ required|"
                        r"multiple values for argument")


def glue_failure(e: BaseException, where: str) -> bool:
    """Whether ``e`` is the adapter's own call failing rather than the framework refusing the input:
    raised in the built-in adapters' code, as a call with a wrong signature or a name the installed
    version lacks. (A NumPy ufunc's ValueError also surfaces in adapter code, as C code has no frame
    of its own: that is the framework's refusal.)"""
    if not where.startswith(GLUE):
        return False
    if isinstance(e, TypeError):
        return bool(_SIGNATURE.search(str(e)))
    return isinstance(e, (AttributeError, NameError, ImportError))


def judge_invalid_input(rec: CheckRecord, adapter: Adapter, binding: Binding, problem: Problem,
                        registry: Registry, versions: dict, mode: str, device: str) -> CheckRecord:
    """Fill ``rec`` (a check's record) for invalid input. Raising is always right. Otherwise:

    - an out-of-range label (``invalid_target``) has no loss: the valid rows must be exact, and the
      invalid ones may only be what the registry documents (``nan``, NumPy-style ``wrap``);
    - a malformed but unambiguous target (``float_labels``, ``int_targets``, ``target_rank``) may also be
      taken for what it means: the exact loss of the well-formed problem passes;
    - a target with an example missing has no loss at all.

    Any other number is silent garbage (fail)."""
    entry = registry.find(adapter.name, binding.name, problem.case, problem.category, problem.dtype, "value",
                          versions, mode, problem.options_used(), problem.reduction,
                          problem=problem)
    documented = entry.expect.get("invalid_targets") if entry else None
    refusal = entry if entry is not None and entry.raises else None
    if entry is not None and documented:
        rec.expectation, rec.expectation_differs = entry.id, True
    what = f"the invalid label {problem.invalid_target}" if problem.invalid_target is not None else \
        f"the malformed target ({problem.malformed})"
    t0 = time.perf_counter()
    try:
        out = run_binding(adapter, binding, problem, grad=False, cotangent=None, mode=mode, device=device)
    except ContractError as e:  # the adapter's own failure, not the framework refusing the input
        rec.duration_s = time.perf_counter() - t0
        rec.settle("error", one_line(e))
        return rec
    except Exception as e:
        rec.duration_s = time.perf_counter() - t0
        where = raised_at(e)
        rec.raised = {"type": type(e).__name__, "at": where}
        if glue_failure(e, where):  # e.g. a TypeError for a keyword this version lacks, at the call site
            rec.settle("error", f"raised by xentcheck's adapter code at {where}, not by the framework: "
                                f"{one_line(e)}")
            return rec
        if refusal is not None:  # the error-input table names the exception: another one fails
            rec.expectation, rec.expectation_differs = refusal.id, True
            if refusal.raised_as_documented(e):
                rec.settle("pass", f"rejects {what} with {refusal.raises}, as documented: {one_line(e)}")
            else:
                pattern = refusal.expect.get("message")
                rec.settle("fail", f"rejects {what} with {type(e).__name__} where expectation {refusal.id!r} "
                                   f"documents {refusal.raises}{f' matching {pattern!r}' if pattern else ''}: "
                                   f"{one_line(e)}")
            return rec
        if documented:
            rec.outcome = "fail"
            rec.reason = (f"expectation {entry.id!r} no longer happens: the binding now rejects {what} "
                          f"({type(e).__name__}); update the registry")
        else:
            rec.outcome, rec.reason = "pass", f"rejects {what}: {one_line(e)} (raised at {where})"
        return rec
    rec.duration_s = time.perf_counter() - t0
    if refusal is not None:
        rec.expectation, rec.expectation_differs = refusal.id, True
        rec.settle("fail", f"expectation {refusal.id!r} no longer happens: the binding no longer raises "
                           f"{refusal.raises} for {what}; update the registry")
        return rec
    ex = expected_for(registry, versions, adapter.name, binding, problem, "value", mode=mode)
    # the loss the binding documents computing (its registry policies, if any): a malformed target taken
    # for what it means is judged against the same loss its well-formed twin is
    conv = ex.documented_convention
    ev, dtype = ex.allowed  # dtype, e.g. TF1 losses: float64 inputs, float32 accuracy
    rec.result_dtype, rec.compute_dtype = out.dtype, dtype
    got = np.asarray(out.value, dtype=np.float64)
    garbage = f"returned {np.array2string(got.ravel()[:8], precision=4)} (shape {got.shape}) for {what} without raising"
    if documented == "broadcast" and problem.malformed is not None:
        return _broadcast_check(rec, got, problem, conv, dtype, entry, what)
    if got.shape != ev.value.shape:
        rec.settle("fail", f"{garbage}; the well-formed problem's loss has shape {ev.value.shape} "
                                          f"(silent garbage)"[:500])
        return rec
    if documented == "int_truncated" and problem.malformed is not None:
        # the loss computed, then cast to the integer target's dtype: truncated toward zero. Where the
        # exact loss is within its bound of an integer, rounding may put it on either side, so the floor
        # or the ceiling is accepted there: only those two integers, never any value
        near = np.abs(ev.value - np.round(ev.value)) <= bound(ev.value_scale, dtype)
        either = (got == np.floor(ev.value)) | (got == np.ceil(ev.value))
        ok = bool(np.all((got == np.trunc(ev.value)) | (near & either)))
        rec.outcome = "deviation" if ok else "fail"
        rec.reason = (f"{entry.reason} (as documented: {entry.expect})" if ok else
                         f"expectation {entry.id!r} says the loss truncated to integers for {what}: {garbage}")
        return rec
    if problem.malformed is not None:
        c = compare(got, ev.value, bound(ev.value_scale, dtype))
        rec.errors = c.errors()
        if problem.has_loss and c.ok and not documented:
            rec.settle("pass", f"takes {what} for what it means and computes the exact loss")
        else:
            rec.settle("fail", (f"{garbage}: {c.detail}" if problem.has_loss else
                                               f"{garbage}: no loss exists (silent garbage)")[:500])
        return rec
    bad = problem.invalid_rows()
    valid = compare(got[~bad], ev.value[~bad], bound(ev.value_scale, dtype)[~bad])
    rec.errors = valid.errors()
    if not valid.ok:
        rec.settle("fail", f"valid rows differ from the mathematics: {valid.detail}")
        return rec
    if documented == "nan":
        ok = bool(np.all(np.isnan(got[bad])))
    elif documented == "zero":
        ok = bool(np.all(got[bad] == 0))
    elif documented == "wrap":
        wrapped = replace(problem, target=np.where(bad, problem.target % problem.num_classes, problem.target),
                          invalid_target=None)
        wev = reference.evaluate(wrapped, conv)
        ok = compare(got[bad], wev.value[bad], bound(wev.value_scale, dtype)[bad]).ok
    else:
        rec.settle("fail", f"returned {got[bad].tolist()} for {what} without raising "
                                          f"(silent garbage)"[:500])
        return rec
    rec.outcome = "deviation" if ok else "fail"
    rec.reason = (f"{entry.reason} (as documented: {entry.expect})" if ok else
                     f"expectation {entry.id!r} says {documented!r} for {what}, got {got[bad].tolist()}")
    return rec


def _broadcast_check(rec: CheckRecord, got: np.ndarray, problem: Problem, conv: reference.Convention, dtype: str,
                     entry: Expectation, what: str) -> CheckRecord:
    """A documented ``broadcast``: the result must be the exact loss of the input and the handed target
    broadcast against each other elementwise (e.g. (N, 1) and (N,) to (N, N))."""
    t, _ = problem.handed_target()
    try:
        x_b, t_b = np.broadcast_arrays(problem.x, np.asarray(t, dtype=np.float64))
    except ValueError:
        rec.settle("fail", f"expectation {entry.id!r} says 'broadcast', but {what} does not "
                                          f"broadcast against the input")
        return rec
    if problem.categorical:
        rec.settle("fail", f"expectation {entry.id!r} says 'broadcast', which applies to "
                                          f"elementwise (binary) targets only")
        return rec
    bev = reference.evaluate(replace(problem, x=x_b, target=t_b, malformed=None), conv)
    if conv.mean_last_axis and x_b.shape[-1] != problem.x.shape[-1]:
        # the per-example mean divides by the input's own class count, not the broadcast one
        k = x_b.shape[-1] / problem.x.shape[-1]
        bev = reference.Evaluation(bev.value * k, bev.grad, (bev.value_scale[0] * k, bev.value_scale[1] * k),
                                   bev.grad_scale)
    c = compare(got, bev.value, bound(bev.value_scale, dtype)) if got.shape == bev.value.shape else None
    if c is not None:
        rec.errors = c.errors()
    ok = c is not None and c.ok
    rec.outcome = "deviation" if ok else "fail"
    rec.reason = (f"{entry.reason} (as documented: {entry.expect}); the target broadcast to {x_b.shape}" if ok else
                     f"expectation {entry.id!r} says 'broadcast' for {what}: "
                     + (c.detail if c is not None else f"got shape {got.shape}, broadcasting gives {bev.value.shape}"))
    return rec
