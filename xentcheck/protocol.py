"""The adapter protocol: what the core knows about a framework adapter and its bindings.

An *adapter* (one per framework, or a user's own kernel) lists *bindings*: one native cross-entropy
API each, with the :class:`Capabilities` it declares and the :class:`~xentcheck.reference.Convention`
it documents. The core (checks, relations, stability, benchmarks) drives adapters only through these
types, so it never imports ``adapters/``.

An adapter runs everything on its ``device`` attribute (``"cpu"`` where it has none): the run's
``--device``, set once at start-up, never passed with each call.

For the benchmark sweep (``--bench``) an adapter also offers, each optional:
``prepare(binding, problem, *, grad, mode)`` returning a zero-argument call that runs the
binding and waits for the result (inputs converted beforehand); ``compile(f)`` for the compiled
mode (and ``has_compiler``, a bool, where ``compile`` exists but may raise); ``set_threads(n)``;
``bare(binding_name, problem, *, grad)``, a hand-written native call for the
adapter-overhead ratio; ``exp_kernels()`` and ``read_kernels()``, candidate kernels for the
physical floor; ``device_peak_bytes(call)`` from the device allocator (each on its ``device``).
``adapters.framework.FrameworkAdapter`` implements ``prepare`` for array frameworks.

For reproduction snippets an adapter offers ``repro(binding, problem, check, cotangent, expected,
mode)``; ``adapters.framework.FrameworkAdapter`` writes them from its ``dialect`` and each
binding's ``call`` (see :mod:`adapters.repro`; ``suites/test_repro.py`` runs every one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .problem import DTYPES, Problem
from .reference import MATH, Convention

__all__ = [
    "ALL_FLOATS",
    "ALL_REDUCTIONS",
    "FLOATS",
    "Adapter",
    "Binding",
    "Capabilities",
    "ContractError",
    "Inputs",
    "Output",
    "WorkerGroup",
    "run_binding",
]

ALL_REDUCTIONS = frozenset({"none", "sum", "mean"})
FLOATS = frozenset({"float32", "float64"})
#: every dtype the suite knows; low precision is declared per binding, as the framework supports it
ALL_FLOATS = frozenset(DTYPES)


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
    #: (option, package, version specifier): an option that needs a keyword a package added later,
    #: e.g. ("channels_first", "optax", ">=0.2.4") for axis=; see :meth:`for_versions`
    requires: tuple[tuple[str, str, str], ...] = ()
    #: (option, why): options the installed versions lack (set by :meth:`for_versions`)
    unavailable: tuple[tuple[str, str], ...] = ()
    #: why the binding runs eagerly only, whatever compiler its framework has (empty: it compiles)
    eager_only: str = ""

    def for_versions(self, versions: dict[str, str]) -> Capabilities:
        """These capabilities on the installed ``versions`` (package -> version): an option whose
        requirement does not hold is withdrawn, with the reason, so its checks are ``unsupported``
        (never an ``error`` from a keyword the installed version does not know)."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version

        gone = []
        for option, package, spec in self.requires:
            installed = versions.get(package)
            try:
                ok = installed is not None and Version(installed.split("+")[0]) in SpecifierSet(spec)
            except InvalidVersion:
                ok = False
            if not ok and option in self.options:
                gone.append((option, f"option {option} needs {package}{spec} (installed: {installed or 'none'})"))
        if not gone:
            return self
        return replace(self, options=self.options - {o for o, _ in gone}, unavailable=self.unavailable + tuple(gone))

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
            why = dict(self.unavailable)
            return "; ".join(why.get(o, f"option {o} not offered") for o in sorted(missing))
        if problem.dtype not in self.dtypes:
            return f"dtype {problem.dtype} not supported"
        if mode not in self.modes:
            return f"mode {mode} not supported" + (f": {self.eager_only}" if self.eager_only else "")
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
            **({"unavailable": dict(self.unavailable)} if self.unavailable else {}),
        }


@dataclass(frozen=True)
class Inputs:
    """Everything but the differentiated input, already converted to the framework's arrays."""

    problem: Problem
    target: Any
    class_weight: Any = None
    sample_weight: Any = None
    pos_weight: Any = None
    #: the ``where`` class mask (see Problem.where) as the framework's boolean array
    where: Any = None
    #: a ``step`` binding's upstream gradient of its unreduced output (None: reduced, or a value only)
    cotangent: Any = None

    @property
    def reduction(self) -> str:
        return self.problem.reduction


