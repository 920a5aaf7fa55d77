"""The pytest plugin: options, framework selection, check parametrisation, results and report.

Loaded by the root ``conftest.py``. Adapters are imported lazily, only when the conformance suite is
collected, so ``pytest tests`` (the harness self-tests) never imports a framework.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters import BUILTIN, AdapterError, load_builtin, load_external, missing_packages
from cases import CaseError, load_catalog

from . import checks
from .bench.plan import BenchPlan, add_options
from .bench.sweep import BenchSpec, SweepError
from .problem import DTYPES
from .environment import base_environment
from .expectations import ExpectationError, audit, load_registry
from .results import ResultsError, document, load, write_atomic

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = Path("results/results.json")
DEFAULT_REPORT = Path("results/report.html")
DEFAULT_EXPECTATIONS = ROOT / "suites" / "expectations.toml"
_KEY = pytest.StashKey["XentSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("xentcheck", "xentcheck conformance suite")
    g.addoption("--frameworks", default=None,
                help=f"comma-separated frameworks to check (default: all of {', '.join(BUILTIN)})")
    g.addoption("--adapter", action="append", default=[], metavar="MODULE:ATTR",
                help="add an external adapter object (repeatable), tested like the built-in ones")
    g.addoption("--device", default="cpu", choices=("cpu", "cuda"), help="device to run the bindings on")
    g.addoption("--modes", default="eager", metavar="eager,compiled",
                help="execution modes to check: eager (default), compiled (torch.compile, "
                     "tf.function(jit_compile=True), jax.jit; one compile per binding and problem), or both")
    g.addoption("--all-dtypes", action="store_true",
                help="run every case in float16, bfloat16, float32 and float64, and the relations in float64 "
                     "(default: the dtypes each case declares)")
    g.addoption("--one-per-category", action="store_true",
                help="run only the first case of each category for each op and target kind: with --all-dtypes "
                     "and --modes=eager,compiled, the shortest run that fills the coverage matrix")
    g.addoption("--relation-examples", type=int, default=None, metavar="N",
                help="hypothesis inputs drawn per binding and relation (default 2, in float32; given, also in float64)")
    g.addoption("--fuzz", action="store_true",
                help="long property run: random (not derandomized) draws, 300 per binding and relation")
    g.addoption("--results", default=None, help=f"where to write the results JSON (default {DEFAULT_RESULTS})")
    g.addoption("--report", default=None, help=f"where to write the HTML report (default {DEFAULT_REPORT})")
    g.addoption("--expectations", default=None, action="append",
                help="expectations registry file(s) (default suites/expectations.toml)")
    g.addoption("--baseline", default=None, metavar="PATH",
                help="compare this run with an earlier results file; a regression fails the run")
    add_options(g)


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
    """State of one xentcheck run: selected frameworks, loaded adapters, cases, registry, records."""

    def __init__(self, config: pytest.Config):
        self.config = config
        opt = config.getoption
        names = opt("frameworks")
        # --frameworks= (empty) runs no built-in framework: only --adapter ones
        self.frameworks = list(BUILTIN) if names is None else [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in self.frameworks if n not in BUILTIN]
        if unknown:
            raise pytest.UsageError(f"--frameworks: unknown framework {unknown[0]!r}; known: {', '.join(BUILTIN)}")
        self.device = opt("device")
        self.all_dtypes = opt("all_dtypes")
        self.one_per_category = opt("one_per_category")
        self.fuzz = opt("fuzz")
        self.relation_examples = opt("relation_examples") or (300 if self.fuzz else 2)
        if self.relation_examples < 1:
            raise pytest.UsageError("--relation-examples: give a positive number of inputs, e.g. 20")
        self.modes = [m.strip() for m in opt("modes").split(",") if m.strip()]
        if not self.modes or set(self.modes) - {"eager", "compiled"}:
            raise pytest.UsageError(f"--modes={opt('modes')}: give eager, compiled or eager,compiled")
        try:  # external adapters load at once, so a bad --adapter fails before anything runs
            self.externals = [load_external(spec) for spec in opt("adapter")]
        except AdapterError as e:
            raise pytest.UsageError(str(e)) from None
        self.results_path = Path(opt("results") or DEFAULT_RESULTS)
        self.report_path = Path(opt("report") or DEFAULT_REPORT)
        try:
            self.cases = {c.name: c for c in load_catalog()}
            self.registry = load_registry([Path(p) for p in (opt("expectations") or [DEFAULT_EXPECTATIONS])])
        except (CaseError, ExpectationError) as e:
            raise pytest.UsageError(str(e)) from None
        for flag, path in (("--results", self.results_path), ("--report", self.report_path)):
            _check_writable(flag, path)
        self.baseline = None
        if opt("baseline"):
            try:  # read now: an unreadable baseline must not cost a whole run
                self.baseline = load(opt("baseline"))
            except ResultsError as e:
                raise pytest.UsageError(f"--baseline: {e}") from None
        try:  # before any framework is imported: it fixes the thread settings
            self.bench = BenchPlan(opt) if opt("bench") else None
        except SweepError as e:
            raise pytest.UsageError(str(e)) from None
        self.adapters: dict | None = None
        self.skipped: dict[str, str] = {}
        self.records: list[dict] = []
        self.stability: list[dict] = []
        self.environment = base_environment(self.device, ["pytest", *config.invocation_params.args])
        self._problems: dict = {}
        self._bindings: dict = {}
        self._versions: dict | None = None
        self._journal = None
        self.lines: list[str] = []
        self.lines_before: list[str] = []  # said after collection
        self.write_failed = False
        self.regressed = False
        self.announced = False
        self.filtered_audit = False

    # -- adapters -----------------------------------------------------------------------------
    def load_adapters(self) -> dict:
        if self.adapters is not None:
            return self.adapters
        self.adapters = {}
        for name in self.frameworks:
            missing = missing_packages(name)
            if missing:
                self.skipped[name] = f"not installed (missing {', '.join(missing)})"
                continue
            try:
                self.adapters[name] = load_builtin(name)
            except AdapterError as e:
                self.skipped[name] = str(e)
        for a in self.externals:
            self.adapters[a.name] = a
        for name, a in self.adapters.items():
            try:
                if self.bench and hasattr(a, "set_threads"):
                    a.set_threads(self.bench.threads)
                self.environment["frameworks"][name] = a.environment()
                self.bindings(name)
            except Exception as e:  # a broken adapter is skipped, the others still run
                self.skipped[name] = f"adapter failed: {type(e).__name__}: {e}"
        for name in self.skipped:
            self.adapters.pop(name, None)
            self.environment["frameworks"].pop(name, None)
        self.environment["skipped"].update(self.skipped)
        return self.adapters

    def bindings(self, framework: str) -> dict:
        cache = self._bindings
        if framework not in cache:
            cache[framework] = {b.name: b for b in self.adapters[framework].bindings()}
            for b in cache[framework].values():
                self.environment["bindings"][f"{framework}::{b.name}"] = {
                    "framework": framework, "binding": b.name, "api": b.api, "doc": b.doc,
                    "capabilities": b.caps.as_dict()}
        return cache[framework]

    def _chosen_cases(self) -> set[str]:
        """The cases this run uses: all, or with --one-per-category the first of each (category, op,
        target kind, layout), so every binding meets every category it can take."""
        if not self.one_per_category:
            return set(self.cases)
        first: dict = {}
        for case in self.cases.values():
            for op in case.ops:
                first.setdefault((case.category, op, case.target_kind, bool(case.channels_first)), case.name)
        return set(first.values())

    def specs(self) -> list[CheckSpec]:
        """Every check to run: binding x case x mode x dtype x reduction x (value, grad), where the op matches."""
        out = []
        chosen = self._chosen_cases()
        for fw in self.load_adapters():
            for b in self.bindings(fw).values():
                for case in self.cases.values():
                    if b.caps.op not in case.ops or case.name not in chosen:
                        continue
                    for mode in self.modes:
                        for dtype in (DTYPES if self.all_dtypes else case.dtypes):
                            for red in case.reductions:
                                for chk in case.checks:
                                    out.append(CheckSpec(fw, b.name, case.name, b.caps.op, dtype, red, chk, mode))
        return out

    def relation_specs(self) -> list[tuple[str, str, str, str]]:
        """(framework, binding, relation, dtype) for the relations layer (eager; drawn in float32 and float64,
        the half-precision dtypes are recorded as unsupported with the reason)."""
        from .relations import RELATIONS

        # the default run draws in float32 only (the budget); --fuzz, --relation-examples or --all-dtypes adds float64
        wide = self.fuzz or self.config.getoption("relation_examples") or self.all_dtypes
        dtypes = DTYPES if wide else ("float16", "bfloat16", "float32")
        return [(fw, b, r.name, dt) for fw in self.load_adapters() for b in self.bindings(fw)
                for r in RELATIONS for dt in dtypes]

    def run_relation(self, framework: str, binding: str, relation: str, dtype: str) -> dict:
        from .relations import BY_NAME, run_relation

        bindings = self.bindings(framework)

        def documented(name: str, check: str = "grad"):  # an entry covering every case of the binding
            return self.registry.find(framework, name, "relation", "relations", dtype, check, self.versions(), "eager")

        def same(name: str) -> bool:
            return all(getattr(documented(name, c), "id", None) == getattr(documented(binding, c), "id", None)
                       for c in ("value", "grad"))
        # a sibling whose documented behaviour differs may legitimately disagree: not a relation partner
        others = [b for name, b in bindings.items() if name != binding and same(name)]
        return run_relation(self.adapters[framework], bindings[binding], others, BY_NAME[relation], dtype,
                            examples=self.relation_examples, derandomize=not self.fuzz, device=self.device,
                            documented=documented)

    def stability_specs(self) -> list[tuple[str, str, str, str]]:
        """(framework, binding, axis, dtype) for the stability sweep: every axis of the binding's op in
        every dtype it declares (eager; one batch per axis, so this is cheap)."""
        from .stability import AXES

        return [(fw, name, ax.name, dt) for fw in self.load_adapters() for name, b in self.bindings(fw).items()
                for ax in AXES if b.caps.op in ax.ops for dt in sorted(b.caps.dtypes, key=DTYPES.index)]

    def run_stability(self, framework: str, binding: str, axis: str, dtype: str) -> dict:
        from .stability import BY_NAME, sweep

        return sweep(self.adapters[framework], self.bindings(framework)[binding], BY_NAME[axis], dtype,
                     registry=self.registry, versions=self.versions(), device=self.device)

    def bench_specs(self) -> list[BenchSpec]:
        """Every benchmark to run (none without --bench)."""
        return self.bench.specs(self.load_adapters(), self.bindings) if self.bench else []

    def run_bench(self, spec: BenchSpec, benchmark) -> dict:
        return self.bench.run(self.adapters, self.bindings(spec.framework)[spec.binding], spec, benchmark, self.device)

    # -- running ------------------------------------------------------------------------------
    def problem(self, spec: CheckSpec):
        key = (spec.case, spec.op, spec.dtype, spec.reduction)
        if key not in self._problems:
            self._problems[key] = self.cases[spec.case].problem(spec.op, spec.dtype, spec.reduction)
        return self._problems[key]

    def versions(self) -> dict:
        """package -> version, for the registry's version ranges."""
        if self._versions is None:
            self._versions = {k: v for facts in self.environment["frameworks"].values()
                              for k, v in facts.items() if isinstance(v, str)}
        return self._versions

    def run(self, spec: CheckSpec) -> dict:
        return checks.run_check(self.adapters[spec.framework], self.bindings(spec.framework)[spec.binding],
                                self.problem(spec), spec.check, registry=self.registry, versions=self.versions(),
                                mode=spec.mode, device=self.device)

    def add(self, rec: dict, *, kind: str = "check") -> None:
        """Keep a record (a check, a benchmark or a stability sweep), and journal it at once so a crash
        later in the run loses nothing before it."""
        {"check": self.records, "bench": self.bench.records if self.bench else None,
         "stability": self.stability}[kind].append(rec)
        if self._journal is None:  # the folder was checked writable at start-up
            self._journal = open(self.results_path.with_name(self.results_path.name + ".partial.jsonl"), "w")
        self._journal.write(json.dumps(rec) + "\n")
        self._journal.flush()

    def finish(self) -> list[str]:
        """Write results and report; returns the lines to print at the end of the run."""
        benchmarks = self.bench.section() if self.bench else None
        if not self.records and not benchmarks and not self.stability:
            return []
        stale, unused = audit(self.registry, self.records, set(self.environment["frameworks"]), self.versions())
        opt = self.config.option
        if getattr(opt, "keyword", "") or getattr(opt, "markexpr", "") or self.one_per_category:
            # a slice may leave out every input where an entry shows: report, do not fail
            unused = []
            stale = []
            self.filtered_audit = True
        expectations = {"entries": [e.as_dict() for e in self.registry.entries], "stale": stale, "unused": unused}
        doc = document(self.environment, self.records, expectations, benchmarks, self.stability)
        lines = []
        if self.records:
            lines.append("xentcheck: " + ", ".join(f"{doc['summary'].get(k, 0)} {k}" for k in checks.OUTCOMES))
        if benchmarks:
            counts = {o: sum(r["outcome"] == o for r in benchmarks["records"]) for o in ("ok", "unsupported", "error")}
            lines.append(f"xentcheck: {counts['ok']} benchmarks timed, {counts['unsupported']} unsupported, "
                         f"{counts['error']} error")
        lines += [f"xentcheck: STALE {s}" for s in stale]
        lines += [f"xentcheck: warning: {u}" for u in unused]
        if self.filtered_audit:
            lines.append("xentcheck: expectations audit skipped: the run was a slice (-k, -m or --one-per-category)")
        try:
            write_atomic(self.results_path, json.dumps(doc, indent=1, allow_nan=False))
            from reports.html import render

            write_atomic(self.report_path, render([doc]))
        except OSError as e:
            self.write_failed = True
            lines.append(f"xentcheck: cannot write results/report ({e}); pass writable paths with --results/--report")
            return lines
        if self._journal is not None:
            self._journal.close()
            Path(self._journal.name).unlink(missing_ok=True)
        lines.append(f"xentcheck: results written to {self.results_path}")
        lines.append(f"xentcheck: report written to {self.report_path}")
        if self.baseline is not None:
            from reports.diff import diff, lines as diff_lines

            changes = diff(self.baseline, doc)
            lines += [f"xentcheck: baseline: {line}" for line in diff_lines(changes)]
            self.regressed = bool(changes.regressions)
        return lines

    # -- pytest hooks (this object is registered as a plugin) ----------------------------------
    @property
    def is_worker(self) -> bool:
        """True inside a pytest-xdist worker: the controller collects records and writes results."""
        return hasattr(self.config, "workerinput")

    def skip_lines(self) -> list[str]:
        return [f"xentcheck: skipping {name}: {why}" for name, why in self.environment["skipped"].items()]

    def pytest_report_collectionfinish(self, config, start_path, items) -> list[str]:
        self.announced = True
        return self.skip_lines() + self.lines_before

    @pytest.hookimpl(trylast=True)  # after -k/-m deselection: only selected checks are recorded
    def pytest_collection_modifyitems(self, session, config, items) -> None:
        """Settle the checks that the bindings' declared capabilities rule out without running them: their
        ``unsupported`` records (with the reason) are written now, and they are not pytest items (two
        thirds of all checks; a skipped item costs milliseconds). pytest-xdist workers keep them as
        items, since only the controller writes records; --collect-only lists every check."""
        if self.is_worker or config.option.collectonly:
            return
        keep, settled = [], 0
        for item in items:
            params = getattr(getattr(item, "callspec", None), "params", {})
            spec = params.get("spec")
            if isinstance(spec, CheckSpec):
                binding = self.bindings(spec.framework)[spec.binding]
                problem = self.problem(spec)
                reason = checks.unsupported_reason(binding, problem, spec.check, spec.mode, self.device)
                if reason is not None:
                    rec = checks.new_record(spec.framework, binding, problem, spec.check, spec.mode, self.device)
                    rec["reason"] = reason
                    self.add(rec)
                    settled += 1
                    continue
            keep.append(item)
        items[:] = keep
        if settled:
            self.lines_before.append(f"xentcheck: {settled} checks are outside the bindings' declared capabilities: "
                                     f"recorded as unsupported (with the reason) without running")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        kinds = {"xentcheck": "check", "xentcheck_bench": "bench", "xentcheck_stability": "stability"}
        props = [(kinds[k], v) for k, v in report.user_properties if k in kinds]
        if report.when == "call" and props:
            for kind, rec in props:
                self.add(rec, kind=kind)
        elif report.failed and report.when != "setup" and report.nodeid.startswith("suites/test_conformance.py::"):
            self.add(self.crash_record(report))  # timed out, or its process died: no record came back

    def crash_record(self, report: pytest.TestReport) -> dict:
        """An ``error`` record for a check that never finished: it hung past the timeout, or its process
        died (pytest-xdist replaces the worker)."""
        spec_id = report.nodeid.partition("[")[2].rstrip("]")
        fw, binding, case, dtype, mode, reduction, check = spec_id.split("-")
        c = self.cases.get(case)
        text = str(report.longrepr or "").strip()
        message = next((line.lstrip("E+ ").strip() for line in text.splitlines() if "Timeout" in line), None) \
            or (text.splitlines() or ["the process died"])[0]
        return {"id": spec_id, "framework": fw, "binding": binding, "api": binding, "op": None, "case": case,
                "category": c.category if c else "", "dtype": dtype, "mode": mode, "device": self.device,
                "reduction": reduction, "target": c.target_kind if c else None, "check": check,
                "outcome": "error", "reason": f"did not complete: {message}"[:500], "expectation": None, "errors": None,
                "result_dtype": None, "compute_dtype": None, "duration_s": 0.0}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        """Controller: merge what a worker learnt about the frameworks (versions, bindings, skips)."""
        env = getattr(node, "workeroutput", {}).get("xentcheck_environment")
        if env:
            for key in ("frameworks", "skipped", "bindings"):
                self.environment[key].update(env[key])

    @pytest.hookimpl(tryfirst=True)  # before xdist's own hook sends workeroutput to the controller
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            # plain JSON types only: execnet cannot send everything a framework reports
            self.config.workeroutput["xentcheck_environment"] = json.loads(json.dumps(self.environment, default=str))
            return
        try:
            self.lines = self.finish()
        except Exception as e:  # a harness bug (e.g. our own document failed its schema): say so plainly
            where = f"; the records are kept in {self._journal.name}" if self._journal else ""
            self.lines = [f"xentcheck: internal error while writing results: {type(e).__name__}: {e}{where}"]
            session.exitstatus = 3
            return
        stale = any(line.startswith("xentcheck: STALE") for line in self.lines)
        if (stale or self.write_failed or self.regressed) and session.exitstatus == 0:
            session.exitstatus = 1

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        lines = ([] if self.announced else self.skip_lines()) + self.lines
        for line in lines:
            terminalreporter.write_line(line)


def _check_writable(flag: str, path: Path) -> None:
    """Fail at start-up, in one line, if ``path`` cannot be written (not after a long run)."""
    if path.is_dir():
        raise pytest.UsageError(f"{flag}={path} is a folder; pass a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise pytest.UsageError(f"{flag}={path}: cannot create its folder ({e.strerror}); choose a writable path") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise pytest.UsageError(f"{flag}={path}: not writable; choose a writable path")


def pytest_configure(config: pytest.Config) -> None:
    xs = XentSession(config)
    config.stash[_KEY] = xs
    config.pluginmanager.register(xs, "xentcheck-session")


def session_of(config: pytest.Config) -> XentSession:
    """The run's XentSession (for the suites' parametrisation and tests)."""
    return config.stash[_KEY]


def fail_or_skip(rec: dict) -> None:
    """Map an outcome to the pytest verdict (pass and deviation pass; unsupported skips)."""
    if rec["outcome"] == "unsupported":
        pytest.skip(rec["reason"])
    if rec["outcome"] in ("fail", "error"):
        pytest.fail(f"{rec['outcome']}: {rec['reason']}", pytrace=False)
