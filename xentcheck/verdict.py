"""The one verdict path: what a binding's result is judged against, and the outcome.

:func:`expected_for` takes the registry entry covering a check (found by the run's
:class:`xentcheck.checks.Judge`), applies its policies to the binding's convention, evaluates the
oracle (the mathematics, and the documented behaviour where an entry exists) and picks the dtype
whose roundoff applies. Every layer (checks, the errors layer, relations, the stability sweep) gets
its expected values and bounds from it. :func:`judge` turns a result into a :class:`Judgement`:
``pass``, ``deviation`` (matches the documented behaviour where it differs from the mathematics) or
``fail``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from . import reference
from .compare import Comparison, compare
from .exception_text import one_line
from .expectations import Expectation
from .messages import UPDATE_REGISTRY, as_documented, expectation, no_longer_happens
from .problem import Problem, overflowed, unit_roundoff
from .protocol import Binding
from .tolerance import bound, compute_dtype

#: the dtypes by the range they hold, narrowest first
_RANGE_ORDER = ["float16", "bfloat16", "float32", "float64"]


def documented_differs(
    documented: reference.Evaluation, math: reference.Evaluation, check: str, dtype: str, held: str | None = None
) -> bool:
    """Whether the documented behaviour's ``check`` (value or gradient) is distinguishable from the
    mathematics' in ``dtype``: both as a result in ``dtype`` can hold them, so a documented number past
    the dtype's range is the inf that the binding returns there, as the mathematics' already is
    (``held``: the range the documented result is held in, where not ``dtype``'s)."""
    got = documented.value if check == "value" else documented.grad
    return not compare_check(overflowed(np.asarray(got, dtype=np.float64), held or dtype), math, check, dtype).ok


def compare_check(
    got: np.ndarray, ev: reference.Evaluation, check: str, dtype: str, held: str | None = None
) -> Comparison:
    """``got`` (the value or the gradient, per ``check``) against ``ev`` with the bound of ``dtype``;
    ``held``: the dtype whose range the result is held in, where not ``dtype``'s (past it, ``ev`` is inf)."""
    exp = overflowed(ev.value if check == "value" else ev.grad, held or dtype)
    scale = ev.value_scale if check == "value" else ev.grad_scale
    return compare(got, exp, bound(scale, dtype), scale_a=scale[0], eps=2 * unit_roundoff(dtype))


@dataclass(frozen=True)
class Expected:
    """What one binding's result on one problem is judged against.

    ``math`` is the mathematics under the binding's own convention; ``documented`` the behaviour the
    registry ``entry`` documents (None without an entry). ``dtype`` is the dtype whose roundoff
    applies to the mathematics: always the input's (a result returned in another dtype does not change
    the bound); ``documented_dtype`` adds the entry's ``compute_dtype``."""

    problem: Problem
    entry: Expectation | None
    convention: reference.Convention
    math: reference.Evaluation
    dtype: str
    cotangent: np.ndarray | None = None

    @property
    def documented_convention(self) -> reference.Convention:
        """The binding's convention with the entry's policies applied (its own without an entry)."""
        return self.entry.convention(self.convention) if self.entry is not None else self.convention

    @cached_property
    def documented(self) -> reference.Evaluation | None:
        if self.entry is None:
            return None
        return reference.evaluate(self.problem, self.documented_convention, self.cotangent)

    @property
    def documented_dtype(self) -> str:
        if self.entry is None or not self.entry.compute_dtype:
            return self.dtype
        return compute_dtype(self.entry.compute_dtype, self.dtype)

    @property
    def documented_range_dtype(self) -> str:
        """The dtype whose range holds the documented result: the narrower of the dtype the binding
        computes in (the entry's ``compute_dtype``, else its ``result_dtype``, else the input's) and the
        one it returns (``result_dtype``, else the input's). A float16 problem computed and returned in
        float64 holds a loss of 240529; one computed in float32 and returned in float16 does not."""
        if self.entry is None:
            return self.dtype
        returned = self.entry.result_dtype or self.problem.dtype
        computed = self.entry.compute_dtype or returned
        return min(computed, returned, key=_RANGE_ORDER.index)

    @property
    def result_dtype(self) -> str:
        """The dtype the result contract wants: the input's, or the entry's documented ``result_dtype``."""
        return (self.entry.result_dtype if self.entry is not None else None) or self.problem.dtype

    @property
    def allowed(self) -> tuple[reference.Evaluation, str]:
        """The behaviour a result may show, and its dtype: the documented one where an entry exists."""
        return (self.documented, self.documented_dtype) if self.entry is not None else (self.math, self.dtype)


def expected_for(
    entry: Expectation | None,
    binding: Binding,
    problem: Problem,
    cotangent: np.ndarray | None = None,
    math: reference.Evaluation | None = None,
) -> Expected:
    """The convention, oracle evaluation and dtypes for one check covered by the registry ``entry``
    (None: none; :meth:`xentcheck.checks.Judge.expectation` finds it). ``math``: the oracle's evaluation
    of this problem and cotangent, where the caller has it already (the value and the gradient check of
    one call share it)."""
    conv = binding.convention_for(problem)
    return Expected(
        problem,
        entry,
        conv,
        math if math is not None else reference.evaluate(problem, conv, cotangent),
        problem.dtype,
        cotangent,
    )


@dataclass(frozen=True)
class Judgement:
    """The numbers of one value or gradient result judged: the outcome, with what it was judged by
    (the conformance judge turns it into the check's :class:`xentcheck.check.Verdict`)."""

    outcome: str
    reason: str
    expected: Expected
    errors: Comparison  # against the mathematics
    errors_vs_expectation: Comparison | None = None  # against the documented behaviour (deviations)
    #: whether the documented behaviour differs from the mathematics on this input (None: no entry)
    expectation_differs: bool | None = None

    @property
    def expectation(self) -> str | None:
        return self.expected.entry.id if self.expected.entry is not None else None

    @property
    def judged_by(self) -> reference.Evaluation:
        """The documented behaviour for a deviation, else the mathematics."""
        return self.expected.documented if self.outcome == "deviation" else self.expected.math


def dtype_contract(ex: Expected, check: str, result_dtype: str | None) -> tuple[str, str] | None:
    """The result contract on dtypes: None when ``result_dtype`` (the dtype the binding returned the
    value or gradient in; None: not reported) is the input's, else (outcome, reason): ``deviation``
    for a promotion or downcast the registry documents, ``fail`` for any other."""
    p = ex.problem
    what = "gradient" if check == "grad" else "value"
    if result_dtype is None or (result_dtype == p.dtype == ex.result_dtype):
        return None
    if result_dtype == ex.result_dtype:
        return "deviation", as_documented(ex.entry.reason, f"a {result_dtype} {what} for {p.dtype} input")
    if ex.entry is not None and ex.entry.result_dtype:
        return "fail", (
            f"result contract: the {what} is {result_dtype} for {p.dtype} input, where "
            f"{expectation(ex.entry.id)} documents {ex.entry.result_dtype}; {UPDATE_REGISTRY}"
        )
    return "fail", (
        f"result contract: the {what} is {result_dtype} for {p.dtype} input (the input's dtype is "
        f"expected, or a documented promotion in the registry)"
    )


def judge_raised(entry: Expectation | None, e: BaseException) -> tuple[str, str, str] | None:
    """A binding raised ``e`` where the mathematics has an answer: (outcome, reason, entry id) when the
    registry ``entry`` covering the check documents that it raises (``deviation`` if ``e`` is the
    documented exception, else ``error`` naming both), None without such an entry (a plain ``error``)."""
    if entry is None or not entry.raises:
        return None
    if entry.raised_as_documented(e):
        return "deviation", f"{as_documented(entry.reason, f'raises {entry.raises}')}: {one_line(e)}", entry.id
    return "error", f"{expectation(entry.id)} documents {entry.raises}, got: {one_line(e)}", entry.id


def judge(ex: Expected, check: str, got: np.ndarray, result_dtype: str | None) -> Judgement:
    """Judge ``got`` (the binding's value or gradient, per ``check``, returned in ``result_dtype``)
    against the result contract, the mathematics and the registry (``ex``, from :func:`expected_for`).
    A deviation must match the documented behaviour; matching the mathematics where the documented
    behaviour would differ means the entry no longer happens, which fails too."""
    v = _judge_numbers(ex, check, got)
    if ex.entry is not None and ex.entry.raises:
        return replace(
            v,
            outcome="fail",
            expectation_differs=True,
            reason=no_longer_happens(
                expectation(ex.entry.id), f"the binding returned a result where it documents {ex.entry.raises}"
            )
            + f" ({v.reason or 'the result passes'})",
        )
    contract = dtype_contract(ex, check, result_dtype)
    if contract is None or v.outcome == "fail":
        return v
    outcome, why = contract
    if outcome == "fail":
        return replace(v, outcome="fail", reason=why)
    return replace(v, outcome="deviation", reason=f"{why}; {v.reason}" if v.reason else why, expectation_differs=True)


def _judge_numbers(ex: Expected, check: str, got: np.ndarray) -> Judgement:
    """The numbers of one result against the mathematics and the documented behaviour."""
    vs_math = compare_check(got, ex.math, check, ex.dtype)
    entry = ex.entry
    if entry is None:
        return Judgement("pass" if vs_math.ok else "fail", vs_math.detail, ex, vs_math)
    documented = ex.documented
    vs_policy = compare_check(got, documented, check, ex.documented_dtype, ex.documented_range_dtype)
    # Whether the documented behaviour is distinguishable from the mathematics on this input; a
    # precision-only entry (compute_dtype) is not, per check: the run-level audit covers it.
    policy_differs = documented_differs(documented, ex.math, check, ex.dtype, ex.documented_range_dtype)
    differs = policy_differs or entry.compute_dtype is not None
    if vs_math.ok:
        # no longer happens: the result is the mathematics' and not the documented behaviour's. Where the
        # two differ by no more than the bounds, a result may match both (a float32 clip at 1 - 2^-23
        # documents a loss of 1.19e-7 where the mathematics is 0 within 2^-23): that cannot tell them apart
        if policy_differs and not vs_policy.ok:
            return Judgement(
                "fail",
                no_longer_happens(
                    expectation(entry.id),
                    f"the result matches the mathematics where the documented policy {entry.expect} would differ",
                ),
                ex,
                vs_math,
                expectation_differs=differs,
            )
        return Judgement("pass", "", ex, vs_math, expectation_differs=differs)  # no difference on this input
    if vs_policy.ok:
        return Judgement(
            "deviation",
            f"{as_documented(entry.reason, entry.expect)}; vs mathematics: {vs_math.detail}",
            ex,
            vs_math,
            vs_policy,
            differs,
        )
    return Judgement(
        "fail",
        f"differs from the mathematics ({vs_math.detail}) and from {expectation(entry.id)} ({vs_policy.detail})",
        ex,
        vs_math,
        expectation_differs=differs,
    )
