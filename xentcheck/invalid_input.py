"""The errors layer: what a binding does with invalid input (an out-of-range label, a malformed target).

There is no loss to compare with, or only the well-formed problem's: raising is always right, a
behaviour the registry documents (``invalid_targets``) is a deviation, and any other number returned
is silent garbage. Only values are judged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from . import reference
from .check import Check, Verdict
from .compare import compare
from .exception_text import one_line, raised_at
from .expectations import Expectation
from .messages import as_documented, expectation, no_longer_happens
from .problem import Problem, unit_roundoff
from .protocol import Adapter, Binding, ContractError, run_binding
from .tolerance import bound

if TYPE_CHECKING:
    from .checks import Judge

#: where the built-in adapters' own code lives
GLUE = "adapters/"
#: how a call the adapter itself got wrong fails (a keyword or an API the installed version lacks)
_SIGNATURE = re.compile(
    r"unexpected keyword argument|positional arguments? but|missing \d+ required|"
    r"multiple values for argument"
)


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


def judge_invalid_input(judge: Judge, adapter: Adapter, binding: Binding, problem: Problem, check: Check) -> Verdict:
    """The verdict of ``check`` (a value check) on invalid input. Raising is always right. Otherwise:

    - an out-of-range label (``invalid_target``) has no loss: the valid rows must be exact, and the
      invalid ones may only be what the registry documents (``nan``, ``zero``, NumPy-style ``wrap``);
    - a malformed but unambiguous target (``float_labels``, ``int_targets``, ``target_rank``) may also be
      taken for what it means: the exact loss of the well-formed problem passes (or, documented, its
      ``broadcast`` or ``int_truncated`` form);
    - a target with an example missing has no loss at all.

    Any other number is silent garbage (fail). Each case is one small judge in :data:`RETURNED`."""
    entry = judge.expectation(check, problem)
    documented = entry.expect.get("invalid_targets") if entry else None
    # a documented behaviour of invalid input: the record names the entry whatever happens
    base = Verdict(expectation=entry.id, expectation_differs=True) if entry is not None and documented else Verdict()
    what = (
        f"the invalid label {problem.invalid_target}"
        if problem.invalid_target is not None
        else f"the malformed target ({problem.malformed})"
    )
    t0 = time.perf_counter()
    try:
        out = run_binding(adapter, binding, problem, grad=False, cotangent=None, mode=check.mode)
    except Exception as e:
        return _raised(replace(base, duration_s=time.perf_counter() - t0), e, entry, documented, what)
    base = replace(base, duration_s=time.perf_counter() - t0)
    if entry is not None and entry.raises:  # the error-input table names an exception: returning fails
        return replace(
            base,
            outcome="fail",
            expectation=entry.id,
            expectation_differs=True,
            reason=no_longer_happens(expectation(entry.id), f"the binding no longer raises {entry.raises} for {what}"),
        )
    ex = judge.expected(check, binding, problem)
    ev, dtype = ex.allowed  # dtype, e.g. TF1 losses: float64 inputs, float32 accuracy
    got = np.asarray(out.value, dtype=np.float64)
    seen = Returned(
        problem,
        got,
        ev,
        dtype,
        ex.documented_convention,
        entry,
        documented,
        what,
        replace(base, result_dtype=out.dtype, compute_dtype=dtype),
    )
    return _with_worst(next(judge_ for applies, judge_ in RETURNED if applies(seen))(seen), seen)


def _with_worst(v: Verdict, r: Returned) -> Verdict:
    """A fail or a deviation carries the numbers behind it: where the returned loss lies farthest from
    the well-formed problem's (for an invalid label, its rows; for a malformed target, any element),
    expected against got, with the bound."""
    if v.outcome not in ("fail", "deviation") or v.worst or r.got.shape != r.ev.value.shape:
        return v
    with np.errstate(all="ignore"):
        c = compare(r.got, r.ev.value, bound(r.ev.value_scale, r.dtype))
    return replace(v, worst=tuple(dict(w) for w in c.worst))


def _raised(base: Verdict, e: BaseException, entry: Expectation | None, documented: str | None, what: str) -> Verdict:
    """The binding raised for invalid input: right, unless the adapter's own code failed, the registry
    documents another exception, or it documents a returned value (the behaviour changed)."""
    if isinstance(e, ContractError):  # the adapter's own failure, not the framework refusing the input
        return replace(base, outcome="error", reason=one_line(e))
    where = raised_at(e)
    base = replace(base, raised={"type": type(e).__name__, "at": where})
    if glue_failure(e, where):  # e.g. a TypeError for a keyword this version lacks, at the call site
        return replace(
            base,
            outcome="error",
            reason=f"raised by xentcheck's adapter code at {where}, not by the framework: {one_line(e)}",
        )
    if entry is not None and entry.raises:  # the error-input table names the exception: another one fails
        base = replace(base, expectation=entry.id, expectation_differs=True)
        if entry.raised_as_documented(e):
            return replace(
                base, outcome="pass", reason=f"rejects {what} with {entry.raises}, as documented: {one_line(e)}"
            )
        pattern = entry.expect.get("message")
        return replace(
            base,
            outcome="fail",
            reason=f"rejects {what} with {type(e).__name__} where "
            f"{expectation(entry.id)} documents {entry.raises}"
            f"{f' matching {pattern!r}' if pattern else ''}: {one_line(e)}",
        )
    if documented:
        return replace(
            base,
            outcome="fail",
            reason=no_longer_happens(expectation(entry.id), f"the binding now rejects {what} ({type(e).__name__})"),
        )
    return replace(base, outcome="pass", reason=f"rejects {what}: {one_line(e)} (raised at {where})")


@dataclass(frozen=True)
class Returned:
    """What a binding returned for invalid input, with what it is judged by: ``ev`` (the well-formed
    problem's loss under ``conv``, the binding's documented convention) in ``dtype``; ``documented``,
    the entry's ``invalid_targets``; ``base``, the verdict so far (the entry, the duration, the dtypes)."""

    problem: Problem
    got: np.ndarray
    ev: reference.Evaluation
    dtype: str
    conv: reference.Convention
    entry: Expectation | None
    documented: str | None
    what: str
    base: Verdict

    @property
    def malformed(self) -> bool:
        return self.problem.malformed is not None

    @property
    def garbage(self) -> str:
        return (
            f"returned {np.array2string(self.got.ravel()[:8], precision=4)} (shape {self.got.shape}) for "
            f"{self.what} without raising"
        )

    @property
    def bad(self) -> np.ndarray:
        """The rows holding the invalid label."""
        return self.problem.invalid_rows()

    def settle(self, ok: bool, wrong: str, **evidence) -> Verdict:
        """``deviation`` as the entry documents when ``ok``, else ``fail`` saying ``wrong``."""
        return replace(
            self.base,
            outcome="deviation" if ok else "fail",
            reason=as_documented(self.entry.reason, self.entry.expect) if ok else wrong,
            **evidence,
        )

    def fail(self, reason: str, **evidence) -> Verdict:
        return replace(self.base, outcome="fail", reason=reason, **evidence)


