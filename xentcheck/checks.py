"""Checks: run one binding on one problem and turn the comparison with the oracle into a verdict.

Outcomes (``docs/results.md``): ``pass``, ``deviation`` (documented in the registry and matching it),
``fail``, ``unsupported`` (outside the binding's capabilities; the reason is recorded), ``error`` (the
binding raised). A run binds its run-wide facts (the registry, the installed versions, the device)
once into a :class:`Judge`; the judge takes a :class:`~xentcheck.check.Check` and what varies (the
adapter, binding and problem) and returns a :class:`~xentcheck.check.Verdict`, which
:func:`xentcheck.check.record` turns into the record. The numbers are judged by
:func:`xentcheck.verdict.judge`. It imports no framework: it drives whatever adapter it is given.
"""

from __future__ import annotations

import time
import traceback
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from . import reference
from .check import Check, Verdict, record
from .exception_text import one_line, raised_at
from .expectations import Expectation, Registry
from .invalid_input import judge_invalid_input
from .problem import Problem, round_to
from .protocol import Adapter, Binding, ContractError, run_binding
from .records import OUTCOMES, CheckRecord
from .verdict import Judgement, compare_check, expected_for, judge, judge_raised

__all__ = ["CHECKS", "OUTCOMES", "Judge", "cotangent_for", "unsupported_reason"]

CHECKS = ("value", "grad")


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


def unsupported_reason(
    binding: Binding, problem: Problem, check: str, mode: str = "eager", device: str = "cpu"
) -> str | None:
    """Why this check cannot run (outside the binding's declared capabilities), or None. It depends on
    declarations only, so a run can settle it without calling the binding."""
    reason = binding.caps.why_unsupported(problem, mode=mode, device=device)
    if reason is None and check == "grad" and not binding.caps.grad:
        reason = "no gradient: the framework has no autodiff for this API"
    if reason is None and check == "grad" and problem.invalid_input:
        reason = "gradients are not checked for invalid input (the errors layer judges what the call does)"
    return reason


