"""The session of one run: the loaded adapters, cases and registry, the specs of each suite, and
running one spec into its record. It knows nothing of pytest's hooks (``hooks.py``) or of files
(``writer.py``)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from adapters import BUILTIN, AdapterError, load_builtin, load_external, missing_packages
from cases import Case, CaseError, interactions, load_catalog
from xentcheck import checks, relations, stability
from xentcheck.bench.plan import BenchPlan
from xentcheck.bench.sweep import BenchSpec, SweepError
from xentcheck.environment import base_environment
from xentcheck.exception_text import one_line
from xentcheck.expectations import ExpectationError, load_registry
from xentcheck.problem import DTYPES, Problem
from xentcheck.protocol import Adapter, Binding
from xentcheck.records import BenchRecord, CheckRecord, RelationRecord, StabilityRecord
from xentcheck.results import Results, ResultsError, load

from .options import RunOptions


@dataclass(frozen=True)
class CheckSpec:
    """One parametrised check: everything needed to rebuild the problem and find the binding."""

    framework: str
    binding: str
    case: str
    op: str
    dtype: str
    reduction: str
    check: str
    mode: str = "eager"

    @property
    def id(self) -> str:
        return checks.check_id(self.framework, self.binding, self.case, self.dtype, self.mode, self.reduction,
                               self.check)


class XentSession:
    """State of one xentcheck run: selected frameworks, loaded adapters, cases, registry."""

    def __init__(self, options: RunOptions, argv: list[str]) -> None:
        self.options = options
        if options.frameworks_named:  # a framework the user names must run: missing is an error, not a skip
            for name in options.frameworks:
                missing = missing_packages(name)
                if missing:
                    raise pytest.UsageError(f"--frameworks names {name}, which is not installed (missing "
                                            f"{', '.join(missing)}): install it (pip install -e '.[{name}]') or "
                                            f"leave it out")
        try:  # external adapters load at once, so a bad --adapter fails before anything runs
            self.externals = [load_external(spec) for spec in options.adapters]
        except AdapterError as e:
            raise pytest.UsageError(str(e)) from None
        try:
            self.cases: dict[str, Case] = {c.name: c for c in load_catalog(external=list(options.cases))}
            self.registry = load_registry(list(options.expectations))
        except (CaseError, ExpectationError) as e:
            raise pytest.UsageError(str(e)) from None
        # a framework name no adapter declares (a typo) is an error now, not a warning at the end
        self._known = frozenset(BUILTIN) | {a.name for a in self.externals}
        wrong = self.registry.undeclared(self._known, {})
        if wrong:
            raise pytest.UsageError(wrong)
        self.baseline: Results | None = None
        if options.baseline:
            try:  # read now: an unreadable baseline must not cost a whole run
                self.baseline = load(options.baseline)
            except ResultsError as e:
                raise pytest.UsageError(f"--baseline: {e}") from None
        try:  # before any framework is imported: it fixes the thread settings
            self.bench = BenchPlan(options.bench) if options.bench else None
        except SweepError as e:
            raise pytest.UsageError(str(e)) from None
        self.adapters: dict[str, Adapter] | None = None
        self.skipped: dict[str, str] = {}  # not installed, or no such device here: nothing to check
        self.broken: dict[str, str] = {}  # installed, but its adapter failed: the run fails
        self.environment = base_environment(options.device, argv)
        self._problems: dict[tuple, Problem] = {}
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._versions: dict | None = None
        self._generated: set[str] = set()  # the interaction cases' names
        self.registry_error: str | None = None  # a registry entry naming a binding no loaded adapter declares

    # -- adapters -----------------------------------------------------------------------------
    def load_adapters(self) -> dict[str, Adapter]:
        if self.adapters is not None:
            return self.adapters
        self.adapters = {}
        for name in self.options.frameworks:
            missing = missing_packages(name)
            if missing:
                self.skipped[name] = f"not installed (missing {', '.join(missing)})"
                continue
            try:
                self.adapters[name] = load_builtin(name)
            except AdapterError as e:
                self.broken[name] = str(e)
        for a in self.externals:
            self.adapters[a.name] = a
        for name, a in self.adapters.items():
            try:
                if self.bench and hasattr(a, "set_threads"):
                    a.set_threads(self.bench.threads)
                self.environment["frameworks"][name] = a.environment()
                self.bindings(name)
            except Exception as e:  # the others still run; the run fails
                self.broken[name] = f"{name}: its adapter failed while listing its bindings: {one_line(e)}"
        device = self.options.device
        for name in [n for n in self.adapters if n not in self.skipped and device != "cpu"]:
            # a framework without the device runs nothing: no record may claim a device that did not run
            offered = set().union(*(b.caps.devices for b in self.bindings(name).values()))
            if device not in offered:
                self.skipped[name] = f"no {device} device here (it offers {', '.join(sorted(offered)) or 'none'})"
        for name in [*self.skipped, *self.broken]:
            self.adapters.pop(name, None)
            self.environment["frameworks"].pop(name, None)
        # a misspelt binding: the hooks raise it once collection ends, before anything runs (raised
        # here, inside a suite's parametrisation, pytest would print it as a collection traceback)
        self.registry_error = self.registry.undeclared(self._known, {n: set(self.bindings(n)) for n in self.adapters})
        self.environment["skipped"].update(self.skipped)
        if self.broken:
            self.environment["broken"] = dict(self.broken)
        return self.adapters

    def bindings(self, framework: str) -> dict[str, Binding]:
        cache = self._bindings
        if framework not in cache:
            cache[framework] = {b.name: b for b in self.adapters[framework].bindings()}
            for b in cache[framework].values():
                self.environment["bindings"][f"{framework}::{b.name}"] = {
                    "framework": framework, "binding": b.name, "api": b.api, "doc": b.doc,
                    "capabilities": b.caps.as_dict(), "conventions": interactions.conventions(b)}
        return cache[framework]

    def versions(self) -> dict:
        """package -> version, for the registry's version ranges."""
        if self._versions is None:
            self._versions = {k: v for facts in self.environment["frameworks"].values()
                              for k, v in facts.items() if isinstance(v, str)}
        return self._versions

    # -- specs ----------------------------------------------------------------------------------
    def _chosen_cases(self) -> set[str]:
        """The cases this run uses: all, or with --one-per-category the first of each (category, op,
        target kind, layout), so every binding meets every category it can take."""
        if not self.options.one_per_category:
            return set(self.cases)
        first: dict = {}
        for case in self.cases.values():
            for op in case.ops:
                first.setdefault((case.category, op, case.target_kind, bool(case.channels_first)), case.name)
        return set(first.values())

    def specs(self) -> list[CheckSpec]:
        """Every check to run: binding x case x mode x dtype x reduction x (value, grad), where the op
        matches; then each binding's interaction cases (its own dtype and reduction per row)."""
        out = []
        chosen = self._chosen_cases()
        for fw in self.load_adapters():
            for b in self.bindings(fw).values():
                for case in self.cases.values():
                    if b.caps.op not in case.ops or case.name not in chosen or case.name in self._generated \
                            or not self.options.in_run(fw, b.name):
                        continue
                    for mode in self.options.modes:
                        for dtype in self.options.dtypes_for(fw, DTYPES if self.options.all_dtypes else case.dtypes):
                            for red in self.options.reductions_for(fw, b.caps.reductions, case.reductions):
                                for chk in case.checks:
                                    out.append(CheckSpec(fw, b.name, case.name, b.caps.op, dtype, red, chk, mode))
                out += self._interaction_specs(fw, b)
        return out

    def _interaction_specs(self, fw: str, b: Binding) -> list[CheckSpec]:
        """The checks of ``b``'s interaction cases; its pair coverage goes into the environment."""
        if not self.options.interactions or not self.options.all_layers(fw):
            return []
        try:
            plan = interactions.plan(b, self.options.interactions)
        except interactions.InteractionError as e:
            raise pytest.UsageError(f"{fw}: {e}") from None
        self.environment["interactions"][f"{fw}::{b.name}"] = plan.as_dict()
        out = []
        for row in plan.rows:
            case = interactions.case(b.caps.op, row)
            case = self.cases.setdefault(case.name, case)  # one Case serves every row of its name
            self._generated.add(case.name)
            for mode in self.options.modes:
                for chk in case.checks:
                    out.append(CheckSpec(fw, b.name, case.name, b.caps.op, row["dtype"], row["reduction"], chk, mode))
        return out

    def relation_specs(self) -> list[tuple[str, str, str, str]]:
        """(framework, binding, relation, dtype) for the relations layer (eager; drawn in float32 and float64,
        the half-precision dtypes are recorded as unsupported with the reason)."""
        # the default run draws in float32 only (the budget); --fuzz, --relation-examples or --all-dtypes adds float64
        dtypes = DTYPES if self.options.wide_relations else ("float16", "bfloat16", "float32")
        return [(fw, b, r.name, dt) for fw in self.load_adapters() if self.options.all_layers(fw)
                for b in self.bindings(fw) for r in relations.RELATIONS for dt in dtypes]

    def stability_specs(self) -> list[tuple[str, str, str, str]]:
        """(framework, binding, axis, dtype) for the stability sweep: every axis of the binding's op in
        every dtype it declares (eager; one batch per axis, so this is cheap)."""
        return [(fw, name, ax.name, dt) for fw in self.load_adapters() if self.options.all_layers(fw)
                for name, b in self.bindings(fw).items()
                for ax in stability.AXES if b.caps.op in ax.ops for dt in sorted(b.caps.dtypes, key=DTYPES.index)]

    def probe_specs(self) -> list[tuple[str, str, str, str]]:
        """(framework, binding, facet, value) for --probe-capabilities: every target kind, option,
        reduction and dtype a binding's op admits and the binding does not declare."""
        if not self.options.probe_capabilities:
            return []
        return [(fw, b.name, facet, str(value)) for fw in self.load_adapters() for b in self.bindings(fw).values()
                for facet, value, _ in interactions.probes(b)]

    def bench_specs(self) -> list[BenchSpec]:
        """Every benchmark to run (none without --bench)."""
        if not self.bench:
            return []
        # Keras's other backends are timed when named (their float32 slice is the conformance run's budget)
        adapters = {k: a for k, a in self.load_adapters().items() if self.options.all_layers(k)}
        return self.bench.specs(adapters, self.bindings)

    # -- running --------------------------------------------------------------------------------
    def problem(self, spec: CheckSpec) -> Problem:
        key = (spec.case, spec.op, spec.dtype, spec.reduction)
        if key not in self._problems:
            self._problems[key] = self.cases[spec.case].problem(spec.op, spec.dtype, spec.reduction)
        return self._problems[key]

    def unsupported(self, spec: CheckSpec) -> CheckRecord | None:
        """The ``unsupported`` record of a check its binding's declared capabilities rule out, else None
        (settled from declarations alone, without calling the binding)."""
        binding = self.bindings(spec.framework)[spec.binding]
        problem = self.problem(spec)
        reason = checks.unsupported_reason(binding, problem, spec.check, spec.mode, self.options.device)
        if reason is None:
            return None
        rec = checks.new_record(spec.framework, binding, problem, spec.check, spec.mode, self.options.device)
        rec.reason = reason
        return rec

    def run(self, spec: CheckSpec) -> CheckRecord:
        return checks.run_check(self.adapters[spec.framework], self.bindings(spec.framework)[spec.binding],
                                self.problem(spec), spec.check, registry=self.registry, versions=self.versions(),
                                mode=spec.mode, device=self.options.device)

    def run_relation(self, framework: str, binding: str, relation: str, dtype: str) -> RelationRecord:
        bindings = self.bindings(framework)
        others = relations.partners(self.registry, self.versions(), framework, bindings[binding],
                                    list(bindings.values()), dtype)
        return relations.run_relation(self.adapters[framework], bindings[binding], others,
                                      relations.BY_NAME[relation], dtype, examples=self.options.relation_examples,
                                      derandomize=not self.options.fuzz, device=self.options.device,
                                      registry=self.registry, versions=self.versions())

    def run_probe(self, framework: str, binding: str, facet: str, value: str) -> dict:
        """Call ``binding`` with one undeclared facet value (its capabilities widened to take it) and judge
        the value like any check: ``works`` (pass or documented deviation: the declaration is narrower
        than the API), ``wrong`` (fail; the adapter may not pass that option on), ``raises`` (error). The
        result goes into the environment (``probes``), never into the gate."""
        b = self.bindings(framework)[binding]
        row = next(r for f, v, r in interactions.probes(b) if (f, str(v)) == (facet, value))
        case = interactions.case(b.caps.op, row)
        p = case.problem(b.caps.op, row["dtype"], row["reduction"])
        c = b.caps
        wide = replace(b, caps=replace(c, targets=c.targets | {row["target"]},
                                       reductions=c.reductions | {row["reduction"]}, dtypes=c.dtypes | {row["dtype"]},
                                       options=c.options | p.options_used()))
        rec = checks.run_check(self.adapters[framework], wide, p, "value", registry=self.registry,
                               versions=self.versions(), device=self.options.device)
        result = {"pass": "works", "deviation": "works", "fail": "wrong", "error": "raises"}.get(rec.outcome,
                                                                                                rec.outcome)
        out = {"facet": facet, "value": value, "result": result, "case": case.name, "detail": rec.reason[:300]}
        self.environment.setdefault("probes", {}).setdefault(f"{framework}::{binding}", []).append(out)
        return out

    def run_stability(self, framework: str, binding: str, axis: str, dtype: str) -> StabilityRecord:
        return stability.sweep(self.adapters[framework], self.bindings(framework)[binding], stability.BY_NAME[axis],
                               dtype, registry=self.registry, versions=self.versions(), device=self.options.device)

    def run_bench(self, spec: BenchSpec, benchmark) -> BenchRecord:
        return self.bench.run(self.adapters, self.bindings(spec.framework)[spec.binding], spec, benchmark,
                              self.options.device)
