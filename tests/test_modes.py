"""Compiled mode: one compile serves a problem's value and gradient checks, and each compiled record
says how far it lies from the eager result (framework-free: the "compiler" is planted)."""

import numpy as np

from adapters import Binding
from adapters.framework import FrameworkAdapter
from cases import load_catalog
from xentcheck.checks import Judge
from xentcheck.expectations import Registry

from .fake_adapter import CAPS, HONEST, MEAN_BY_WEIGHT


class CompiledFake(FrameworkAdapter):
    """The honest fake behind FrameworkAdapter.run; its "compiled" mode can perturb the result."""

    name = "compiledfake"

    def __init__(self, compiled_error: float = 0.0):
        super().__init__()
        self.compiled_error = compiled_error
        self.prepared: list[tuple[str, bool]] = []

    def bindings(self):
        return self.declare(
            [Binding("fake.softmax_ce", "fake.softmax_ce", CAPS, fn=None, convention=MEAN_BY_WEIGHT)],
            frozenset({"cpu"}),
        )

    def compile(self, f):
        return f

    def prepare(self, binding, problem, *, grad, cotangent=None, mode="eager", device="cpu"):
        self.prepared.append((mode, grad))
        out = HONEST.run(binding, problem, grad=True, cotangent=cotangent)
        k = 1.0 + (self.compiled_error if mode == "compiled" else 0.0)
        return lambda: (out.value * k, out.grad * k) if grad else out.value * k

    def to_numpy(self, t):
        return np.asarray(t, dtype=np.float64), "float64"


def _checks(adapter):
    case = next(c for c in load_catalog() if c.name == "random_index")
    problem = case.problem("softmax_ce", "float64", "mean")
    b = adapter.bindings()[0]
    assert "compiled" in b.caps.modes
    return [Judge(Registry(), {}).check(adapter, b, problem, c, mode="compiled") for c in ("value", "grad")]


def test_one_compile_serves_the_value_and_the_gradient_check():
    a = CompiledFake()
    recs = _checks(a)
    assert [r.outcome for r in recs] == ["pass", "pass"]
    assert a.prepared.count(("compiled", True)) == 1 and ("compiled", False) not in a.prepared
    assert all(r.vs_eager["same"] and r.mode == "compiled" for r in recs)


def test_a_compiler_that_changes_the_numbers_fails_and_differs_from_eager():
    recs = _checks(CompiledFake(compiled_error=1e-6))
    assert [r.outcome for r in recs] == ["fail", "fail"]
    assert not any(r.vs_eager["same"] for r in recs) and all(r.vs_eager["tol_units"] > 1 for r in recs)