def _broadcast(r: Returned) -> Verdict:
    """A documented ``broadcast``: the result must be the exact loss of the input and the handed target
    broadcast against each other elementwise (e.g. (N, 1) and (N,) to (N, N))."""
    p, entry = r.problem, r.entry
    t, _ = p.handed_target()
    try:
        x_b, t_b = np.broadcast_arrays(p.x, np.asarray(t, dtype=np.float64))
    except ValueError:
        return r.fail(f"{expectation(entry.id)} says 'broadcast', but {r.what} does not broadcast against the input")
    if p.categorical:
        return r.fail(f"{expectation(entry.id)} says 'broadcast', which applies to elementwise (binary) targets only")
    bev = reference.evaluate(replace(p, x=x_b, target=t_b, malformed=None), r.conv)
    if r.conv.mean_last_axis and x_b.shape[-1] != p.x.shape[-1]:
        # the per-example mean divides by the input's own class count, not the broadcast one
        k = x_b.shape[-1] / p.x.shape[-1]
        bev = reference.Evaluation(
            bev.value * k, bev.grad, (bev.value_scale[0] * k, bev.value_scale[1] * k), bev.grad_scale
        )
    got = r.got
    c = compare(got, bev.value, bound(bev.value_scale, r.dtype)) if got.shape == bev.value.shape else None
    ok = c is not None and c.ok
    wrong = f"{expectation(entry.id)} says 'broadcast' for {r.what}: " + (
        c.detail if c is not None else f"got shape {got.shape}, broadcasting gives {bev.value.shape}"
    )
    v = r.settle(ok, wrong, **({"errors": c.errors()} if c is not None else {}))
    return replace(v, reason=f"{v.reason}; the target broadcast to {x_b.shape}") if ok else v


def _wrong_shape(r: Returned) -> Verdict:
    return r.fail(f"{r.garbage}; the well-formed problem's loss has shape {r.ev.value.shape} (silent garbage)"[:500])


