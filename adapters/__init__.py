"""Adapters: one module per framework, behind the small protocol defined here.

An adapter knows its framework's arrays, devices and autodiff, and lists its *bindings*: one native
cross-entropy API each, with the capabilities it declares and the convention it documents.
Built-in adapters are listed in :data:`BUILTIN`; an external one (a custom kernel) is any object
satisfying :class:`Adapter`, passed as ``--adapter=module:attr``.

For the benchmark sweep (``--bench``) an adapter also offers, each optional:
``prepare(binding, problem, *, grad, mode, device)`` returning a zero-argument call that runs the
binding and waits for the result (inputs converted beforehand); ``compile(f)`` for the compiled
mode; ``set_threads(n)``; ``bare(binding_name, problem, *, grad, device)``, a hand-written native
call for the adapter-overhead ratio; ``exp_kernels(device)`` and ``read_kernels(device)``,
candidate kernels for the physical floor; ``device_peak_bytes(call, device)`` from the device
allocator. :class:`adapters.framework.FrameworkAdapter` implements ``prepare`` for array frameworks.

For reproduction snippets an adapter offers ``repro(binding, problem, check, cotangent, expected,
mode)``; :class:`~adapters.framework.FrameworkAdapter` writes them from its ``dialect`` and each
binding's ``call`` (see :mod:`adapters.repro`; ``suites/test_repro.py`` runs every one).
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from xentcheck.problem import DTYPES, Problem
from xentcheck.reference import MATH, Convention

#: framework name -> (adapter module, the top-level packages it needs installed)
BUILTIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "numpy": ("adapters.numpy_scipy", ("numpy", "scipy")),
    "torch": ("adapters.pytorch", ("torch",)),
    "tensorflow": ("adapters.tensorflow_keras", ("tensorflow",)),
    "jax": ("adapters.jax_optax", ("jax", "optax")),
}

ALL_REDUCTIONS = frozenset({"none", "sum", "mean"})
FLOATS = frozenset({"float32", "float64"})
#: every dtype the suite knows; low precision is declared per binding, as the framework supports it
ALL_FLOATS = frozenset(DTYPES)


class AdapterError(Exception):
    """An adapter that cannot be loaded; the message is one line saying what to do."""


@dataclass(frozen=True)
class Capabilities:
    """What a binding declares it supports. Anything else is ``unsupported`` with the reason."""

    op: str
    targets: frozenset[str]
    reductions: frozenset[str] = ALL_REDUCTIONS
    options: frozenset[str] = frozenset()
    dtypes: frozenset[str] = FLOATS
    grad: bool = True
    modes: frozenset[str] = frozenset({"eager"})
    devices: frozenset[str] = frozenset({"cpu"})
    #: the fewest classes the API accepts, with the reason (e.g. sklearn infers a binary problem)
    min_classes: tuple[int, str] = (1, "")

    def why_unsupported(self, problem: Problem, *, mode: str = "eager", device: str = "cpu") -> str | None:
        """None if the binding supports this problem, else the reason it does not."""
        if problem.op != self.op:
            return f"binding implements {self.op}, not {problem.op}"
        if problem.target_kind not in self.targets:
            return f"{problem.target_kind} targets not accepted (takes {', '.join(sorted(self.targets))})"
        if problem.reduction not in self.reductions:
            return f"reduction {problem.reduction!r} not offered (has {', '.join(sorted(self.reductions))})"
        if problem.categorical and problem.num_classes < self.min_classes[0]:
            return f"needs at least {self.min_classes[0]} classes: {self.min_classes[1]}"
        missing = problem.options_used() - self.options
        if missing:
            return f"option {', '.join(sorted(missing))} not offered"
        if problem.dtype not in self.dtypes:
            return f"dtype {problem.dtype} not supported"
        if mode not in self.modes:
            return f"mode {mode} not supported"
        if device not in self.devices:
            return f"device {device} not supported"
        return None

    def as_dict(self) -> dict:
        return {
            "op": self.op,
            "targets": sorted(self.targets),
            "reductions": sorted(self.reductions),
            "options": sorted(self.options),
            "dtypes": sorted(self.dtypes),
            "grad": self.grad,
            "modes": sorted(self.modes),
            "devices": sorted(self.devices),
            "min_classes": self.min_classes[0],
        }


@dataclass(frozen=True)
class Inputs:
    """Everything but the differentiated input, already converted to the framework's arrays."""

    problem: Problem
    target: Any
    class_weight: Any = None
    sample_weight: Any = None
    pos_weight: Any = None

    @property
    def reduction(self) -> str:
        return self.problem.reduction