@dataclass(frozen=True)
class Judge:
    """The run-wide facts, bound once at start-up: the expectations ``registry``, the installed
    ``versions`` (package -> version, for its version ranges), the run's ``device`` (what the bindings
    must declare; the adapters run on it, bound into them at start-up), and the relations' options
    (hypothesis draws per relation; derandomized, or the fuzz run's random draws). Its methods take a
    check and what varies."""

    registry: Registry = field(default_factory=Registry)
    versions: dict = field(default_factory=dict)
    device: str = "cpu"
    relation_examples: int = 2
    derandomize: bool = True

    # -- the registry --------------------------------------------------------------------------
    def expectation(self, check: Check, problem: Problem | None = None) -> Expectation | None:
        """The registry entry covering ``check`` (on ``problem``: the options it uses), if any."""
        key = check if problem is None else replace(check, options=problem.options_used())
        return self.registry.find(key, self.versions, problem)

    def expected(self, check: Check, binding: Binding, problem: Problem, cotangent: np.ndarray | None = None):
        """What ``binding``'s result on ``problem`` is judged against (:func:`xentcheck.verdict.expected_for`)."""
        return expected_for(self.expectation(check, problem), binding, problem, cotangent)

    # -- conformance checks --------------------------------------------------------------------
    def unsupported(self, binding: Binding, problem: Problem, check: Check) -> str | None:
        """Why ``check`` cannot run on the run's device (its binding's declarations rule it out), or None."""
        return unsupported_reason(binding, problem, check.kind, check.mode, self.device)

    def check(
        self, adapter: Adapter, binding: Binding, problem: Problem, kind: str = "value", mode: str = "eager"
    ) -> CheckRecord:
        """The record of ``binding``'s ``kind`` (value or grad) check on ``problem`` in ``mode``."""
        return self.run(
            adapter,
            binding,
            problem,
            Check(
                adapter.name,
                binding.name,
                problem.case,
                problem.dtype,
                mode,
                problem.reduction,
                kind,
                api=binding.api,
                op=problem.op,
                category=problem.category,
                target=problem.target_kind,
                device=self.device,
            ),
        )

    def run(self, adapter: Adapter, binding: Binding, problem: Problem, check: Check) -> CheckRecord:
        """Run one conformance check and return its results record (see docs/results.md for the fields)."""
        return record(self.described(check, problem), self.verdict(adapter, binding, problem, check))

    @staticmethod
    def described(check: Check, problem: Problem) -> Check:
        """``check`` described (in its record) by the problem it ran on: its op, category and target kind."""
        return replace(check, op=problem.op, category=problem.category, target=problem.target_kind)

    def verdict(self, adapter: Adapter, binding: Binding, problem: Problem, check: Check) -> Verdict:
        """The verdict of one conformance check (value or gradient)."""
        reason = self.unsupported(binding, problem, check)
        if reason is not None:
            return Verdict(reason=reason)
        if problem.invalid_input:
            return judge_invalid_input(self, adapter, binding, problem, check)
        conv = binding.convention_for(problem)
        cot = cotangent_for(problem, conv)
        kind = check.kind

        def with_repro(v: Verdict, ev: reference.Evaluation | None = None) -> Verdict:
            """A fail, an error or a documented deviation gets a standalone snippet reproducing it, where
            the adapter can write one (ending with the oracle's answer: ``ev``, evaluated here when the
            binding raised before it was); the report's findings show them."""
            if v.outcome not in ("fail", "error", "deviation") or not hasattr(adapter, "repro"):
                return v
            try:
                ev = ev or reference.evaluate(problem, conv, cot)
                text = adapter.repro(binding, problem, kind, cot, ev.value if kind == "value" else ev.grad, check.mode)
            except Exception:  # a snippet is a courtesy: never let it cost the record
                text = None
            return replace(v, repro=text) if text else v

        t0 = time.perf_counter()
        try:
            out = run_binding(adapter, binding, problem, grad=kind == "grad", cotangent=cot, mode=check.mode)
        except Exception as e:  # the binding raised where the mathematics has an answer (or broke the protocol)
            duration = time.perf_counter() - t0
            documented = None if isinstance(e, ContractError) else judge_raised(self.expectation(check, problem), e)
            outcome, why, entry = documented or ("error", one_line(e), None)
            v = Verdict(
                outcome,
                why,
                expectation=entry,
                expectation_differs=True if documented else None,
                duration_s=duration,
                traceback="".join(traceback.format_exception_only(type(e), e))[-2000:],
                raised={"type": type(e).__name__, "at": raised_at(e)},
            )
            return with_repro(v)
        duration = time.perf_counter() - t0
        got = out.value if kind == "value" else out.grad
        try:
            j = judge(self.expected(check, binding, problem, cot), kind, got, out.dtype_of(kind))
        except Exception as e:  # xentcheck's own oracle or judge failed: a defect of the harness, said as such
            return Verdict(
                "error",
                f"xentcheck could not judge this result (its oracle or judge raised): {one_line(e)}"[:500],
                duration_s=duration,
                traceback="".join(traceback.format_exception(type(e), e, e.__traceback__))[-2000:],
            )
        v = _from_judgement(j, out.dtype_of(kind), duration)
        if check.mode != "eager":
            v = replace(v, vs_eager=self._vs_eager(adapter, binding, check, got, j))
        return with_repro(v, j.expected.math)

    @staticmethod
    def _vs_eager(adapter: Adapter, binding: Binding, check: Check, got: np.ndarray, j: Judgement) -> dict:
        """How far a compiled result lies from the same binding's eager result, in units of twice the bound
        of the evaluation the check was judged by (each may err by one bound): a compiler that changes the
        numbers beyond rounding is visible even where both results pass."""
        ev = j.judged_by
        try:
            eager = run_binding(
                adapter, binding, j.expected.problem, grad=check.kind == "grad", cotangent=j.expected.cotangent
            )
        except Exception as e:
            return {"error": one_line(e)}

        def double(sc: tuple) -> tuple:
            return 2 * sc[0], 2 * sc[1]

        c = compare_check(
            got,
            reference.Evaluation(eager.value, eager.grad, double(ev.value_scale), double(ev.grad_scale)),
            check.kind,
            j.expected.dtype,
        )
        return {**c.errors().to_json(), "same": c.ok, "detail": c.detail[:300]}

    # -- the other layers --------------------------------------------------------------------------
    def relation(self, adapter: Adapter, binding: Binding, others: list[Binding], relation, dtype: str):
        """The record of ``relation`` (:mod:`xentcheck.relations`) for ``binding``, compared with
        ``others`` where the relation needs a sibling, in ``dtype``."""
        from . import relations

        check = relations.check_for(self, adapter.name, binding, relation, dtype)
        subject = relations.Subject(adapter, binding, tuple(others))
        return record(check, relations.run_relation(self, subject, relation, check))

    def sweep(self, adapter: Adapter, binding: Binding, axis, dtype: str):
        """The stability record of ``binding`` along ``axis`` (:mod:`xentcheck.stability`) in ``dtype``."""
        from . import stability

        check = stability.check_for(self, adapter.name, binding, axis, dtype)
        return record(check, stability.sweep(self, adapter, binding, check))


def _from_judgement(j: Judgement, result_dtype: str, duration_s: float) -> Verdict:
    """A conformance check's verdict from the judgement of its numbers."""
    return Verdict(
        j.outcome,
        j.reason,
        expectation=j.expectation,
        expectation_differs=j.expectation_differs,
        errors=j.errors.errors(),
        result_dtype=result_dtype,
        compute_dtype=j.expected.dtype,
        duration_s=duration_s,
        errors_vs_expectation=None if j.errors_vs_expectation is None else j.errors_vs_expectation.errors(),
        worst=tuple(dict(w) for w in j.errors.worst) if j.outcome in ("fail", "deviation") else (),
    )
