"""Shared machinery for array-framework adapters: inputs conversion, the run loop and timing closures.

A concrete adapter supplies array conversion and one autodiff primitive (:meth:`value_and_vjp`),
and optionally a compiler (:meth:`compile`) and a completion barrier (:meth:`block`); everything
else (which inputs to convert, how the cotangent is shaped, what a compiled step contains) is the
same for all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from xentcheck.problem import Problem
from xentcheck.reference import output_shape

from . import Binding, Inputs, Output
from .repro import Dialect, snippet

#: the arrays of a Problem an adapter converts
_ARRAY_FIELDS = ("x", "target", "class_weight", "sample_weight", "pos_weight", "where")


def lines_up(cotangent_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> bool:
    """Whether a cotangent of ``cotangent_shape`` lines up element for element with an unreduced output of
    ``output_shape``: the same shape up to axes of length 1, which a binding may squeeze or add (Keras's
    loss wrapper squeezes a class axis of length 1) without changing the elements' order."""
    return tuple(d for d in cotangent_shape if d != 1) == tuple(d for d in output_shape if d != 1)


class FrameworkAdapter:
    """Base class: subclasses set ``name`` and implement the primitives below."""

    name = "?"
    #: how this framework spells a reproduction snippet (None: no snippets)
    dialect: Dialect | None = None
    #: True: the compiled step is value and VJP together (jax.jit, tf.function). False: only the
    #: forward is compiled and autodiff runs outside, as torch.compile is used in practice.
    compile_whole_step = True
    #: the device every call runs on: the run's, bound once at start-up (``--device``; the session sets it)
    device = "cpu"

    def __init__(self) -> None:
        self._steps: dict[tuple, tuple[Problem, Output]] = {}
        # the last problem's converted inputs: the benchmark sweep prepares each input for four
        # configurations of every binding, and converting 4096x32000 takes up to a second
        self._converted: tuple | None = None

    # -- primitives ---------------------------------------------------------------------------
    def asarray(self, a: np.ndarray, dtype: str) -> Any:
        """``a`` as the framework's array of ``dtype`` on :attr:`device`."""
        raise NotImplementedError

    def asindex(self, a: np.ndarray) -> Any:
        """``a`` as the framework's integer array on :attr:`device`."""
        raise NotImplementedError

    def value_and_vjp(self, f: Callable[[Any], Any], x: Any, cotangent: Any | None) -> tuple[Any, Any]:
        """(f(x), VJP of cotangent (or of ones for a scalar)) through the framework's autodiff."""
        raise NotImplementedError

    def to_numpy(self, t: Any) -> tuple[np.ndarray, str]:
        """(float64 array, dtype name) of a framework array, forcing the computation to complete."""
        raise NotImplementedError

    def compile(self, f: Callable) -> Callable:
        """The framework's compiler applied to ``f`` (raise NotImplementedError if it has none)."""
        raise NotImplementedError(f"{self.name} has no compiled mode")

    def block(self, out: Any) -> None:
        """Wait until ``out`` (an array or a tuple of arrays) is computed. Synchronous frameworks: nothing."""

    def set_threads(self, n: int) -> None:
        """Use ``n`` threads for intra-op parallelism (benchmarks set the same count everywhere)."""

    # -- shared ---------------------------------------------------------------------------------
    def repro(
        self,
        binding: Binding,
        problem: Problem,
        check: str,
        cotangent: np.ndarray | None,
        expected: np.ndarray | None,
        mode: str = "eager",
    ) -> str | None:
        """A standalone snippet reproducing ``binding`` on ``problem`` (None when it declares no call)."""
        call = binding.call(problem) if callable(binding.call) else binding.call
        if not call or self.dialect is None:
            return None
        return snippet(self.dialect, call, problem, check, mode=mode, cotangent=cotangent, expected=expected)

    @property
    def has_compiler(self) -> bool:
        return type(self).compile is not FrameworkAdapter.compile

    def declare(self, bindings: list[Binding], devices: frozenset[str], facts: dict | None = None) -> list[Binding]:
        """``bindings`` with the devices found, the compiled mode where the framework has a compiler,
        and the options the installed versions (``facts``, the adapter's environment) lack withdrawn
        (``Capabilities.requires``)."""
        modes = frozenset({"eager", "compiled"}) if self.has_compiler else frozenset({"eager"})
        versions = {k: v for k, v in (facts or {}).items() if isinstance(v, str)}
        return [
            replace(
                b,
                caps=replace(
                    b.caps, devices=devices, modes=frozenset({"eager"}) if b.caps.eager_only else modes
                ).for_versions(versions),
            )
            for b in bindings
        ]

    def inputs(self, problem: Problem) -> Inputs:
        def conv(a):
            return None if a is None else self.asarray(a, problem.dtype)

        t, as_index = problem.handed_target()
        target = self.asindex(t) if as_index else conv(t)
        where = None if problem.where is None else self.asmask(problem.where)
        return Inputs(
            problem,
            target,
            conv(problem.handed_class_weight()),
            conv(problem.sample_weight),
            conv(problem.pos_weight),
            where,
        )

    def asmask(self, a: np.ndarray) -> Any:
        """A boolean mask as the framework's array (a framework whose API takes one overrides this)."""
        return self.asindex(a.astype(np.int64))

    def prepare(
        self,
        binding: Binding,
        problem: Problem,
        *,
        grad: bool,
        cotangent: np.ndarray | None = None,
        mode: str = "eager",
    ) -> Callable[[], Any]:
        """A zero-argument callable evaluating ``binding`` on ``problem`` (value, or (value, VJP) with
        ``grad``) and waiting for the result. Inputs are converted here, once, so timing the callable
        times the binding alone; a compiled mode compiles on the first call."""
        if mode not in ("eager", "compiled"):
            raise ValueError(f"{self.name}: unknown mode {mode!r}")
        x, inp = self._convert(problem)
        compiled = mode == "compiled"
        if binding.step is not None:  # a training step: the framework computes the loss and its gradient
            if grad and problem.reduction == "none":  # an unreduced step pulls back the cotangent itself
                ones = np.ones(output_shape(problem, binding.convention_for(problem)))
                inp = replace(inp, cotangent=self.asarray(ones if cotangent is None else cotangent, problem.dtype))

            def train():
                out = binding.step(x, inp, compiled)
                self.block(out)
                return out if grad else out[0]

            return train
        cot = None
        if grad and problem.reduction == "none":
            if cotangent is None:  # timing: pull back ones, shaped like the unreduced loss
                cotangent = np.ones(output_shape(problem, binding.convention_for(problem)))
            cot = self.asarray(cotangent, problem.dtype)
        extras = (inp.target, inp.class_weight, inp.sample_weight, inp.pos_weight, inp.where)

        # Inputs travel as arguments, not closure constants, so a compiler does not bake them in.
        def forward(x_, target, cw, sw, pw, where):
            return binding.fn(x_, Inputs(problem, target, cw, sw, pw, where))

        if compiled and not self.compile_whole_step:
            forward = self.compile(forward)
        if grad:

            def step(x_, *args):
                return self.value_and_vjp(lambda v: forward(v, *args), x_, cot)
        else:
            step = forward
        if compiled and self.compile_whole_step:
            step = self.compile(step)

        def call():
            out = step(x, *extras)
            self.block(out)
            return out

        return call

    def _convert(self, problem: Problem) -> tuple:
        """(x, Inputs) of ``problem`` as the framework's arrays, reused while the arrays stay the same
        (a problem that differs only in its reduction shares them). The slot holds the problem whose
        arrays it converted, so their ids cannot be reused by others."""
        key = (self.device, problem.dtype, problem.malformed, *(id(getattr(problem, f)) for f in _ARRAY_FIELDS))
        hit = self._converted
        if hit is None or hit[0] != key:
            self._converted = None  # free the previous arrays before converting the next ones
            handed, as_int = problem.handed_x()  # integer logits: the errors layer's malformed input
            x = self.asindex(handed) if as_int else self.asarray(handed, problem.dtype)
            hit = self._converted = (key, problem, x, self.inputs(problem))
        inp = hit[3] if hit[1] is problem else replace(hit[3], problem=problem)
        return hit[2], inp

    def release(self) -> None:
        """Drop the converted inputs held for the last problem (the benchmark sweep calls this when it
        moves on, so that only one framework holds a large input at a time)."""
        self._converted = None

    def run(
        self, binding: Binding, problem: Problem, *, grad: bool, cotangent: np.ndarray | None, mode: str = "eager"
    ) -> Output:
        if binding.caps.grad:
            # One value-and-gradient step (the training path) serves both the value and the gradient
            # check of a problem: compiling is the expensive part of the compiled mode, and JAX's eager
            # dispatch compiles every primitive per shape. A step whose gradient fails falls back to a
            # forward-only call for the value check.
            key = (
                binding.name,
                id(problem),
                self.device,
                mode,
                None if cotangent is None else np.asarray(cotangent).tobytes(),
            )
            hit = self._steps.get(key)
            if hit is None or hit[0] is not problem:  # the cache holds the problem: its id cannot be reused
                try:
                    hit = self._steps[key] = (problem, self._run(binding, problem, True, cotangent, mode))
                except Exception:
                    if grad:
                        raise
                    return self._run(binding, problem, False, cotangent, mode)
                while len(self._steps) > 8:  # value and grad checks of one problem run side by side
                    self._steps.pop(next(iter(self._steps)))
            out = hit[1]
            return out if grad else Output(out.value, None, out.dtype)
        return self._run(binding, problem, grad, cotangent, mode)

    def _run(self, binding, problem, grad, cotangent, mode) -> Output:
        out = self.prepare(binding, problem, grad=grad, cotangent=cotangent, mode=mode)()
        value, vdtype = self.to_numpy(out[0] if grad else out)
        g, gdtype = self.to_numpy(out[1]) if grad else (None, None)
        return Output(value, g, vdtype, gdtype)