@dataclass(frozen=True)
class Binding:
    """One native API implementing one op.

    ``fn(x, inputs)`` calls the API on the framework array ``x`` (logits or probabilities, class axis
    last) and returns the framework's result; it is differentiated by the adapter's autodiff.
    ``convention`` is the binding's documented semantics (a :class:`Convention` or a function of the
    problem returning one): how its mean divides, whether it averages the last axis.
    """

    name: str
    api: str
    caps: Capabilities
    fn: Callable[[Any, Inputs], Any] = field(repr=False)
    convention: Convention | Callable[[Problem], Convention] = MATH
    doc: str = ""
    #: the loss as one expression in the framework's own API, for reproduction snippets
    #: (see adapters/repro.py): a format string, or a function of the problem returning one
    call: str | Callable[[Problem], str] = ""

    def convention_for(self, problem: Problem) -> Convention:
        c = self.convention
        return c if isinstance(c, Convention) else c(problem)


@dataclass(frozen=True)
class Output:
    """A binding's result as float64 NumPy arrays, with the dtype the framework returned."""

    value: np.ndarray
    grad: np.ndarray | None
    dtype: str


@runtime_checkable
class Adapter(Protocol):
    """The interface every framework adapter (built-in or external) provides."""

    name: str

    def environment(self) -> dict:
        """Framework versions and facts (threads, devices) for the results file."""

    def bindings(self) -> list[Binding]:
        """The bindings this adapter offers."""

    def run(self, binding: Binding, problem: Problem, *, grad: bool, cotangent: np.ndarray | None,
            mode: str = "eager", device: str = "cpu") -> Output:
        """Evaluate ``binding`` on ``problem``; with ``grad``, also the VJP of ``cotangent`` w.r.t. x."""


def missing_packages(framework: str) -> list[str]:
    """Which packages a built-in framework needs that are not installed (without importing them)."""
    _, needs = BUILTIN[framework]
    return [pkg for pkg in needs if importlib.util.find_spec(pkg) is None]


def load_builtin(framework: str) -> Adapter:
    """Import and return a built-in adapter; raises AdapterError with one line on failure."""
    module_name, _ = BUILTIN[framework]
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # a broken install must not take the other frameworks down
        raise AdapterError(f"{framework}: importing its adapter failed: {type(e).__name__}: {e}") from None
    return module.ADAPTER


def load_external(spec: str) -> Adapter:
    """Load ``module:attr`` (an adapter object or a zero-argument factory returning one)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AdapterError(f"--adapter={spec}: expected MODULE:ATTR, e.g. --adapter=my_kernels.xent:ADAPTER")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except ModuleNotFoundError as e:
        raise AdapterError(f"--adapter={spec}: module not found ({e}); is it on PYTHONPATH?") from None
    except AttributeError:
        raise AdapterError(f"--adapter={spec}: module {module_name!r} has no attribute {attr!r}") from None
    except Exception as e:
        raise AdapterError(f"--adapter={spec}: importing failed: {type(e).__name__}: {e}") from None
    if callable(obj) and not isinstance(obj, Adapter):
        obj = obj()
    if not isinstance(obj, Adapter) or not isinstance(getattr(obj, "name", None), str):
        raise AdapterError(f"--adapter={spec}: object lacks name/environment/bindings/run (see adapters.Adapter)")
    return obj
