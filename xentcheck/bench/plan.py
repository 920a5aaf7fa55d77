"""The benchmark part of one pytest session: options, the specs to run, cached inputs, the floor
measured once, and the records collected (written into the results document's ``benchmarks``)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from typing import Any

from ..exception_text import one_line
from ..problem import DTYPES
from ..protocol import Adapter, Binding
from ..records import BenchRecord, BenchSection
from . import floor as floor_mod
from . import memory, precision, runner, sweep, threads
from .sweep import BenchSpec

_NO_COMPILE_CACHES = {
    "XENTCHECK_JAX_CACHE": "off",
    "TORCHINDUCTOR_FX_GRAPH_CACHE": "0",
    "TORCHINDUCTOR_AUTOGRAD_CACHE": "0",
}


#: how the sweep's own peak memory is measured (the bench report states it)
MEMORY_METHOD = (
    "this process's peak resident set (Linux VmHWM, kept across the resets before each timed round) plus the "
    "largest resident set of its descendants (e.g. Inductor's compile workers) sampled after each "
    "configuration; a descendant's peak between two samples is missed, pages shared between processes count "
    "in each"
)


def fresh_kernel_caches() -> str | None:
    """Point Inductor's and Triton's kernel caches at a folder of this process's own, removed at its end
    (where the caller has not chosen them). Whatever the graph caches say, Inductor keeps every C++
    kernel it builds (Triton every GPU binary) in a folder shared by all runs: a later run loads them
    instead of compiling, and its compile times read short (a quick sweep's torch part spent 111 s in
    compiled first calls on a fresh clone and 65 s on a machine that had run it before). Returns the
    folder (None: both were chosen)."""
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ and "TRITON_CACHE_DIR" in os.environ:
        return None
    root = tempfile.mkdtemp(prefix="xentcheck-bench-kernels-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(root, "inductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(root, "triton"))
    return root


@dataclass(frozen=True)
class BenchOptions:
    """The ``--bench*`` command-line values as given (declared and read with the run's other options
    in ``suites/plugin/options.py``); :class:`BenchPlan` validates them."""

    sizes: str = "quick"
    #: the linear_ce sizes (N x D x V): ``auto`` follows a named ``sizes``
    linear_sizes: str = "auto"
    modes: str = "eager,compiled"
    passes: str = "forward,forward+backward"
    dtypes: str = "float32"
    #: None: the CPUs this process may use
    threads: int | None = None
    time_s: float = 0.5
    precision: float = precision.PRECISION
    max_call_s: float = runner.MAX_CALL_S
    #: the run's device (``--device``): the adapters time on it
    device: str = "cpu"


class BenchPlan:
    """Created when ``--bench`` is given; raises sweep.SweepError on a malformed option."""

    def __init__(self, opt: BenchOptions):
        self.sizes = sweep.parse_sizes(opt.sizes)
        self.linear_sizes = sweep.parse_linear_sizes(opt.linear_sizes, opt.sizes)
        self.modes = sweep.parse_list("--bench-modes", opt.modes, sweep.MODES)
        self.passes = sweep.parse_list("--bench-passes", opt.passes, sweep.PASSES)
        self.dtypes = sweep.parse_list("--bench-dtypes", opt.dtypes, DTYPES)
        n = opt.threads or threads.available()
        if not 1 <= n <= threads.available():
            raise sweep.SweepError(f"--bench-threads={n}: this process may use 1 to {threads.available()} CPUs")
        self.budget_s = opt.time_s
        if not self.budget_s > 0:
            raise sweep.SweepError("--bench-time: give a positive number of seconds, e.g. 0.5")
        self.precision = opt.precision
        if not 0 < self.precision < 1:
            raise sweep.SweepError("--bench-precision: give a fraction between 0 and 1, e.g. 0.03")
        self.max_call_s = opt.max_call_s
        if not self.max_call_s >= 0:
            raise sweep.SweepError("--bench-max-call: give seconds (0 times every configuration in full), e.g. 0.5")
        self.thread_facts = threads.apply(n)  # before any framework is imported
        # compile times must be real compiles, not loads from the frameworks' on-disk caches
        for var, value in _NO_COMPILE_CACHES.items():
            os.environ.setdefault(var, value)
        fresh_kernel_caches()
        self.threads = n
        self.device = opt.device
        self.records: list[BenchRecord] = []
        self.floor: dict | None = None
        #: framework -> dtype -> the matmul rate measured with the framework's own matmul (linear_ce floor)
        self.matmul: dict[str, dict[str, dict]] = {}
        #: the highest resident set of this process's descendants (compile workers), sampled after each
        #: configuration
        self.descendants_peak_bytes = 0
        self._problem_key: tuple | None = None
        self._problem = None

    def specs(self, adapters: dict, bindings) -> list[BenchSpec]:
        """Size-major order, and within a size the bindings that share an input together, so each input
        is built once (at 4096x32000 building one takes seconds) and dropped before the next. The
        linear_ce bindings follow, at their own sizes (N x D x V)."""
        out = []
        for batch, classes in self.sizes:
            of_size = []
            for fw in adapters:
                for b in bindings(fw).values():
                    if b.step is not None:  # a training step builds its model per call: not a loss's timing
                        continue
                    if b.caps.op == sweep.LINEAR_OP:  # a step too, but timed at its own sizes below
                        continue
                    key = (b.caps.op, sweep.canonical_target(b.caps.op, b.caps.targets))
                    for dtype in self.dtypes:
                        for mode in self.modes:
                            for pass_ in self.passes:
                                of_size.append(
                                    (key, BenchSpec(fw, b.name, b.caps.op, batch, classes, dtype, mode, pass_))
                                )
            of_size.sort(key=lambda k_spec: k_spec[0])  # stable: framework and binding order stay within a key
            out += [spec for _, spec in of_size]
        for batch, hidden, classes in self.linear_sizes:
            for fw in adapters:
                for b in bindings(fw).values():
                    if b.caps.op != sweep.LINEAR_OP:
                        continue
                    for dtype in self.dtypes:
                        for mode in self.modes:
                            for pass_ in self.passes:
                                out.append(BenchSpec(fw, b.name, b.caps.op, batch, classes, dtype, mode, pass_, hidden))
        return out

    def problem(self, binding, spec: BenchSpec):
        """The canonical input of ``binding`` at ``spec``'s size; the arrays are shared by every binding
        with the same op and target kind (the reduction changes no array)."""
        reduction = "mean" if "mean" in binding.caps.reductions else "none"
        key = self._key(binding, spec)
        if key != self._problem_key:
            self._problem, self._problem_key = None, None  # free the previous input first
            op, target, batch, classes, dtype, hidden = key
            if hidden is not None:
                self._problem = sweep.linear_problem(batch, hidden, classes, dtype)
            else:
                self._problem = sweep.problem(op, target, reduction, batch, classes, dtype)
            self._problem_key = key
        if self._problem.reduction != reduction:
            self._problem = replace(self._problem, reduction=reduction)
        return self._problem

    @staticmethod
    def _key(binding, spec: BenchSpec) -> tuple:
        target = sweep.canonical_target(spec.op, binding.caps.targets)
        return (spec.op, target, spec.batch, spec.classes, spec.dtype, spec.hidden)

    def measure_matmul(self, adapter: Adapter, framework: str, dtype: str) -> dict:
        """The matmul rate of ``framework``'s own matmul in ``dtype`` (``matmul_kernels()`` of its adapter),
        measured once per run, at the first linear_ce benchmark that needs it."""
        by_dtype = self.matmul.setdefault(framework, {})
        if dtype not in by_dtype:
            offer = getattr(adapter, "matmul_kernels", None)
            kernels = (offer() or {}) if offer is not None else {}
            by_dtype[dtype] = floor_mod.measure_matmul(dtype, kernels, host=self.device == "cpu")
        return by_dtype[dtype]

    def measure_floor(self, adapters: dict[str, Adapter]) -> dict:
        """Bandwidth and exp throughput on the run's device, once per run, before the first benchmark.
        Adapters offer kernels on their device (``read_kernels()``, ``exp_kernels()``) and its cache
        size (``device_cache_bytes()``); on the CPU NumPy's own kernels are
        candidates too. ``last_level_cache_bytes`` is the cache of the device timed (what tells a
        cache-resident size from a memory-bound one)."""
        if self.floor is None:
            device = self.device
            host = device == "cpu"
            reads, exps, caches = {}, {}, []
            for a in adapters.values():
                for attr, into in (("read_kernels", reads), ("exp_kernels", exps)):
                    offer = getattr(a, attr, None)
                    if offer is not None:
                        into.update(offer() or {})
                cache = getattr(a, "device_cache_bytes", None)
                if not host and cache is not None and cache():
                    caches.append(cache())
            cache_bytes = floor_mod.last_level_cache_bytes() if host else max(caches, default=None)
            exp = {
                dtype: floor_mod.measure_exp(self.threads, dtype, exps, host=host)
                for dtype in sorted(set(self.dtypes) | {"float32"})
            }
            self.floor = {
                "device": device,
                "bandwidth": floor_mod.measure_bandwidth(self.threads, reads, host=host, cache_bytes=cache_bytes),
                "exp": exp,
                "last_level_cache_bytes": cache_bytes,
                "process_peak_memory": memory.process_peak_available(),
            }
        return self.floor

    def run(self, adapters: dict[str, Adapter], binding: Binding, spec: BenchSpec, benchmark: Any) -> BenchRecord:
        """One benchmark record; ``unsupported`` with the reason where the binding cannot do it.
        ``adapters`` are all loaded ones: each may offer an exp kernel to the floor."""
        adapter, device = adapters[spec.framework], self.device
        rec = runner.base_record(spec, binding.api, device, self.threads)
        new_input = self._key(binding, spec) != self._problem_key
        for name, other in adapters.items():  # one framework at a time holds a converted input
            if (new_input or name != spec.framework) and hasattr(other, "release"):
                other.release()
        problem = self.problem(binding, spec)
        if spec.hidden is not None and not spec.grad:
            # a linear_ce step returns the loss and its gradients: the forward alone is the binding's fn
            binding = replace(binding, step=None)
        why = binding.caps.why_unsupported(problem, mode="eager", device=device)
        if why is None and spec.grad and not binding.caps.grad:
            why = "no gradient: the framework has no autodiff"
        if why is None and not hasattr(adapter, "prepare"):
            why = f"adapter {spec.framework} offers no prepare() for timing"
        if why is None and spec.mode == "compiled" and not _can_compile(adapter):
            why = f"{spec.framework} has no compiler"
        if why is None and spec.mode not in binding.caps.modes:  # e.g. a metric, eager only
            why = binding.caps.why_unsupported(problem, mode=spec.mode, device=device)
        if why is None and hasattr(adapter, "timing_unsupported"):  # e.g. a Triton interpreter on the CPU
            why = adapter.timing_unsupported(binding, problem)
        if why:
            rec.outcome, rec.reason = "unsupported", why
            return rec
        floor = self.measure_floor(adapters)
        if spec.hidden is not None:
            floor = {**floor, "matmul": self.measure_matmul(adapter, spec.framework, spec.dtype)}
        try:
            return runner.measure(
                adapter,
                binding,
                spec,
                problem,
                benchmark,
                floor=floor,
                budget_s=self.budget_s,
                target=self.precision,
                max_call_s=self.max_call_s,
                threads=self.threads,
            )
        except Exception as e:  # one binding's failure is recorded; the sweep goes on
            rec.outcome, rec.reason = "error", one_line(e)
            return rec
        finally:
            self.descendants_peak_bytes = max(self.descendants_peak_bytes, memory.descendants_rss_bytes())

    def settings(self) -> dict:
        """The sweep's settings as the results document's ``benchmarks`` holds them, without records
        (a journal starts with them, so benchmark records recover too)."""
        return {
            "threads": self.thread_facts,
            "sizes": [list(s) for s in self.sizes],
            "linear_sizes": [list(s) for s in self.linear_sizes],
            "modes": list(self.modes),
            "passes": list(self.passes),
            "dtypes": list(self.dtypes),
            "budget_s": self.budget_s,
            "precision": self.precision,
            "max_call_s": self.max_call_s,
            "floor": self.floor,
            "matmul": self.matmul or None,
            "memory": self.memory_summary(),
        }

    def memory_summary(self) -> dict:
        """The sweep's peak memory as far as measured so far, with its method."""
        own = memory.process_peak_bytes()
        return {
            "process_peak_bytes": own,
            "descendants_peak_bytes": self.descendants_peak_bytes,
            "sweep_peak_bytes": (own or 0) + self.descendants_peak_bytes or None,
            "method": MEMORY_METHOD,
        }

    def section(self) -> BenchSection | None:
        """The results document's ``benchmarks`` (None when nothing was timed)."""
        if not self.records:
            return None
        return BenchSection(**self.settings(), records=sorted(self.records, key=lambda r: r.id))


def _can_compile(adapter: Adapter) -> bool:
    """Whether the adapter offers a compiled mode: its ``has_compiler`` where it says (an adapter with a
    default ``compile`` that raises), else whether it has a ``compile`` at all."""
    says = getattr(adapter, "has_compiler", None)
    if isinstance(says, bool):
        return says
    return getattr(type(adapter), "compile", None) is not None