@dataclass(frozen=True)
class Binding:
    """One native API implementing one op.

    ``fn(x, inputs)`` calls the API on the framework array ``x`` (logits or probabilities, class axis
    last) and returns the framework's result; it is differentiated by the adapter's autodiff.
    ``step(x, inputs, compiled)``, where given, replaces both: the binding computes its own scalar loss
    and its gradient with respect to ``x`` (a training step, whose gradient the framework's optimizer
    receives) and returns ``(loss, gradient)``; ``fn`` then serves reproduction and probing only.
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
    #: a training step computing (loss, d loss / d x) itself; see above
    step: Callable[[Any, Inputs, bool], tuple[Any, Any]] | None = field(default=None, repr=False)

    def convention_for(self, problem: Problem) -> Convention:
        c = self.convention
        return c if isinstance(c, Convention) else c(problem)


@dataclass(frozen=True)
class Output:
    """A binding's result as float64 NumPy arrays, with the dtypes the framework returned them in
    (``grad_dtype`` None: the gradient's dtype is ``dtype``). The dtypes are part of the result contract:
    a float32 input wants a float32 loss and gradient."""

    value: np.ndarray
    grad: np.ndarray | None
    dtype: str
    grad_dtype: str | None = None

    def dtype_of(self, check: str) -> str:
        """The dtype the framework returned the value (``check`` "value") or the gradient in."""
        return self.grad_dtype or self.dtype if check == "grad" else self.dtype


@runtime_checkable
class Adapter(Protocol):
    """The interface every framework adapter (built-in or external) provides."""

    name: str

    def environment(self) -> dict:
        """Framework versions and facts (threads, devices) for the results file."""

    def bindings(self) -> list[Binding]:
        """The bindings this adapter offers."""

    # optional: ``worker_groups``, a tuple of WorkerGroup (how its checks split across xdist workers)

    def run(
        self, binding: Binding, problem: Problem, *, grad: bool, cotangent: np.ndarray | None, mode: str = "eager"
    ) -> Output:
        """Evaluate ``binding`` on ``problem``; with ``grad``, also the VJP of ``cotangent`` w.r.t. x.
        It runs on the adapter's ``device`` attribute (absent: the CPU), which the run sets once at
        start-up from ``--device``."""


@dataclass(frozen=True)
class WorkerGroup:
    """A group of an adapter's checks that one pytest-xdist worker runs together (its kernels compile
    once there), declared by the adapter as ``worker_groups``: a check joins the first group whose
    filters (empty: any) take its kind, dtype and mode; without one, its framework's name is its
    group. ``rank`` orders the groups of all adapters as they are handed out (lowest first: the
    longest first, so no worker idles at the end; see docs/performance.md)."""

    name: str
    rank: int
    kinds: frozenset[str] = frozenset()
    dtypes: frozenset[str] = frozenset()
    modes: frozenset[str] = frozenset()

    def takes(self, kind: str, dtype: str, mode: str) -> bool:
        return all(
            not allowed or v in allowed for v, allowed in ((kind, self.kinds), (dtype, self.dtypes), (mode, self.modes))
        )

    @staticmethod
    def compiled_by_dtype(framework: str, first_rank: int) -> tuple[WorkerGroup, ...]:
        """A framework's compiled conformance checks, one group per dtype (``torch-compiled-float32``:
        a graph is compiled per dtype anyway, so a split compiles nothing twice), ranked from
        ``first_rank`` in the order float32, float64, float16, bfloat16."""
        return tuple(
            WorkerGroup(
                f"{framework}-compiled-{dt}",
                first_rank + i,
                frozenset({"value", "grad"}),
                frozenset({dt}),
                frozenset({"compiled"}),
            )
            for i, dt in enumerate(("float32", "float64", "float16", "bfloat16"))
        )


class ContractError(TypeError):
    """An adapter broke the protocol (its ``run`` returned something that is not an Output); the
    message says how. Never read as the framework refusing an input."""


class InputWrittenError(ContractError):
    """A binding wrote into the arrays it was handed: its result is of other inputs than the judged ones."""


#: the arrays of a Problem a binding is handed
_INPUT_ARRAYS = ("x", "target", "class_weight", "sample_weight", "pos_weight", "where")
#: original problem's id -> (the original, the binding's private copy), the last few: a copy verified
#: unchanged after a call is pristine and serves the next call of the same problem, so an adapter that
#: caches by problem (one value-and-gradient step for both checks) still hits its cache
_HANDED: dict[int, tuple[Problem, Problem]] = {}


def variant_of(binding: str) -> str:
    """The binding that a calling variant ``NAME[how]`` calls (``binding`` itself when it is no variant).
    A variant calls the same API another way (e.g. a second backward): it is checked like any binding,
    has the API's documented behaviours, and takes no part in the relations, whose identities are the
    API's."""
    base, sep, rest = binding.partition("[")
    return base if sep and rest.endswith("]") and base else binding