def _int_truncated(r: Returned) -> Verdict:
    """The loss computed, then cast to the integer dtype: truncated toward zero. Where the exact loss is
    within its bound of an integer, rounding may put it on either side, so the floor or the ceiling is
    accepted there: only those two integers, never any value. A binary loss averaged over its labels
    (``mean_last_axis``, unweighted and unreduced: ``F.multilabel_soft_margin_loss``) truncates each
    label's term and divides their integer sum: the mean of the truncated terms."""
    p, ev, got = r.problem, r.ev, r.got
    per_label = r.conv.mean_last_axis and not p.categorical and p.reduction == "none"
    if per_label and p.class_weight is None and p.sample_weight is None and p.pos_weight is None:
        terms, _, scale, _ = reference.unreduced(p, replace(r.conv, mean_last_axis=False))
        near = np.abs(terms - np.round(terms)) <= bound(scale, r.dtype)
        lo = np.mean(np.where(near, np.floor(terms), np.trunc(terms)), axis=-1)
        hi = np.mean(np.where(near, np.ceil(terms), np.trunc(terms)), axis=-1)
        # the quotient rounded to the dtype the binding returns it in (a float16 2/3 is 0.6665)
        slack = 2 * unit_roundoff(p.dtype) * np.maximum(np.abs(lo), np.abs(hi))
        ok = bool(np.all((got >= lo - slack) & (got <= hi + slack)))
        what = "each label's term truncated to integers, then averaged"
        return r.settle(ok, f"{expectation(r.entry.id)} says {what} for {r.what}: {r.garbage}")
    near = np.abs(ev.value - np.round(ev.value)) <= bound(ev.value_scale, r.dtype)
    either = (got == np.floor(ev.value)) | (got == np.ceil(ev.value))
    ok = bool(np.all((got == np.trunc(ev.value)) | (near & either)))
    return r.settle(ok, f"{expectation(r.entry.id)} says the loss truncated to integers for {r.what}: {r.garbage}")


def _first_entries(r: Returned) -> Verdict:
    """A documented ``first_entries``: the extra entries ignored, so the well-formed problem's exact loss."""
    c = compare(r.got, r.ev.value, bound(r.ev.value_scale, r.dtype))
    wrong = f"{expectation(r.entry.id)} says the first entries are used for {r.what}: {c.detail}"
    return r.settle(c.ok, wrong[:500], errors=c.errors())


def _out_of_bounds_read(r: Returned) -> Verdict:
    """A documented ``out_of_bounds_read``: the binding reads past an array's end, so its value is undefined;
    what is checked is that it still returns (a raise is judged by _raised: the entry no longer holds)."""
    return r.settle(True, "")


def _malformed(r: Returned) -> Verdict:
    """A malformed target taken for what it means: the well-formed problem's exact loss passes."""
    c = compare(r.got, r.ev.value, bound(r.ev.value_scale, r.dtype))
    if r.problem.has_loss and c.ok and not r.documented:
        return replace(
            r.base,
            outcome="pass",
            reason=f"takes {r.what} for what it means and computes the exact loss",
            errors=c.errors(),
        )
    return r.fail(
        (f"{r.garbage}: {c.detail}" if r.problem.has_loss else f"{r.garbage}: no loss exists (silent garbage)")[:500],
        errors=c.errors(),
    )


def _invalid_rows(r: Returned) -> Verdict:
    """An invalid label: the valid rows must be exact, and the invalid ones as documented (INVALID_ROWS)."""
    bad = r.bad
    valid = compare(r.got[~bad], r.ev.value[~bad], bound(r.ev.value_scale, r.dtype)[~bad])
    r = replace(r, base=replace(r.base, errors=valid.errors()))
    if not valid.ok:
        return r.fail(f"valid rows differ from the mathematics: {valid.detail}")
    rows = INVALID_ROWS.get(r.documented)
    if rows is None:
        return r.fail(f"returned {r.got[bad].tolist()} for {r.what} without raising (silent garbage)"[:500])
    return r.settle(rows(r), f"{expectation(r.entry.id)} says {r.documented!r} for {r.what}, got {r.got[bad].tolist()}")


def _wrapped(r: Returned) -> bool:
    """NumPy-style indexing: the label taken modulo the class count."""
    p, bad = r.problem, r.bad
    wrapped = replace(p, target=np.where(bad, p.target % p.num_classes, p.target), invalid_target=None)
    wev = reference.evaluate(wrapped, r.conv)
    return compare(r.got[bad], wev.value[bad], bound(wev.value_scale, r.dtype)[bad]).ok


#: documented ``invalid_targets`` value -> whether the invalid label's rows show it
INVALID_ROWS: dict[str, Callable[[Returned], bool]] = {
    "nan": lambda r: bool(np.all(np.isnan(r.got[r.bad]))),
    "zero": lambda r: bool(np.all(r.got[r.bad] == 0)),
    "wrap": _wrapped,
}


#: the judges of a result returned for invalid input, each with when it applies, in order: the first that
#: applies decides
RETURNED: tuple[tuple[Callable[[Returned], bool], Callable[[Returned], Verdict]], ...] = (
    (lambda r: r.documented == "broadcast" and r.malformed, _broadcast),
    (lambda r: r.got.shape != r.ev.value.shape, _wrong_shape),
    (lambda r: r.documented == "int_truncated" and r.malformed, _int_truncated),
    (lambda r: r.documented == "first_entries" and r.malformed, _first_entries),
    (lambda r: r.documented == "out_of_bounds_read" and r.malformed, _out_of_bounds_read),
    (lambda r: r.malformed, _malformed),
    (lambda r: True, _invalid_rows),
)
