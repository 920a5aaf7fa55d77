"""The session of one run: the loaded adapters, cases and registry, the specs of each suite, and
running one spec into its record. It knows nothing of pytest's hooks (``hooks.py``) or of files
(``writer.py``)."""

from __future__ import annotations

import difflib
from dataclasses import replace

import pytest

from adapters import BUILTIN, AdapterError, load_builtin, load_external, missing_packages
from cases import Case, CaseError, interactions, load_catalog
from xentcheck import relations, stability
from xentcheck.bench.plan import BenchPlan
from xentcheck.bench.sweep import BenchSpec, SweepError
from xentcheck.check import Check, Verdict, record
from xentcheck.checks import Judge
from xentcheck.environment import base_environment
from xentcheck.exception_text import one_line
from xentcheck.expectations import ExpectationError, load_registry
from xentcheck.json_safety import plain
from xentcheck.problem import DTYPES, Problem
from xentcheck.protocol import Adapter, Binding, variant_of
from xentcheck.records import BenchRecord, CheckRecord, RelationRecord, StabilityRecord
from xentcheck.results import Results, ResultsError, load

from .options import RunOptions
from .scheduling import group_for


class XentSession:
    """State of one xentcheck run: selected frameworks, loaded adapters, cases, registry."""

    def __init__(self, options: RunOptions, argv: list[str]) -> None:
        self.options = options
        if options.frameworks_named:  # a framework the user names must run: missing is an error, not a skip
            for name in options.frameworks:
                missing = missing_packages(name)
                if missing:
                    raise pytest.UsageError(
                        f"--frameworks names {name}, which is not installed (missing "
                        f"{', '.join(missing)}): install it (pip install -e '.[{name}]') or "
                        f"leave it out"
                    )
        try:  # external adapters load at once, so a bad --adapter fails before anything runs
            self.externals = [load_external(spec) for spec in options.adapters]
        except AdapterError as e:
            raise pytest.UsageError(str(e)) from None
        names = [a.name for a in self.externals]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice:  # the second would silently replace the first
            raise pytest.UsageError(f"--adapter: two adapters are named {twice!r}; give each its own name")
        try:
            self.cases: dict[str, Case] = {
                c.name: c for c in load_catalog(external=list(options.cases), confine=not options.values_outside)
            }
            self.registry = load_registry(list(options.expectations))
        except (CaseError, ExpectationError) as e:
            raise pytest.UsageError(str(e)) from None
        self._check_case_names()
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
        self._judge: Judge | None = None
        self._generated: set[str] = set()  # the interaction cases' names
        self.registry_error: str | None = None  # a binding name (registry, --binding) no loaded adapter declares

    def _check_case_names(self) -> None:
        """A --case name that names nothing is a one-line error (an exact name: a typo would select nothing)."""
        known = set(self.cases) | set(relations.BY_NAME) | set(stability.BY_NAME)
        for name in self.options.case_names:
            if name not in known and not name.startswith("ix-"):  # interaction cases are generated per binding
                close = difflib.get_close_matches(name, sorted(known), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else "; the case names are in cases/*.toml"
                raise pytest.UsageError(f"--case={name}: no case, relation or stability axis has this name{hint}")

    def _binding_names_error(self) -> str | None:
        """One line for a --binding name no loaded adapter has (None when all are known)."""
        known = {b for fw in self.adapters for b in self.bindings(fw)}
        for name in self.options.binding_names:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                return f"--binding={name}: no binding of the frameworks in this run has this name{hint}"
        return None

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
                if self.options.device != "cpu":  # the run's device, bound into each adapter once
                    a.device = self.options.device
                if self.bench and hasattr(a, "set_threads"):
                    a.set_threads(self.bench.threads)
                # plain JSON (a set, a NaN would make the results unwritable at the end of the run)
                self.environment["frameworks"][name] = plain(a.environment())
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
        # a misspelt binding (--binding or the registry): the hooks raise it once collection ends, before
        # anything runs (raised here, inside a suite's parametrisation, pytest would print it as a
        # collection traceback)
        self.registry_error = self._binding_names_error() or self.registry.undeclared(
            self._known, {n: set(self.bindings(n)) for n in self.adapters}, self.versions()
        )
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
                    "framework": framework,
                    "binding": b.name,
                    "api": b.api,
                    "doc": b.doc,
                    "capabilities": b.caps.as_dict(),
                    "conventions": interactions.conventions(b),
                }
        return cache[framework]

    def versions(self) -> dict:
        """package -> version, for the registry's version ranges."""
        if self._versions is None:
            self._versions = {
                k: v
                for facts in self.environment["frameworks"].values()
                for k, v in facts.items()
                if isinstance(v, str)
            }
        return self._versions

    @property
    def judge(self) -> Judge:
        """The run's judge: the registry, the versions, the device and the relations' options, bound once
        (after the adapters loaded: their versions are known then)."""
        if self._judge is None:
            o = self.options
            self._judge = Judge(self.registry, self.versions(), o.device, o.relation_examples, not o.fuzz)
        return self._judge

    def group(self, framework: str, kind: str, dtype: str = "", mode: str = "eager") -> str:
        """The worker group of a check: the first of its adapter's declared ``worker_groups`` that takes
        it, else the framework's name."""
        return group_for(self.adapters[framework], kind, dtype, mode)

    def group_ranks(self) -> dict[str, int]:
        """Every declared worker group -> the rank at which it is handed out."""
        return {g.name: g.rank for a in self.load_adapters().values() for g in getattr(a, "worker_groups", ())}

    # -- specs ----------------------------------------------------------------------------------
    def _chosen_cases(self) -> set[str]:
        """The cases this run uses: all, or with --one-per-category the first of each (category, op,
        target kind, layout), so every binding meets every category it can take; a linear_ce case marked
        ``large`` only with --large-vocab or where --case names it."""
        cases = {
            name: case
            for name, case in self.cases.items()
            if not (case.linear or {}).get("large") or self.options.large_vocab or name in self.options.case_names
        }
        if not self.options.one_per_category:
            return set(cases)
        first: dict = {}
        for case in cases.values():
            for op in case.ops:
                first.setdefault((case.category, op, case.target_kind, bool(case.channels_first)), case.name)
        return set(first.values())

    def _check(self, fw: str, b: Binding, case: Case, **at: str) -> Check:
        """A conformance check of ``b`` on ``case`` ``at`` a dtype, mode, reduction and kind."""
        return Check(
            fw,
            b.name,
            case.name,
            api=b.api,
            op=b.caps.op,
            category=case.category,
            target=case.target_kind,
            device=self.options.device,
            group=self.group(fw, at["kind"], at["dtype"], at["mode"]),
            **at,
        )

    def specs(self) -> list[Check]:
        """Every check to run: binding x case x mode x dtype x reduction x (value, grad), where the op
        matches; then each binding's interaction cases (its own dtype and reduction per row)."""
        out = []
        chosen = self._chosen_cases()
        for fw in self.load_adapters():
            for b in self.bindings(fw).values():
                for case in self.cases.values():
                    if (
                        b.caps.op not in case.ops
                        or case.name not in chosen
                        or case.name in self._generated
                        or not self.options.in_run(fw, b.name)
                        or not self.options.case_chosen(case.name)
                    ):
                        continue
                    for mode in self.options.modes:
                        for dtype in self.options.dtypes_for(fw, DTYPES if self.options.all_dtypes else case.dtypes):
                            for red in self.options.reductions_for(fw, b.caps.reductions, case.reductions):
                                for chk in case.checks:
                                    out.append(
                                        self._check(fw, b, case, dtype=dtype, mode=mode, reduction=red, kind=chk)
                                    )
                if self.options.in_run(fw, b.name):
                    out += [s for s in self._interaction_specs(fw, b) if self.options.case_chosen(s.case)]
        return out

    def _interaction_specs(self, fw: str, b: Binding) -> list[Check]:
        """The checks of ``b``'s interaction cases; its coverage per strength goes into the environment."""
        if not self.options.interactions or not self.options.all_layers(fw):
            return []
        dtypes = frozenset(self.options.dtypes_for(fw, b.caps.dtypes))
        try:  # over the dtypes this run checks the framework in (the default run's JAX: no float64)
            plan = interactions.plan(replace(b, caps=replace(b.caps, dtypes=dtypes)), self.options.interactions)
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
                    out.append(
                        self._check(fw, b, case, dtype=row["dtype"], mode=mode, reduction=row["reduction"], kind=chk)
                    )
        return out

    def relation_specs(self) -> list[Check]:
        """The relations layer's checks: every binding x relation x dtype (eager; drawn in float32 and
        float64, the half-precision dtypes are recorded as unsupported with the reason)."""
        # the default run draws in float32 only (the budget); --fuzz, --relation-examples or --all-dtypes adds float64
        dtypes = DTYPES if self.options.wide_relations else ("float16", "bfloat16", "float32")
        return [
            replace(relations.check_for(self.judge, fw, b, r, dt), group=self.group(fw, "relation", dt))
            for fw in self.load_adapters()
            if self.options.all_layers(fw)
            for b in self.bindings(fw).values()
            if self.options.in_run(fw, b.name) and variant_of(b.name) == b.name
            for r in relations.RELATIONS
            if self.options.case_chosen(r.name)
            for dt in dtypes
        ]

    def stability_specs(self) -> list[Check]:
        """The stability sweep's checks: every axis of the binding's op in every dtype it declares (eager;
        one batch per axis, so this is cheap)."""
        return [
            replace(stability.check_for(self.judge, fw, b, ax, dt), group=self.group(fw, "stability", dt))
            for fw in self.load_adapters()
            if self.options.all_layers(fw)
            for b in self.bindings(fw).values()
            if self.options.in_run(fw, b.name)
            for ax in stability.AXES
            if b.caps.op in ax.ops and self.options.case_chosen(ax.name)
            for dt in self.options.dtypes_for(fw, sorted(b.caps.dtypes, key=DTYPES.index))
        ]

    def probe_specs(self) -> list[Check]:
        """The checks of --probe-capabilities: every target kind, option, reduction and dtype a binding's
        op admits and the binding does not declare."""
        if not self.options.probe_capabilities or self.options.case_names:
            return []
        return [
            Check(
                fw,
                b.name,
                facet,
                kind="probe",
                value=str(value),
                api=b.api,
                op=b.caps.op,
                device=self.options.device,
                group=self.group(fw, "probe"),
            )
            for fw in self.load_adapters()
            for b in self.bindings(fw).values()
            if self.options.in_run(fw, b.name)
            for facet, value, _ in interactions.probes(b)
        ]

    def snippet_specs(self, cases: tuple[str, ...]) -> list[Check]:
        """The snippet checks: every binding that declares a call, on each of ``cases`` its op takes
        (not for a sliced framework: conformance only)."""
        return [
            Check(
                fw,
                name,
                case,
                kind="snippet",
                api=b.api,
                op=b.caps.op,
                device=self.options.device,
                group=self.group(fw, "snippet"),
            )
            for fw in self.load_adapters()
            if self.options.all_layers(fw)
            for name, b in self.bindings(fw).items()
            if b.call and self.options.in_run(fw, name)
            for case in filter(self.options.case_chosen, cases)
            if case in self.cases and b.caps.op in self.cases[case].ops
        ]

    def bench_specs(self) -> list[BenchSpec]:
        """Every benchmark to run (none without --bench)."""
        if not self.bench:
            return []
        # Keras's other backends are timed when named (their float32 slice is the conformance run's budget)
        adapters = {k: a for k, a in self.load_adapters().items() if self.options.all_layers(k)}
        # a calling variant (NAME[how]) is a way to call its binding, checked for conformance, not a kernel to time
        return [
            s
            for s in self.bench.specs(adapters, self.bindings)
            if self.options.in_run(s.framework, s.binding) and variant_of(s.binding) == s.binding
        ]

    # -- running --------------------------------------------------------------------------------
    def problem(self, check: Check) -> Problem:
        key = (check.case, check.op, check.dtype, check.reduction)
        if key not in self._problems:
            self._problems[key] = self.cases[check.case].problem(check.op, check.dtype, check.reduction)
        return self._problems[key]

    def unsupported(self, check: Check) -> CheckRecord | None:
        """The ``unsupported`` record of a conformance or relation check its binding's declared
        capabilities rule out, else None (settled from declarations alone, without calling the binding)."""
        if check.kind == "relation":
            b = self.bindings(check.framework)[check.binding]
            why = relations.declared_unsupported(b, relations.BY_NAME[check.case], check.dtype)
            return None if why is None else record(check, Verdict(reason=why, compute_dtype=check.dtype))
        problem = self.problem(check)
        reason = self.judge.unsupported(self.bindings(check.framework)[check.binding], problem, check)
        return None if reason is None else record(self.judge.described(check, problem), Verdict(reason=reason))

    def run(self, check: Check) -> CheckRecord:
        return self.judge.run(
            self.adapters[check.framework], self.bindings(check.framework)[check.binding], self.problem(check), check
        )

    def run_relation(self, check: Check) -> RelationRecord:
        bindings = self.bindings(check.framework)
        b = bindings[check.binding]
        others = relations.partners(self.judge, check.framework, b, list(bindings.values()), check.dtype)
        subject = relations.Subject(self.adapters[check.framework], b, tuple(others))
        return record(check, relations.run_relation(self.judge, subject, relations.BY_NAME[check.case], check))

    def run_probe(self, check: Check) -> dict:
        """Call the binding with one undeclared facet value (its capabilities widened to take it) and judge
        the value like any check: ``works`` (pass or documented deviation: the declaration is narrower
        than the API), ``wrong`` (fail; the adapter may not pass that option on), ``raises`` (error). The
        result goes into the environment (``probes``), never into the gate."""
        b = self.bindings(check.framework)[check.binding]
        facet, value = check.case, check.value
        row = next(r for f, v, r in interactions.probes(b) if (f, str(v)) == (facet, value))
        case = interactions.case(b.caps.op, row)
        p = case.problem(b.caps.op, row["dtype"], row["reduction"])
        c = b.caps
        wide = replace(
            b,
            caps=replace(
                c,
                targets=c.targets | {row["target"]},
                reductions=c.reductions | {row["reduction"]},
                dtypes=c.dtypes | {row["dtype"]},
                options=c.options | p.options_used(),
            ),
        )
        rec = self.judge.check(self.adapters[check.framework], wide, p, "value")
        result = {"pass": "works", "deviation": "works", "fail": "wrong", "error": "raises"}.get(
            rec.outcome, rec.outcome
        )
        out = {"facet": facet, "value": value, "result": result, "case": case.name, "detail": rec.reason[:300]}
        self.environment.setdefault("probes", {}).setdefault(f"{check.framework}::{check.binding}", []).append(out)
        return out

    def run_stability(self, check: Check) -> StabilityRecord:
        adapter = self.adapters[check.framework]
        return record(check, stability.sweep(self.judge, adapter, self.bindings(check.framework)[check.binding], check))

    def crash_record(self, check: Check, message: str) -> CheckRecord | StabilityRecord:
        """An ``error`` record for a check that never finished (it hung past the timeout, or its process
        died): the same record as the check would have written, with the reason."""
        return record(check, Verdict("error", f"did not complete: {message}"[:500]))

    def run_bench(self, spec: BenchSpec, benchmark) -> BenchRecord:
        return self.bench.run(self.adapters, self.bindings(spec.framework)[spec.binding], spec, benchmark)