def _handed_copy(problem: Problem) -> Problem:
    hit = _HANDED.get(id(problem))
    if hit is not None and hit[0] is problem:
        return hit[1]
    copy = replace(
        problem, **{k: np.array(v, copy=True) for k in _INPUT_ARRAYS if (v := getattr(problem, k)) is not None}
    )
    _HANDED[id(problem)] = (problem, copy)
    while len(_HANDED) > 8:
        _HANDED.pop(next(iter(_HANDED)))
    return copy


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Bit for bit (NaN payloads and signed zeros included), shape and dtype too."""
    if a is None or b is None:
        return a is b
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    )


def _check_untouched(
    binding: Binding,
    inputs: tuple[Problem, Problem],
    cotangents: tuple[np.ndarray | None, np.ndarray | None],
    raised: BaseException | None = None,
) -> None:
    """Raise InputWrittenError when the call changed the binding's copies (also when it raised: a
    refusal after writing is still a write); a written copy is dropped, never handed out again.

    ``inputs`` is (the judge's problem, the copy handed to the binding); ``cotangents`` is (the
    caller's cotangent, the copy handed to the binding), both None when there is none."""
    problem, handed = inputs
    cotangent, cot = cotangents
    written = [k for k in _INPUT_ARRAYS if not _same(getattr(problem, k), getattr(handed, k))]
    if cotangent is not None and not _same(np.asarray(cotangent), cot):
        written.append("cotangent")
    if written:
        _HANDED.pop(id(problem), None)
        raise InputWrittenError(
            f"{binding.name} wrote into its inputs ({', '.join(written)}): its result is of "
            f"other inputs than the ones judged; the next binding gets pristine copies"
        ) from raised


def run_binding(
    adapter: Adapter,
    binding: Binding,
    problem: Problem,
    *,
    grad: bool,
    cotangent: np.ndarray | None,
    mode: str = "eager",
) -> Output:
    """``adapter.run`` with its result checked against the protocol: an exception the call raises
    propagates as it is; a result that is not an Output raises ContractError.

    The binding gets private copies of the problem's arrays and of the cotangent, never the judge's
    (the oracle evaluates ``problem`` itself); a binding that writes into them raises
    InputWrittenError naming it (an ``error``: its result is of other inputs), and its copy is dropped
    so the next binding gets pristine inputs."""
    handed = _handed_copy(problem)
    cot = None if cotangent is None else np.array(cotangent, copy=True)
    try:
        with problem.expected_noise():
            out = adapter.run(binding, handed, grad=grad, cotangent=cot, mode=mode)
    except Exception as e:
        _check_untouched(binding, (problem, handed), (cotangent, cot), e)
        raise
    _check_untouched(binding, (problem, handed), (cotangent, cot))
    if not all(hasattr(out, k) for k in ("value", "grad", "dtype")):
        raise ContractError(
            f"{adapter.name}'s run() returned {type(out).__name__} "
            f"{str(out)[:80]!r}, not an Output(value, grad, dtype) (see xentcheck.protocol)"
        )
    try:
        value = np.asarray(out.value, dtype=np.float64)
        g = None if out.grad is None else np.asarray(out.grad, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ContractError(f"{adapter.name}'s run() returned an Output whose arrays are not numeric: {e}") from None
    if grad and g is None:
        raise ContractError(f"{adapter.name}'s run(grad=True) returned no gradient (Output.grad is None)")
    gd = getattr(out, "grad_dtype", None)
    return Output(value, g, str(out.dtype), None if gd is None else str(gd))
